"""RNN case: the seeded tasks, the custom cells against Keras' LSTM / GRU, gates held open,
hidden-state gradients (finite, per time step, the same on every backend), the `--quick`
run on every backend, a bad flag, the notebook.

Everything that needs Keras on a given backend runs in ONE subprocess per backend
(CHECKS below: the cell and gradient checks, then the `--quick` run in the same process),
started in the background when the first test that needs it runs, so the NumPy tests and
the notebook run meanwhile.
"""

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from conftest import backends_under_test, check, execute_notebook, run_python

from keras_cases.rnn import tasks
from keras_cases.rnn.tasks import CopyTask

CHECKS = r"""
import contextlib, io, json, runpy, sys
import numpy as np
import keras
from keras import layers, ops
from keras_cases import cli
from keras_cases.rnn import case, cells
from keras_cases.rnn.tasks import CopyTask

out = sys.argv[1]
res = {}
rng = np.random.default_rng(0)
x = rng.normal(size=(3, 6, 4)).astype("float32")
sig = lambda z: 1.0 / (1.0 + np.exp(-z))
np_ = lambda t: np.asarray(ops.convert_to_numpy(t), "float64")


def outputs(layer, weights):
    layer(x[:1])
    layer.set_weights(weights)
    return np_(layer(x))


def ref_lstm(w, open_gate=None):  # NumPy, gates i, f, c, o
    k, r, b = (np.asarray(v, "float64") for v in w)
    u = r.shape[0]
    h, c, hs = np.zeros((len(x), u)), np.zeros((len(x), u)), []
    for t in range(x.shape[1]):
        z = x[:, t] @ k + h @ r + b
        i, f, o = sig(z[:, :u]), sig(z[:, u:2 * u]), sig(z[:, 3 * u:])
        i, f, o = [np.ones_like(g) if open_gate == n else g for n, g in (("input", i), ("forget", f), ("output", o))]
        c = f * c + i * np.tanh(z[:, 2 * u:3 * u])
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs, 1)


def ref_gru(w, open_gate=None):  # NumPy, reset_after: gates z, r, h
    k, rk, b = (np.asarray(v, "float64") for v in w)
    u = rk.shape[0]
    h, hs = np.zeros((len(x), u)), []
    for t in range(x.shape[1]):
        xz = x[:, t] @ k + b[0]
        hz = h @ rk + b[1]
        z = sig(xz[:, :u] + hz[:, :u])
        r = np.ones((len(x), u)) if open_gate == "reset" else sig(xz[:, u:2 * u] + hz[:, u:2 * u])
        h = z * h + (1 - z) * np.tanh(xz[:, 2 * u:] + r * hz[:, 2 * u:])
        hs.append(h)
    return np.stack(hs, 1)


# 1. no gate open: the custom cells are Keras' LSTM and GRU (same weights, same outputs)
# (unrolled: run eagerly, a Python loop of small ops beats compiling a scan on JAX)
# (and placeholder zeros: the weights are set below; random initialisers compile on JAX)
seq = {"return_sequences": True, "unroll": True}
zeros = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}
for kind, builtin, cell in (("lstm", layers.LSTM(5, **seq, **zeros), cells.GatedLSTMCell(5, kernel_initializer="zeros")),
                            ("gru", layers.GRU(5, **seq, **zeros), cells.GatedGRUCell(5, kernel_initializer="zeros"))):
    builtin(x[:1])
    w = [rng.normal(0, 0.6, v.shape).astype("float32") for v in builtin.get_weights()]
    a, b = outputs(builtin, w), outputs(layers.RNN(cell, **seq), w)
    res[f"match_{kind}"] = float(np.max(np.abs(a - b)))
    res[f"ref_{kind}"] = float(np.max(np.abs(a - (ref_lstm if kind == "lstm" else ref_gru)(w))))

# 2. a gate held open: its pre-activation is pushed to -20 (so it would be shut), yet the
# layer computes the NumPy reference with that gate at 1, and its weights have no effect
u = 5
OPEN = [("lstm", "input", 0, ref_lstm), ("lstm", "forget", 1, ref_lstm), ("lstm", "output", 3, ref_lstm),
        ("gru", "reset", 1, ref_gru)]  # (cell, gate, its block in the weights, NumPy reference)
for kind, gate, block, ref in OPEN:
    cls = cells.GatedLSTMCell if kind == "lstm" else cells.GatedGRUCell
    make = lambda: cls(u, gate, kernel_initializer="zeros")
    layer = layers.RNN(make(), **seq)
    layer(x[:1])
    w = [rng.normal(0, 0.6, v.shape).astype("float32") for v in layer.get_weights()]
    sl = slice(block * u, (block + 1) * u)
    if kind == "lstm":
        w[2][sl] = -20.0
    else:
        w[2][:, sl] = -20.0
    got = outputs(layer, w)
    w2 = [v.copy() for v in w]
    w2[0][:, sl] += 3.0  # the open gate's input weights: must change nothing
    w2[1][:, sl] -= 3.0
    res[f"open_{kind}_{gate}"] = {
        "vs_reference": float(np.max(np.abs(got - ref(w, gate)))),
        "vs_shut": float(np.max(np.abs(got - ref(w, None)))),  # the gate at ~0 instead
        "weights_ignored": float(np.max(np.abs(outputs(layers.RNN(make(), **seq), w2) - got))),
    }

# 3. hidden-state gradients from the same NumPy-seeded weights (compared across backends),
# and the last step's against its closed form: dL/dh_T = W_dense (p - onehot(y))
task = CopyTask(6, 2, 4)
xs, ys = task.data(8, 0)
for kind in case.KINDS:
    res[f"grad_{kind}"] = case.probe_gradients(task, kind, 8, xs, ys, seed=0).tolist()
probe = case.build_copy_model(task, "lstm", 8, probe=True)
case.init_model(probe, 0, "chrono", task.steps)
p = np_(probe([xs, np.zeros((len(xs), task.steps, 8), "float32")]))[:, -1]
w_dense = np_(probe.get_layer("symbol").kernel)
closed = np.linalg.norm((p - np.eye(task.alphabet)[ys[:, -1]]) @ w_dense.T, axis=-1).mean()
res["grad_last_closed_form"] = [res["grad_lstm"][-1], float(closed)]

# 4. user mistakes: one line on stderr, exit code 2
for argv in (["--lengths", "20,x"], ["--studies", "gradients,bogus"], ["--alphabet", "1"], ["--units", "100000"]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli.run(case.main, argv + ["--out", out + "/bad", "-v", "0"])
    res.setdefault("bad_flags", []).append([argv, rc, err.getvalue()])

# 5. the --quick run, through the module's __main__ exactly as `python -m keras_cases.rnn`
# runs it (runpy, in this process: no second start-up), and its saved model loads back
def as_main(*argv):
    sys.argv = ["keras_cases.rnn", *argv]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            runpy.run_module("keras_cases.rnn", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        return e.code, err.getvalue()


res["main_bad_flag"] = as_main("--lengths", "10,-5", "--out", out + "/bad")
res["quick_rc"] = as_main("--quick", "--out", out + "/run", "-v", "0")[0]
res["loaded_params"] = keras.saving.load_model(out + "/run/model.keras", compile=False).count_params()
with open(out + "/checks.json", "w") as f:
    json.dump(res, f)
"""


# JAX compiles every model of the --quick run (its op-by-op mode is slower still); XLA's
# cheapest optimisation level roughly halves that here, and these tiny models don't notice
FAST_XLA = {"XLA_FLAGS": "--xla_backend_optimization_level=0"}


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    """One subprocess per backend (CHECKS), all started together in the background."""
    root = tmp_path_factory.mktemp("rnn")
    bs = backends_under_test()
    with ThreadPoolExecutor(len(bs)) as pool:
        yield (
            root,
            {
                b: pool.submit(run_python, ["-c", CHECKS, str(root / b)], backend=b, **(FAST_XLA if b == "jax" else {}))
                for b in bs
            },
        )


@pytest.fixture(scope="module")
def results(started):
    root, jobs = started
    out = {}
    for b in backends_under_test():
        check(jobs[b].result())
        out[b] = json.loads((root / b / "checks.json").read_text())
    return root, out


# --- the tasks, in NumPy ----------------------------------------------------------------
def test_copy_task_layout_and_seeding(started):
    task = CopyTask(delay=7, n_symbols=3, alphabet=5)
    x, y = task.tokens(400, seed=11)
    assert x.shape == (400, task.steps) == (400, 7 + 2 * 3)
    assert task.delimiter_step == 3 + 7 - 1 and task.delimiter == 6
    assert np.all(x[:, task.delimiter_step] == task.delimiter)
    assert np.all((x[:, :3] >= 1) & (x[:, :3] <= 5))  # symbols 1..K first
    blanks = np.delete(np.arange(task.steps), [0, 1, 2, task.delimiter_step])
    assert np.all(x[:, blanks] == 0)  # then blanks, and blanks after the delimiter
    assert np.array_equal(y, x[:, :3] - 1)  # targets: the symbols, in order, as 0..K-1
    counts = np.bincount(y.ravel(), minlength=5)
    assert counts.min() > 0.8 * counts.mean()  # symbols drawn uniformly
    x2, _ = task.tokens(400, seed=11)
    x3, _ = task.tokens(400, seed=12)
    assert np.array_equal(x, x2) and not np.array_equal(x, x3)
    oh, _ = task.data(5, seed=0)
    assert oh.shape == (5, task.steps, 7) and oh.dtype == np.float32 and np.all(oh.sum(-1) == 1)


def test_series_classes_balanced_standardized_and_distinct():
    x, y = tasks.series(301, 50, seed=3)
    assert x.shape == (301, 50, 1) and sorted(np.bincount(y)) == [100, 100, 101]
    assert np.allclose(x.mean(1), 0, atol=1e-5) and np.allclose(x.std(1), 1, atol=1e-4)
    assert np.array_equal(x, tasks.series(301, 50, seed=3)[0])
    t = np.arange(50)
    r2 = np.array([np.corrcoef(t, s[:, 0])[0, 1] ** 2 for s in x])  # straight-line fit
    lag1 = np.array([np.corrcoef(s[:-1, 0], s[1:, 0])[0, 1] for s in x])
    assert r2[y == 0].mean() > 0.5 > r2[y == 1].mean()  # trends are lines, sines are not
    assert lag1[y == 2].mean() > lag1[y == 1].mean()  # random walks are the smoothest


def test_train_val_test_come_from_distinct_seeds():
    sizes = tasks.Sizes(n_train=64, n_val=64, n_test=64, series_train=30, series_val=30, series_test=30)
    d = tasks.load_copy(CopyTask(5, 3, 8), sizes, data_seed=1)
    assert not np.array_equal(d.x_train, d.x_val) and not np.array_equal(d.x_val, d.x_test)
    assert np.array_equal(d.x_test, tasks.load_copy(CopyTask(5, 3, 8), sizes, data_seed=1).x_test)
    s = tasks.load_series(sizes, data_seed=1)
    assert not np.allclose(s.x_train, s.x_val)
    assert len({tuple(v) for v in tasks.split_seeds(1, 5)}) == 3


# --- Keras, per backend --------------------------------------------------------------------
def test_custom_cells_match_keras_lstm_and_gru(results, backend):
    r = results[1][backend]
    for kind in ("lstm", "gru"):
        assert r[f"match_{kind}"] < 1e-5, (kind, r[f"match_{kind}"])
        assert r[f"ref_{kind}"] < 1e-5, (kind, r[f"ref_{kind}"])  # and the NumPy reference


def test_an_open_gate_is_held_at_one(results, backend):
    r = results[1][backend]
    for name in ("open_lstm_input", "open_lstm_forget", "open_lstm_output", "open_gru_reset"):
        assert r[name]["vs_reference"] < 1e-5, (name, r[name])
        assert r[name]["vs_shut"] > 1e-2, (name, r[name])  # the check can tell open from shut
        assert r[name]["weights_ignored"] == 0.0, (name, r[name])


def test_hidden_state_gradients_are_finite_per_timestep(results, backend):
    r = results[1][backend]
    steps = CopyTask(6, 2, 4).steps
    for kind in ("simple_rnn", "lstm", "gru"):
        g = np.array(r[f"grad_{kind}"])
        assert g.shape == (steps,) and np.all(np.isfinite(g)) and np.all(g > 0), (kind, g)
    assert r["grad_last_closed_form"][0] == pytest.approx(r["grad_last_closed_form"][1], rel=1e-4)


def test_hidden_state_gradients_agree_across_backends(results):
    r = results[1]
    first = backends_under_test()[0]
    for b in r:
        for kind in ("simple_rnn", "lstm", "gru"):
            np.testing.assert_allclose(
                r[b][f"grad_{kind}"], r[first][f"grad_{kind}"], rtol=1e-3, atol=1e-9, err_msg=f"{b} vs {first}, {kind}"
            )


def test_user_mistakes_are_one_line_and_exit_2(results, backend):
    """Through cli.run(main), and through the module's __main__ (runpy)."""
    bad = results[1][backend]["bad_flags"]
    assert len(bad) == 4
    for argv, rc, err in bad:
        assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, (argv, rc, err)
    assert bad[0][2] == "error: --lengths: 'x' is not an integer\n"
    assert results[1][backend]["main_bad_flag"] == [2, "error: --lengths: -5 must be at least 1\n"]


def test_quick_run_writes_every_artifact(results, backend):
    root, r = results
    assert r[backend]["quick_rc"] == 0
    d = root / backend / "run"
    for name in (
        "metrics.json",
        "history.csv",
        "report.md",
        "config.json",
        "model.keras",
        "gru.keras",
        "simple_rnn.keras",
        "hidden_gradients.png",
        "spectral_radius.png",
        "copy_accuracy.png",
        "copy_learning_curves.png",
        "series_examples.png",
        "ablation_curves.png",
    ):
        assert (d / name).is_file(), name
    m = json.loads((d / "metrics.json").read_text())
    for k in ("backend", "keras_version", "dataset", "n_train", "n_test", "seconds", "seed"):
        assert k in m, k
    assert m["backend"] == backend and m["lengths"] == [8]
    chance = 1 / m["alphabet"]  # per-token accuracy of a model that learned nothing
    for k in ("simple_rnn", "lstm", "gru"):
        # even two --quick epochs copy some symbols: untrained, the 256 test tokens give
        # 0.25 +- 0.03; trained, 0.5 to 0.73 (NumPy-drawn weights: the same on every backend)
        assert m[f"copy8_{k}_test_accuracy"] > chance + 0.1, (k, m[f"copy8_{k}_test_accuracy"])
        assert 0.0 <= m[f"series_{k}_test_accuracy"] <= 1.0  # 2 epochs: still near chance (1/3)
        assert np.isfinite(m[f"grad_log10_ratio_init_{k}_T8"]) and np.isfinite(m[f"grad_log10_ratio_trained_{k}_T8"])
        assert len(m[f"hidden_grad_norms_trained_{k}"]) == 8 + 2 * 2
    assert m["lstm_copy_params"] > m["gru_copy_params"] > m["simple_rnn_copy_params"]
    assert m["ablation_forget_used_params"] < m["lstm_copy_params"] == r[backend]["loaded_params"]
    at = {k: m[f"copy8_{k}_test_accuracy"] for k in ("simple_rnn", "lstm", "gru")}
    assert m["target_length"] == 8
    assert m["target_met"] is (max(at["lstm"], at["gru"]) >= 0.95 > at["simple_rnn"])  # the verdict's rule
    assert ("**Target met**" if m["target_met"] else "**Target NOT met**") in (d / "report.md").read_text()
    h = pd.read_csv(d / "history.csv")
    assert {"copy8_lstm_seed0", "series_gru_seed0", "copy8_lstm_custom_forget_open_seed0"} <= set(h.model)
    assert h.recurrent_radius.notna().all() and (h.recurrent_radius > 0).all()
    report = (d / "report.md").read_text()
    for link in ("(hidden_gradients.png)", "(spectral_radius.png)", "(copy_accuracy.png)", "(ablation_curves.png)"):
        assert link in report, link
    assert "Target" in report and "| SimpleRNN |" in report


def test_notebook_runs(tmp_path, started):
    execute_notebook("rnn.ipynb", tmp_path)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (
        m["studies"] == ["gradients"] and len(m["hidden_grad_norms_init_lstm"]) == m["lengths"][0] + 2 * m["n_symbols"]
    )
