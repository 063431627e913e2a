"""The from-scratch case: hand-written gradients against finite differences and against
Keras' autodiff on every backend, the optimizers against keras.optimizers, the worked
2-2-1 example by hand, training, the `--quick` command and the notebook.

The Keras checks run once per backend: the `--quick` run (one subprocess) checks every
backend under test, each in one process (`python -m keras_cases.scratch.keras_check` for
the others), and writes the results to gradient_check.json; the per-backend tests read
them from there. That run starts in the background when the module starts, so the NumPy
tests and the notebook run while it works.
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import ROOT, backends_under_test, check, run_python

from keras_cases import cli
from keras_cases.scratch import case, gradcheck, optimizers, worked_example
from keras_cases.scratch.layers import INITIALIZERS, Tanh

ARTIFACTS = (
    "metrics.json",
    "history.csv",
    "report.md",
    "comparison.csv",
    "config.json",
    "gradient_check.json",
    "gradient_check.md",
    "gradient_check.png",
    "decision_boundary.png",
    "loss_curves.png",
    "training.gif",
    "model.keras",
    "model.npz",
)


@pytest.fixture(scope="module", autouse=True)
def quick_run_started(request, tmp_path_factory):
    """`python -m keras_cases.scratch --quick`, checking every backend under test, started
    in a background thread as soon as this module's first test runs."""
    if not any("quick_run" in item.fixturenames for item in request.session.items):
        yield None  # no selected test needs it
        return
    out = tmp_path_factory.mktemp("scratch") / "run"
    bs = backends_under_test()
    args = ["-m", "keras_cases.scratch", "--quick", "--out", str(out), "-v", "0", "--check-backends", ",".join(bs)]
    with ThreadPoolExecutor(1) as pool:
        yield out, pool.submit(run_python, args, backend=bs[0])


@pytest.fixture(scope="module")
def quick_run(quick_run_started):
    out, future = quick_run_started
    return out, future.result()


@pytest.fixture(scope="module")
def keras_results(quick_run):
    out, proc = quick_run
    check(proc)
    return json.loads((out / "gradient_check.json").read_text())["keras"]


# --- gradients, initializers and optimizers in NumPy ------------------------------
def test_hand_gradients_match_finite_differences():
    errors = gradcheck.check_all(seed=0)
    assert len(errors) >= 13
    for name, err in errors.items():
        assert err < 1e-7, (name, err)


def test_a_wrong_backward_pass_is_caught(monkeypatch):
    """tanh' = 1 - y^2; 'forgetting' the square must show up as a large error."""
    monkeypatch.setattr(Tanh, "backward", lambda self, dout: dout * (1.0 - self.y))
    assert gradcheck.check(gradcheck.cases()["dense + tanh / mse"]) > 1e-3


def test_initializers_have_the_variance_scaling_spread():
    rng = np.random.default_rng(0)
    fan_in, fan_out = 200, 300
    glorot, he = np.sqrt(2 / (fan_in + fan_out)), np.sqrt(2 / fan_in)
    for name, std, bound in [
        ("glorot_uniform", glorot, np.sqrt(6 / (fan_in + fan_out))),
        ("he_uniform", he, np.sqrt(6 / fan_in)),
        ("glorot_normal", glorot, 2 * glorot / 0.87962566103423978),
        ("he_normal", he, 2 * he / 0.87962566103423978),
    ]:
        w = INITIALIZERS[name]((fan_in, fan_out), rng)
        assert w.std() == pytest.approx(std, rel=0.02), name
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound, name


def test_gradient_clipping_scales_to_the_global_norm():
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(3, 4)), rng.normal(size=4)]
    clipped = optimizers.clip_by_global_norm(grads, 1.0)
    assert optimizers.global_norm(grads) > 1.0
    assert optimizers.global_norm(clipped) == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(clipped[0] / grads[0], clipped[1][0] / grads[1][0])  # same direction
    small = [g * 1e-3 for g in grads]
    for a, b in zip(optimizers.clip_by_global_norm(small, 1.0), small):
        np.testing.assert_array_equal(a, b)


# --- the worked 2-2-1 example -----------------------------------------------------
def worked_by_hand():
    """The classic example, derived by hand: plain arithmetic, no network code."""
    W1, W2, W3, W4, W5, W6 = (
        -0.2822470618366393,
        0.8811006806223465,
        1.0880624516582986,
        0.49681749648057094,
        0.3779743052305753,
        0.2997037641550875,
    )
    i1, i2, y, lr = 2.0, 4.0, 1.0, 0.05
    h1 = W1 * i1 + W2 * i2
    h2 = W3 * i1 + W4 * i2
    assert h1 > 0 and h2 > 0  # so relu hidden units pass them unchanged: same numbers
    y_hat = W5 * h1 + W6 * h2
    loss = 0.5 * (y - y_hat) ** 2
    d = y_hat - y  # dL/dy_hat
    grads = [
        d * W5 * i1,
        d * W5 * i2,  # dL/dW1 = dL/dy_hat * dy_hat/dh1 * dh1/dW1, ...
        d * W6 * i1,
        d * W6 * i2,
        d * h1,
        d * h2,
    ]  # dL/dW5 = dL/dy_hat * h1
    W1, W2, W3, W4, W5, W6 = (w - lr * g for w, g in zip((W1, W2, W3, W4, W5, W6), grads))
    y_hat_after = W5 * (W1 * i1 + W2 * i2) + W6 * (W3 * i1 + W4 * i2)
    return {"y_hat": y_hat, "loss": loss, "grads": grads, "loss_after": 0.5 * (y - y_hat_after) ** 2}


def assert_worked_example(got, expected, rel):
    for key in ("y_hat", "loss", "loss_after"):
        assert got[key] == pytest.approx(expected[key], rel=rel), key
    np.testing.assert_allclose(got["grads"], expected["grads"], rtol=rel)


@pytest.mark.parametrize("hidden", ["linear", "relu"])
def test_worked_example_scratch_equals_hand_derivation(hidden):
    hand = worked_by_hand()
    assert hand["loss_after"] < hand["loss"]
    assert_worked_example(worked_example.one_step(hidden), hand, rel=1e-13)


# --- training ---------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_networks_learn_circles_and_the_neuron_separates_blobs(seed):
    circles = case.load_circles(400, 0.1, seed)
    net = case.build_model((8, 8), "tanh", seed)
    history, _ = case.train(net, circles, optimizers.make("gd"), epochs=1000, seed=seed)
    assert history["loss"][-1] < history["loss"][0] / 5
    assert case.evaluate(net, circles)["test_accuracy"] >= 0.97

    blobs = case.load_blobs(200, seed)
    neuron = case.build_neuron(seed)
    case.train(neuron, blobs, optimizers.make("gd", 0.5), epochs=300, seed=seed)
    assert case.evaluate(neuron, blobs)["test_accuracy"] >= 0.97

    # without a nonlinearity the network is one linear boundary: no better than chance
    flat = case.build_model((8, 8), "linear", seed)
    case.train(flat, circles, optimizers.make("gd"), epochs=300, seed=seed)
    assert case.evaluate(flat, circles)["test_accuracy"] < 0.7


def test_minibatches_cover_the_training_set_once_per_epoch():
    rng = np.random.default_rng(0)
    assert [len(b) for b in case.minibatches(10, 1024, rng)] == [10]
    batches = case.minibatches(10, 4, rng)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches)) == list(range(10))


# --- the notebook -----------------------------------------------------------------
def test_notebook_runs(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / "scratch.ipynb", as_version=4)
    env = {
        "KERAS_CASES_NOTEBOOK_OUT": str(tmp_path / "run"),
        "KERAS_CASES_NOTEBOOK_CHECK_BACKENDS": "none",  # the Keras checks: quick_run
        "KERAS_BACKEND": backends_under_test()[0],
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert (tmp_path / "run" / "training.gif").is_file()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "circles_test_accuracy" in outputs and "loss_after" in outputs


# --- the command, and Keras on every backend (from the --quick run) ---------------
def test_bad_input_is_one_line_and_exit_2(capsys):
    for argv in (["--hidden", "8,x"], ["--check-backends", "theano"]):
        assert cli.run(case.main, argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err
    with pytest.raises(SystemExit) as e:  # argparse's own range check: usage line + one error line
        cli.run(case.main, ["--lr", "-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and err[-1].endswith("--lr: '-1' must be a finite number above 0"), err


def test_quick_run_writes_every_artifact(quick_run):
    out, proc = quick_run
    check(proc)
    for name in ARTIFACTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    m = json.loads((out / "metrics.json").read_text())
    for k in ("backend", "keras_version", "dataset", "n_train", "n_test", "seconds", "seed"):
        assert k in m, k
    assert m["backend"] == backends_under_test()[0] and m["n_train"] + m["n_test"] == 300
    assert m["gradcheck_passed"] is True
    assert m["headline"]["accuracy"] == m["circles_test_accuracy"]
    assert m["circles_test_accuracy"] > 0.9 and m["blobs_test_accuracy"] > 0.9
    assert m["keras_export_max_abs_diff"] < 1e-12
    with open(out / "training.gif", "rb") as f:
        assert f.read(6) in (b"GIF87a", b"GIF89a")
    report = (out / "report.md").read_text()
    for png in ("decision_boundary.png", "loss_curves.png", "training.gif", "gradient_check.png"):
        assert f"({png})" in report, png
    header = next(line for line in report.splitlines() if line.startswith("| case |"))
    assert header.split("|")[2:-1] == [" finite differences ", *(f" {b} " for b in backends_under_test())]
    history = (out / "history.csv").read_text().splitlines()
    assert history[0] == "model,epoch,loss,accuracy,test_loss,test_accuracy"
    assert len(history) == 1 + 300 * 8  # the neuron + 7 distinct circles runs, 300 epochs each


def test_hand_gradients_equal_keras_autodiff(backend, keras_results):
    r = keras_results[backend]
    assert "error" not in r, r
    assert r["backend"] == backend and r["output_dtype"] == "float64"
    assert {
        "deep mlp tanh-sigmoid-linear / cce",
        "deep mlp relu (he_normal) / cce",
        "rnn bptt 20 steps, all states / mse",
        "batchnorm (dense-bn-tanh-dense) / bce",
        "conv2d 3x3 (conv-tanh-dense) / cce",
    } <= set(r["gradients"])
    for kind in ("linear", "sigmoid", "tanh", "relu", "softmax"):
        assert any(f"dense + {kind}" in c for c in r["gradients"]), kind
    for loss in ("bce", "cce", "mse"):
        assert any(c.endswith(loss) or f"/ {loss}" in c for c in r["gradients"]), loss
    for name, err in r["gradients"].items():
        assert err < 1e-7, (backend, name, err)


def test_optimizers_step_like_keras(backend, keras_results):
    r = keras_results[backend]
    assert r["optimizer_steps"] == 10
    assert {"sgd", "momentum", "nesterov", "rmsprop (defaults)", "adam"} <= set(r["optimizers"])
    for name, diff in r["optimizers"].items():
        assert diff < 1e-10, (backend, name, diff)
    assert r["optimizer_defaults"] == {"SGD": [], "RMSprop": [], "Adam": []}


def test_initializers_match_keras(backend, keras_results):
    stats = keras_results[backend]["initializers"]
    assert set(stats) == {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal"}
    for name, s in stats.items():
        assert s["std"][0] == pytest.approx(s["std"][1], rel=0.02), (backend, name)
        assert s["max_abs"][0] <= 1.001 * s["max_abs"][1], (backend, name)  # no wider


def test_worked_example_keras_equals_hand_derivation(backend, keras_results):
    hand = worked_by_hand()
    for hidden in ("linear", "relu"):
        assert_worked_example(keras_results[backend]["worked_example"][hidden], hand, rel=1e-12)
