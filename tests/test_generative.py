"""The VAE, GAN and diffusion model: the KL term, training on every backend, which weights
a GAN step moves, the noise schedule, forward noising and DDIM update, and the same samples
from the same weights on every backend."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import (
    NOTEBOOK_BACKEND,
    QUICK_GENERATIVE,
    backends_under_test,
    check,
    run_python,
    shared_notebook,
    shared_run,
)


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


def test_quick_run_on_every_backend(backend, tmp_path_factory):
    """On NOTEBOOK_BACKEND the notebook's run (the same command, conftest.shared_run)."""
    tmp_path, stdout = shared_run(tmp_path_factory, QUICK_GENERATIVE, backend)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["backend"] == backend and m["vae_test_elbo"] < 0
    for k in ("vae_fd", "gan_fd", "diffusion_fd", "fd_real_vs_real"):
        assert np.isfinite(m[k]) and m[k] >= 0
    h = pd.read_csv(tmp_path / "history.csv")
    vae_loss = h[h.model == "vae"]["loss"].to_numpy()
    assert vae_loss[-1] < vae_loss[0]  # the VAE learns
    # the U-Net learns to predict v (the default): untrained its MSE is above that of
    # predicting 0 (E v^2, about 0.86 here: the network adds its own random output); 2 quick
    # epochs take it well below both (measured on jax: 1.30 -> 0.66)
    assert m["diffusion_prediction"] == "v" and m["diffusion_noise_schedule"] == "cosine"
    untrained, trained, zero = (
        m[f"diffusion_{k}"] for k in ("untrained_val_mse", "final_val_mse", "val_mse_predicting_zero")
    )
    assert untrained > zero > 0.5 and trained < 0.85 * zero and trained < 0.6 * untrained, (untrained, trained, zero)
    assert h[h.model == "diffusion"]["val_v_mse"].notna().sum() == m["diffusion_epochs"] == 2
    # and at high noise its x_0 guess already beats the best blank image
    assert m["diffusion_val_x0_mse_high_noise"] < m["diffusion_val_blank_x0_mse_high_noise"]
    assert np.isfinite(m["diffusion_val_fd"])
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
    assert "frechet_distance" in stdout


def test_notebook_runs(tmp_path_factory):
    nb, out, _ = shared_notebook(tmp_path_factory, "generative.ipynb")
    m = json.loads((out / "metrics.json").read_text())
    assert "vae_test_elbo" in m and "gan_fd" in m and m["backend"] == NOTEBOOK_BACKEND
    shown = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert shown, "the notebook displays no plot"


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


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddim_with_an_oracle_recovers_x0_exactly(prediction, schedule):
    """An oracle predictor built from a known x0 (the true eps, or the true v): deterministic
    DDIM (eta 0) must land on x0, and pass through x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps
    with the starting noise at every step; a wrong update (alpha instead of alpha_bar, a
    dropped square root, the wrong previous step) drifts off both by ~0.1, and reading the
    oracle's output as the other parametrisation guesses x0 wrong on the way. (1e-6: at T=10 alpha_bar_T is 1e-17,
    and dividing by its square root magnifies float64 round-off to ~1e-8.)"""
    from keras_cases.generative.diffusion import ddim_sample, noise_schedule, velocity

    rng = np.random.default_rng(1)
    x0 = rng.uniform(-1, 1, size=(5, 6, 6, 1))
    for steps_T, steps in ((1000, 50), (1000, 1), (100, 100), (10, 3)):
        ab = noise_schedule(steps_T, schedule)
        noise = rng.standard_normal(x0.shape)
        eps0 = (noise - np.sqrt(ab[-1]) * x0) / np.sqrt(1 - ab[-1])  # x_T = noise, if x0 is the answer

        def oracle(x, t):
            eps = (x - np.sqrt(ab[t]) * x0) / np.sqrt(1 - ab[t])
            return eps if prediction == "eps" else velocity(x0, eps, ab[t])

        out, trajectory = ddim_sample(oracle, noise, ab, steps, keep=5, prediction=prediction)
        np.testing.assert_allclose(out, x0, atol=1e-6)
        assert len(trajectory) == steps and trajectory[0][0] == steps_T - 1
        assert trajectory[-1][0] == (0 if steps > 1 else steps_T - 1)  # evenly spaced, T-1 down to 0
        for t, xt, x0_hat in trajectory:
            np.testing.assert_allclose(xt, np.sqrt(ab[t]) * x0 + np.sqrt(1 - ab[t]) * eps0, atol=1e-6)
            np.testing.assert_allclose(x0_hat, x0, atol=1e-6)
        if steps > 1:
            other = "v" if prediction == "eps" else "eps"
            _, wrong = ddim_sample(oracle, noise, ab, steps, keep=5, prediction=other)
            assert max(np.abs(x0_hat - x0).max() for _, _, x0_hat in wrong) > 0.1


def test_cosine_schedule_falls_from_one_to_zero_as_its_closed_form():
    """alpha_bar_t = f(t+1) / f(0), f(u) = cos^2(pi/2 (u/T + 0.008) / 1.008) (Nichol & Dhariwal
    2021, eq. 17), betas capped at 0.999, so only the last step departs from it."""
    from keras_cases.generative.diffusion import noise_schedule

    for steps in (10, 100, 1000, 4000):
        ab = noise_schedule(steps, "cosine")
        f = np.cos((np.arange(steps + 1) / steps + 0.008) / 1.008 * np.pi / 2) ** 2
        assert len(ab) == steps and np.all(np.diff(ab) < 0), steps  # strictly monotone
        np.testing.assert_allclose(ab[:-1], f[1:-1] / f[0], rtol=1e-12)
        assert ab[-1] == pytest.approx(0.001 * ab[-2])  # f(T) = 0: beta_T capped at 0.999
        assert ab[0] > 0.97 and ab[-1] < 3e-5, (steps, ab[0], ab[-1])
    ab = noise_schedule(1000, "cosine")
    assert ab[0] > 0.9999 and ab[-1] < 1e-8 and 0.45 < ab[499] < 0.55  # half the signal variance halfway
    linear = noise_schedule(1000, "linear")
    assert ab[250] > linear[250] + 0.2  # the cosine destroys information more slowly early on
    np.testing.assert_allclose(noise_schedule(4000, "cosine")[999::1000][:3], ab[249::250][:3], rtol=1e-9)
    with pytest.raises(ValueError, match="cosine"):
        noise_schedule(10, "quadratic")


def test_v_and_x0_eps_convert_into_each_other_exactly():
    """v = sqrt(ab) eps - sqrt(1 - ab) x0 and x_t = sqrt(ab) x0 + sqrt(1 - ab) eps are a
    rotation of (x0, eps): from (x_t, v) both come back, at every noise level, and from
    (x_t, eps) x0 does; v is eps at ab = 1 and -x0 at ab = 0."""
    from keras_cases.generative.diffusion import noise_schedule, q_sample, velocity, x0_and_eps

    rng = np.random.default_rng(2)
    ab = noise_schedule(1000, "cosine")
    x0, eps = rng.uniform(-1, 1, size=(64, 4, 4, 1)), rng.standard_normal((64, 4, 4, 1))
    t = rng.integers(0, 1000, 64)
    t[:2] = 0, 999
    x_t, v = q_sample(x0, t, eps, ab), velocity(x0, eps, ab[t])
    x0_v, eps_v = x0_and_eps(v, x_t, ab[t], "v")
    np.testing.assert_allclose(x0_v, x0, atol=1e-12)
    np.testing.assert_allclose(eps_v, eps, atol=1e-12)
    low = t < 900  # eps -> x0 divides by sqrt(ab): round-off grows as the signal vanishes
    x0_e, eps_e = x0_and_eps(eps[low], x_t[low], ab[t[low]], "eps")
    np.testing.assert_allclose(x0_e, x0[low], atol=1e-10)
    np.testing.assert_array_equal(eps_e, eps[low])
    np.testing.assert_allclose(velocity(x0, eps, 1.0), eps)
    np.testing.assert_allclose(velocity(x0, eps, 0.0), -x0)


def test_min_snr_weights_cap_the_x0_loss_weight_at_gamma():
    """Min-SNR-gamma: in x0 units the loss weight is min(SNR, gamma); the eps loss is SNR times
    the x0 loss and the v loss SNR + 1 times. Those weights reach fit as per-image sample
    weights, and Keras applies them to each image's mean squared error."""
    import keras

    from keras_cases.generative.diffusion import NoisedBatches, min_snr_weights, noise_schedule

    ab = noise_schedule(1000, "cosine")
    snr = ab / (1 - ab)
    w_eps, w_v = min_snr_weights(ab, 5, "eps"), min_snr_weights(ab, 5, "v")
    np.testing.assert_allclose(w_eps * snr, np.minimum(snr, 5))
    np.testing.assert_allclose(w_v * (snr + 1), np.minimum(snr, 5))
    assert w_eps[-1] == 1 and w_eps[0] < 1e-3 and w_v.max() < 5 / 6 + 1e-9
    np.testing.assert_array_equal(min_snr_weights(ab, 0, "v"), np.ones(1000))
    images = np.random.default_rng(0).uniform(-1, 1, size=(40, 5, 5, 1))
    (x_t, t), target, w = NoisedBatches(images, ab, 20, seed=1, prediction="v", weights=w_v)[0]
    assert w.shape == (20, 1, 1)
    np.testing.assert_allclose(w[:, 0, 0], w_v[t[:, 0].astype(int)], rtol=1e-6)
    x = keras.Input((5, 5, 1))
    model = keras.Model(x, keras.layers.Rescaling(0.5)(x))
    model.compile(loss="mse")
    got = model.evaluate(x_t, target, sample_weight=w, batch_size=20, verbose=0)
    per_image = ((0.5 * x_t - target) ** 2).mean(axis=(1, 2, 3))
    assert got == pytest.approx((per_image * w[:, 0, 0]).mean(), rel=1e-5)
    assert abs(got - per_image.mean()) > 0.1 * got  # the weights did change it


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


def test_diffusion_eps_with_min_snr_resumes_and_learns(tmp_path):
    """DDPM's parametrisation (eps, linear betas) stays available: with Min-SNR-5 sample
    weights in its batches, a fit cut after epoch 3 of 4 resumes at epoch 3 (the checkpointed
    fit, not a retrain) and the noise MSE falls well below the untrained network's."""
    b = backends_under_test()[0]
    quick = ["-m", "keras_cases.generative", "--quick", "--data", "digits", "--model", "diffusion", "-v", "0"]
    quick += ["--prediction", "eps", "--noise-schedule", "linear", "--min-snr-gamma", "5", "--diffusion-epochs", "4"]
    stopped = run_python([*quick, "--out", str(tmp_path)], backend=b, KERAS_CASES_STOP_AFTER_EPOCHS=3)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert not (tmp_path / "metrics.json").exists()
    again = check(run_python(["-m", "keras_cases.generative", "--resume", str(tmp_path)], backend=b))
    assert "resumed diffusion_seed0 at epoch 3" in again.stdout
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert (m["diffusion_prediction"], m["diffusion_noise_schedule"], m["diffusion_min_snr_gamma"]) == (
        "eps",
        "linear",
        5,
    )
    untrained, trained = m["diffusion_untrained_val_mse"], m["diffusion_final_val_mse"]
    assert untrained > 0.9 and trained < 0.5 * untrained, (untrained, trained)
    h = pd.read_csv(tmp_path / "history.csv")
    assert h["epoch"].tolist() == [1, 2, 3, 4] and h["val_noise_mse"].is_monotonic_decreasing
    assert json.loads((tmp_path / "run.json").read_text())["resumed"]
