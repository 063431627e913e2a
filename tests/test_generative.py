"""The VAE, GAN and diffusion model: the KL term, training on every backend, which weights
a GAN step moves, the noise schedule, forward noising and DDIM update, and the same samples
from the same weights on every backend."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import backends_under_test, check, execute_notebook, run_python


def test_kl_term_matches_its_closed_form_and_monte_carlo():
    from keras import ops

    from keras_cases.generative.vae import kl_divergence

    rng = np.random.default_rng(0)
    mu = rng.normal(size=(5, 3))
    log_var = rng.normal(scale=0.5, size=(5, 3))
    got = ops.convert_to_numpy(kl_divergence(ops.convert_to_tensor(mu), ops.convert_to_tensor(log_var)))
    # KL(N(mu, S) || N(0, I)) = 1/2 (tr S + mu.mu - k - log det S), S = diag(exp(log_var))
    k = mu.shape[1]
    closed = 0.5 * (np.exp(log_var).sum(1) + (mu**2).sum(1) - k - log_var.sum(1))
    np.testing.assert_allclose(got, closed, rtol=1e-5)
    # and a Monte Carlo estimate of E_q[log q(z) - log p(z)] agrees to sampling error
    z = mu[0] + np.exp(0.5 * log_var[0]) * rng.normal(size=(400_000, k))
    log_q = -0.5 * (((z - mu[0]) ** 2) / np.exp(log_var[0]) + log_var[0] + np.log(2 * np.pi)).sum(1)
    log_p = -0.5 * (z**2 + np.log(2 * np.pi)).sum(1)
    assert abs((log_q - log_p).mean() - closed[0]) < 0.01


@pytest.fixture(scope="module")
def gan_checks(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan")
    for b in backends_under_test():
        check(run_python(["tests/scripts/gan_checks.py", str(out / b)], backend=b))
    return out


def test_one_gan_step_moves_only_the_weights_it_should(gan_checks):
    for b in backends_under_test():
        r = json.loads((gan_checks / f"{b}.json").read_text())
        assert all(r["d_step_moves_d"]) and not any(r["d_step_moves_g"]), (b, r)
        assert all(r["g_step_moves_g"]) and not any(r["g_step_moves_d"]), (b, r)
        assert r["n_trainable_d"] > 0 and r["n_trainable_g"] > 0  # D is trainable again afterwards


def test_same_weights_same_samples_on_every_backend(gan_checks):
    bs = backends_under_test()
    ref = np.load(gan_checks / f"{bs[0]}.npy")
    assert ref.shape == (6, 8, 8, 1) and ref.min() >= 0 and ref.max() <= 1 and ref.std() > 1e-3
    for b in bs[1:]:
        np.testing.assert_allclose(np.load(gan_checks / f"{b}.npy"), ref, rtol=1e-5, atol=1e-6, err_msg=b)


def test_quick_run_on_every_backend(backend, tmp_path):
    p = check(
        run_python(
            ["-m", "keras_cases.generative", "--quick", "--data", "digits", "--out", str(tmp_path), "-v", "0"],
            backend=backend,
        )
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["backend"] == backend and m["vae_test_elbo"] < 0
    for k in ("vae_fd", "gan_fd", "diffusion_fd", "fd_real_vs_real"):
        assert np.isfinite(m[k]) and m[k] >= 0
    h = pd.read_csv(tmp_path / "history.csv")
    vae_loss = h[h.model == "vae"]["loss"].to_numpy()
    assert vae_loss[-1] < vae_loss[0]  # the VAE learns
    # the U-Net learns to predict the noise: untrained its MSE is above 1 (unit-variance eps
    # plus its own random output); 2 quick epochs take it well below
    untrained, trained = m["diffusion_untrained_val_mse"], m["diffusion_final_val_mse"]
    assert untrained > 0.9 and trained < 0.7 and trained < 0.5 * untrained, (untrained, trained)
    assert h[h.model == "diffusion"]["val_noise_mse"].notna().sum() == m["diffusion_epochs"] == 2
    report = (tmp_path / "report.md").read_text()
    assert "| diffusion samples (DDIM, 10 steps) |" in report and "diffusion_trajectory.png" in report
    for name in (
        "vae.keras",
        "generator.keras",
        "report.md",
        "vae_samples.png",
        "vae_latent_map.png",
        "gan_samples.png",
        "gan_progress.png",
        "learning_curves.png",
        "diffusion_unet.keras",
        "diffusion_samples.png",
        "diffusion_trajectory.png",
    ):
        assert (tmp_path / name).is_file(), name
    assert "frechet_distance" in p.stdout


def test_notebook_runs(tmp_path):
    nb, _ = execute_notebook("generative.ipynb", tmp_path)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "vae_test_elbo" in m and "gan_fd" in m


def test_gan_interrupted_then_resumed_is_the_uninterrupted_run(backend, tmp_path):
    """The GAN's own loop (train_on_batch steps, not a fit) checkpoints every epoch: cut after
    epoch 3 of 4 and resumed, it ends with the same per-epoch losses and the same generator
    weights as a run never stopped. Exact on CPU (the same operations run on the same values in
    the same order), compared with atol 1e-6 as in tests/test_resume.py, so that only float32
    round-off could pass. Epoch 3: the stop hook stops every fit at that epoch, and the --quick
    feature classifier, trained first, has 2."""
    quick = ["-m", "keras_cases.generative", "--quick", "--data", "digits", "--model", "gan", "--gan-epochs", "4"]
    quick += ["-v", "0"]
    check(run_python([*quick, "--out", str(tmp_path / "whole")], backend=backend))
    stopped = run_python([*quick, "--out", str(tmp_path / "cut")], backend=backend, KERAS_CASES_STOP_AFTER_EPOCHS=3)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert "GAN epoch 3/4" in stopped.stdout and "GAN epoch 4/4" not in stopped.stdout
    record = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert record["status"] == "interrupted" and not (tmp_path / "cut" / "metrics.json").exists()
    again = check(run_python(["-m", "keras_cases.generative", "--resume", str(tmp_path / "cut")], backend=backend))
    assert "resumed gan_seed0 at epoch 3" in again.stdout
    assert "GAN epoch 4/4" in again.stdout and "GAN epoch 3/4" not in again.stdout
    record = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert record["status"] == "complete" and record["resumed"]
    assert not (tmp_path / "cut" / "checkpoints").exists()
    a = (tmp_path / "whole" / "history.csv").read_text()
    assert a == (tmp_path / "cut" / "history.csv").read_text()
    assert len(a.strip().splitlines()) == 5  # header + 4 GAN epochs
    ma = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    for k in ("gan_fd", "gan_final_d_loss", "gan_final_g_loss", "fd_real_vs_real", "feature_classifier_val_accuracy"):
        assert ma[k] == mb[k], k
    import keras

    wa, wb = (
        keras.saving.load_model(d / "generator.keras", compile=False).get_weights()
        for d in (tmp_path / "whole", tmp_path / "cut")
    )
    assert len(wa) == len(wb) > 0
    for x, y in zip(wa, wb):
        np.testing.assert_allclose(y, x, rtol=0, atol=1e-6)


def test_model_both_is_the_old_spelling_of_all():
    from keras_cases.generative.case import make_parser

    p = make_parser()
    assert p.parse_args(["--model", "both"]).model == "all" == p.parse_args([]).model
    assert "{vae,gan,diffusion,all}" in p.format_help() and "both" not in p.format_help()


# --- the diffusion model ------------------------------------------------------------------


def test_noise_schedule_alpha_bar_falls_from_one_to_zero():
    from keras_cases.generative.diffusion import noise_schedule

    for steps in (2, 10, 100, 1000, 4000):
        ab = noise_schedule(steps)
        assert len(ab) == steps and np.all(np.diff(ab) < 0), steps  # strictly monotone
        assert ab[0] > 0.94 and ab[-1] < 2e-3, (steps, ab[0], ab[-1])
    ab = noise_schedule(1000)
    assert ab[0] == pytest.approx(1 - 1e-4) and 1e-6 < ab[-1] < 1e-4  # DDPM's: 4.0e-5 at t = 999
    # more steps, the same noise levels: alpha_bar at the same fraction of the way agrees
    np.testing.assert_allclose(noise_schedule(4000)[1999::2000], ab[499::500], rtol=0.1)


def test_forward_noising_matches_its_closed_form():
    """q(x_t | x_0) = N(sqrt(ab_t) x_0, (1 - ab_t) I): the mean and variance of many draws,
    for q_sample and for the batches fit trains on."""
    from keras_cases.generative.diffusion import NoisedBatches, noise_schedule, q_sample

    ab = noise_schedule(1000)
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1, 1, size=(3, 4))
    for t in (0, 100, 500, 999):
        n = 200_000
        xt = q_sample(np.broadcast_to(x0, (n, 3, 4)), np.full(n, t), rng.standard_normal((n, 3, 4)), ab)
        np.testing.assert_allclose(xt.mean(0), np.sqrt(ab[t]) * x0, atol=5 * np.sqrt((1 - ab[t]) / n) + 1e-12)
        np.testing.assert_allclose(xt.var(0), 1 - ab[t], rtol=0.02, atol=1e-7)
    images = rng.uniform(-1, 1, size=(300, 5, 5, 1))
    data = NoisedBatches(images, ab, 100, seed=3)
    (xt, t), eps = data[1]
    assert len(data) == 3 and xt.shape == eps.shape == (100, 5, 5, 1) and t.shape == (100, 1)
    assert 0 <= t.min() and t.max() <= 999 and len(np.unique(t)) > 80 and abs(eps.std() - 1) < 0.05
    a = ab[t[:, 0].astype(int)][:, None, None, None]
    x0_back = (xt - np.sqrt(1 - a) * eps) / np.sqrt(a)  # each x_t is one of the images, noised
    hits = [np.abs(images - b).reshape(len(images), -1).max(1).min() for b in x0_back[t[:, 0] < 900]]
    assert max(hits) < 1e-3
    (xt2, _), _ = data[1]
    np.testing.assert_array_equal(xt, xt2)  # a batch is a function of (seed, epoch, index)
    data.on_epoch_end()
    assert not np.array_equal(data[1][0][0], xt)  # a new epoch: new order, t and noise


def test_ddim_with_the_true_noise_recovers_x0_exactly():
    """An oracle noise predictor built from a known x0: deterministic DDIM (eta 0) must land
    on x0, and pass through x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps with the starting noise
    at every step; a wrong update (alpha instead of alpha_bar, a dropped square root, the
    wrong previous step) drifts off both by ~0.1. (1e-6: at T=10 alpha_bar_T is 1e-17, and
    dividing by its square root magnifies float64 round-off to ~1e-8.)"""
    from keras_cases.generative.diffusion import ddim_sample, noise_schedule

    rng = np.random.default_rng(1)
    x0 = rng.uniform(-1, 1, size=(5, 6, 6, 1))
    for steps_T, steps in ((1000, 50), (1000, 1), (100, 100), (10, 3)):
        ab = noise_schedule(steps_T)
        noise = rng.standard_normal(x0.shape)
        eps0 = (noise - np.sqrt(ab[-1]) * x0) / np.sqrt(1 - ab[-1])  # x_T = noise, if x0 is the answer

        def oracle(x, t):
            return (x - np.sqrt(ab[t]) * x0) / np.sqrt(1 - ab[t])

        out, trajectory = ddim_sample(oracle, noise, ab, steps, keep=5)
        np.testing.assert_allclose(out, x0, atol=1e-6)
        assert len(trajectory) == steps and trajectory[0][0] == steps_T - 1
        assert trajectory[-1][0] == (0 if steps > 1 else steps_T - 1)  # evenly spaced, T-1 down to 0
        for t, xt, x0_hat in trajectory:
            np.testing.assert_allclose(xt, np.sqrt(ab[t]) * x0 + np.sqrt(1 - ab[t]) * eps0, atol=1e-6)
            np.testing.assert_allclose(x0_hat, x0, atol=1e-6)


def test_diffusion_learning_rate_warms_up_then_decays_and_ema_spans_a_tenth():
    from keras import ops

    from keras_cases.generative.diffusion import learning_rate, optimizer

    sched = learning_rate(2000)  # warmup 200 steps
    lr = np.array([float(ops.convert_to_numpy(sched(s))) for s in range(0, 2001, 50)])
    assert lr[0] == 0 and lr[4] == pytest.approx(2e-3) and lr.max() == pytest.approx(2e-3)
    assert np.all(np.diff(lr[:5]) > 0) and np.all(np.diff(lr[4:]) < 0)  # up, then only down
    assert lr[-1] == pytest.approx(2e-7, rel=1e-3)
    assert float(ops.convert_to_numpy(learning_rate(30)(3))) == pytest.approx(2e-3)  # short runs: a tenth
    assert optimizer(2000).ema_momentum == pytest.approx(0.995)
    assert optimizer(10**6).ema_momentum == 0.999 and optimizer(4).ema_momentum == 0.5


@pytest.fixture(scope="module")
def diffusion_checks(tmp_path_factory):
    out = tmp_path_factory.mktemp("diffusion")
    for b in backends_under_test():
        check(run_python(["tests/scripts/diffusion_checks.py", str(out / b)], backend=b))
    return out


def test_diffusion_same_seed_same_weights_and_samples(diffusion_checks):
    for b in backends_under_test():
        r = json.loads((diffusion_checks / f"{b}.json").read_text())
        assert r["same_weights"] and r["same_samples_same_model"] and r["same_samples_retrained"], (b, r)
        assert r["samples_vary"] > 0.05, (b, r)


def test_unet_same_weights_same_noise_prediction_on_every_backend(diffusion_checks):
    bs = backends_under_test()
    ref = np.load(diffusion_checks / f"{bs[0]}.npy")
    assert ref.shape == (4, 8, 8, 1) and ref.std() > 1e-2
    assert np.abs(ref[0] - ref[3]).max() > 1e-3  # the timestep reaches the output
    for b in bs[1:]:
        np.testing.assert_allclose(np.load(diffusion_checks / f"{b}.npy"), ref, rtol=1e-4, atol=1e-5, err_msg=b)
