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
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import backends_under_test, check, execute_notebook, run_python

from keras_cases.rnn import tasks
from keras_cases.rnn.tasks import CopyTask

CHECKS = str(Path(__file__).parent / "scripts" / "rnn_checks.py")  # run as a file in a subprocess


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
                b: pool.submit(run_python, [CHECKS, str(root / b)], backend=b, **(FAST_XLA if b == "jax" else {}))
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
