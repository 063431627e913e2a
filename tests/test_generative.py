"""The VAE and GAN: the KL term, training on every backend, which weights a GAN step moves,
and the same samples from the same weights on every backend."""

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
    for k in ("vae_fd", "gan_fd", "fd_real_vs_real"):
        assert np.isfinite(m[k]) and m[k] >= 0
    h = pd.read_csv(tmp_path / "history.csv")
    vae_loss = h[h.model == "vae"]["loss"].to_numpy()
    assert vae_loss[-1] < vae_loss[0]  # the VAE learns
    for name in (
        "vae.keras",
        "generator.keras",
        "report.md",
        "vae_samples.png",
        "vae_latent_map.png",
        "gan_samples.png",
        "gan_progress.png",
        "learning_curves.png",
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
    assert "{vae,gan,all}" in p.format_help() and "both" not in p.format_help()
