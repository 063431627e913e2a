"""The VAE and GAN: the KL term, training on every backend, which weights a GAN step moves,
and the same samples from the same weights on every backend."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import backends_under_test, check, execute_notebook, run_python


def test_kl_term_matches_its_closed_form_and_monte_carlo():
    from keras import ops

    from keras_cases.generative import kl_divergence

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


SCRIPT = r"""
import json, sys, numpy as np
from keras_cases import generative as g, runtime
out = sys.argv[1]
shape, latent = (8, 8, 1), 16
G, D, S = g.build_gan(shape, latent)
runtime.init_weights(G, 3); runtime.init_weights(D, 4)
z = np.random.default_rng(0).normal(size=(6, latent)).astype("float32")
samples = G.predict(z, verbose=0)
snap = lambda m: [np.array(w) for w in m.get_weights()]
moved = lambda a, b: [bool(np.any(x != y)) for x, y in zip(a, b)]
rng = np.random.default_rng(1)
real = rng.random((16, *shape)).astype("float32")
g0, d0 = snap(G), snap(D)
g.discriminator_step(G, D, real, rng, latent)
g1, d1 = snap(G), snap(D)
g.generator_step(D, S, 16, rng, latent)
g2, d2 = snap(G), snap(D)
np.save(out + ".npy", samples)
json.dump({"d_step_moves_d": moved(d0, d1), "d_step_moves_g": moved(g0, g1),
           "g_step_moves_g": moved(g1, g2), "g_step_moves_d": moved(d1, d2),
           "n_trainable_g": len(G.trainable_weights), "n_trainable_d": len(D.trainable_weights)},
          open(out + ".json", "w"))
"""


@pytest.fixture(scope="module")
def gan_checks(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan")
    for b in backends_under_test():
        check(run_python(["-c", SCRIPT, str(out / b)], backend=b))
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
