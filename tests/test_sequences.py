"""Sequences: the seeded generators and their statistics, causal detectors that really are
causal, padding that never looks like a digit, a quick run that writes every artifact on
every backend, one-line errors, the notebook."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import check, execute_notebook, run_python

from keras_cases import UserError, cli
from keras_cases.sequences import case, changepoint, data, models


@pytest.fixture(scope="module")
def changes():
    return data.changepoint_data(20000, np.random.default_rng(0))


def test_changepoint_generator_statistics(changes):
    d = changes
    n, length, dims = d.x.shape
    assert (n, length, dims) == (20000, 100, 10) and d.x.dtype == np.float32
    assert abs(d.has_change.mean() - 0.8) < 0.015
    t = d.change[d.has_change]
    assert t.min() == 1 and t.max() == 99  # T ~ U{1..99}
    counts = np.bincount(t, minlength=100)[1:]
    expected = len(t) / 99
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < 98 + 4 * np.sqrt(2 * 98), chi2  # roughly uniform: chi-square with 98 dof
    shifted = (d.shift != 0).sum(1)
    assert np.all(shifted[d.has_change] == 5) and np.all(shifted[~d.has_change] == 0)
    assert np.abs(d.shift).max() <= 1 and abs(d.shift[d.shift != 0].mean()) < 0.02
    assert abs(np.abs(d.shift[d.shift != 0]).mean() - 0.5) < 0.02  # U[-1, 1]
    # labels: 1 at and after T, 0 before and everywhere without a change
    steps = np.arange(length)
    want = d.has_change[:, None] & (steps[None, :] >= d.change[:, None])
    np.testing.assert_array_equal(d.y, want.astype("float32"))
    assert abs(d.y.mean() - 0.8 * 0.5) < 0.01  # 0.8 * E[(100 - T) / 100], T uniform on 1..99
    # the noise is N(0, 1) once the shift is taken away; the shift starts exactly at T
    noise = d.x - d.y[:, :, None] * d.shift[:, None, :]
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 1) < 0.01
    i = int(np.flatnonzero(d.has_change & (d.change > 10))[0])
    np.testing.assert_array_equal(d.x[i, : d.change[i]], noise[i, : d.change[i]])


def test_changepoint_generator_is_seeded_and_extrapolation_range_holds():
    a = data.changepoint_data(50, np.random.default_rng(3))
    b = data.changepoint_data(50, np.random.default_rng(3))
    c = data.changepoint_data(50, np.random.default_rng(4))
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    ex = data.changepoint_data(4000, np.random.default_rng(5), length=150, change_range=(120, 140))
    t = ex.change[ex.has_change]
    assert ex.x.shape[1] == 150 and t.min() == 120 and t.max() == 139
    assert len(np.unique(t)) == 20
    # the splits of a run come from distinct streams
    draws = {s: data.data_rng(0, "changepoint", s).random() for s in data.SPLITS}
    assert len(set(draws.values())) == len(data.SPLITS)
    with pytest.raises(UserError, match="does not fit"):
        data.changepoint_data(5, np.random.default_rng(0), length=50, change_range=(40, 60))


@pytest.mark.parametrize("task", ["a", "b"])
def test_query_generator_pads_apart_from_digits_and_balances_labels(task):
    q = data.query_data(8000, np.random.default_rng(1), task)
    valid = np.arange(q.tokens.shape[1])[None, :] < q.lengths[:, None]
    assert q.tokens.shape == (8000, 20) and q.lengths.min() == 5 and q.lengths.max() == 20
    assert np.all(q.tokens[~valid] == data.PAD)  # padding only after the end ...
    assert np.all((q.tokens[valid] >= 1) & (q.tokens[valid] <= 10))  # ... and never a digit's token
    assert set(np.unique(q.tokens[valid]) - 1) == set(range(10))  # every digit 0..9 occurs
    assert abs(q.y.mean() - 0.5) < 0.02  # balanced: the majority baseline is ~0.5
    assert q.query.min() == 0 and q.query.max() == (9 if task == "a" else 8)
    truth = [data.answer(data.digits_of(q.tokens[i], q.lengths[i]), int(q.query[i, 0]), task) for i in range(8000)]
    np.testing.assert_array_equal(q.y, np.array(truth, "float32"))
    if task == "b":  # most negatives ask about a digit that is there, just not followed by q+1
        neg = np.flatnonzero(q.y == 0)
        seen = [data.answer(data.digits_of(q.tokens[i], q.lengths[i]), int(q.query[i, 0]), "a") for i in neg]
        assert np.mean(seen) > 0.5
    assert data.answer([3, 1, 2, 7], 1, "b") and not data.answer([2, 1, 7], 1, "b") and data.answer([0, 9], 9, "a")
    np.testing.assert_array_equal(q.tokens, data.query_data(8000, np.random.default_rng(1), task).tokens)


def test_bayes_detector_is_calibrated_and_beats_the_base_rate():
    d = data.changepoint_data(300, np.random.default_rng(7), length=60)
    p = data.bayes_posterior(d.x, change_range=(1, 60))
    assert p.shape == d.y.shape and np.all((p >= 0) & (p <= 1)) and np.all(p[:, 0] == 0)
    assert abs(p.mean() - d.y.mean()) < 0.02  # a posterior's average is the base rate
    s = changepoint.changepoint_scores(p, d)
    assert s["accuracy"] > 0.85 > 1 - d.y.mean() + 0.2


def test_detectors_are_causal_and_a_same_padded_conv_is_not():
    import keras
    from keras import layers

    from keras_cases import runtime

    x = data.changepoint_data(8, np.random.default_rng(2), length=40).x
    for build in models.CHANGEPOINT_MODELS.values():
        model = build()
        runtime.init_weights(model, 0)
        for t in (0, 17, 38):
            assert models.leak(model, x, t) < 1e-6, (model.name, t)
        assert models.leak(model, x, 17, seed=1) < 1e-6
    inputs = keras.Input((None, 10))
    leaky = keras.Model(inputs, layers.Conv1D(1, 3, padding="same")(inputs)[..., 0])
    runtime.init_weights(leaky, 0)
    assert models.leak(leaky, x, 17) > 1e-3  # the check can fail


def test_summary_ignores_padding():
    from keras_cases import runtime

    model = models.build_query_model()
    runtime.init_weights(model, 0)
    digits = np.array([[4, 1, 10, 3, 3, 7]], "int32")  # tokens: digits 3, 0, 9, 2, 2, 6
    q = np.array([[2]], "int32")
    bare = model.predict({"tokens": digits, "query": q}, verbose=0)
    padded = np.concatenate([digits, np.full((1, 14), data.PAD, "int32")], 1)
    np.testing.assert_allclose(model.predict({"tokens": padded, "query": q}, verbose=0), bare, rtol=1e-5, atol=1e-6)


def test_one_compiled_model_serves_every_seed():
    class Args:
        batch_size, patience, epochs, verbose = 32, 1, 2, 0

    tr = data.changepoint_data(64, np.random.default_rng(0), length=20)
    va = data.changepoint_data(32, np.random.default_rng(1), length=20)
    model = models.build_cnn()
    fresh = models.compile_once(model, 3e-3)
    runs = [models.fit(model, fresh, tr.x, tr.y, (va.x, va.y), Args, s)["loss"] for s in (0, 1, 0)]
    np.testing.assert_allclose(runs[2], runs[0], rtol=1e-6)  # weights and Adam state start afresh
    assert not np.allclose(runs[1], runs[0])


def test_changepoint_models_learn():
    """Six epochs on 384 sequences: both detectors beat the majority baseline (0.61) on
    held-out sequences by a margin (trained: about 0.72 and 0.74 on every backend)."""
    from keras_cases import runtime

    class Args:
        batch_size, patience, epochs, verbose = 32, 3, 6, 0

    tr, va, te = (
        data.changepoint_data(n, np.random.default_rng(s), length=24) for n, s in ((384, 0), (128, 1), (256, 2))
    )
    majority = max(te.y.mean(), 1 - te.y.mean())
    for build in models.CHANGEPOINT_MODELS.values():
        model = build()
        models.fit(model, models.compile_once(model, 3e-3), tr.x, tr.y, (va.x, va.y), Args, 0)
        trained = changepoint.changepoint_scores(np.asarray(model.predict(te.x, verbose=0)), te)["accuracy"]
        runtime.init_weights(model, 0)
        untrained = changepoint.changepoint_scores(np.asarray(model.predict(te.x, verbose=0)), te)["accuracy"]
        assert untrained < majority + 0.01 < majority + 0.05 < trained, (model.name, untrained, trained)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--studies", "changepoint,nope"], "unknown study 'nope'"),
        (["--studies", ","], "--studies is empty"),
        (["--lr", "5"], "--lr 5.0 must be in (0, 1)"),
        (["--length", "5"], "--length 5 is too short"),
        (["--max-len", "3"], "--max-len 3 is too short"),
        (["--length", "5000"], "--length 5,000 is too long"),
        (["--n-query", "100000000"], "--n-query 100,000,000: the training set would take"),
    ],
)
def test_bad_flag_value_is_one_line_and_exit_code_2(args, message, capsys, tmp_path):
    code = cli.run(case.main, args + ["--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # nothing written before the flags are checked


def test_quick_run_writes_every_artifact(backend, tmp_path):
    p = check(
        run_python(["-m", "keras_cases.sequences", "--quick", "--out", str(tmp_path), "-v", "0"], backend=backend)
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["backend"] == backend and m["seeds"] == 1
    for k in ("keras_version", "dataset", "n_train", "n_test", "seconds", "seed"):
        assert k in m, k
    assert all(not isinstance(v, dict) for k, v in m.items() if k != "headline")  # flat, but for Run.finish's block
    assert m["headline"] == {"accuracy": m[f"{m['model']}_test_accuracy"]}
    h = pd.read_csv(tmp_path / "history.csv")
    for name in ("lstm", "cnn"):
        assert m[f"changepoint_{name}_causal_leak"] < 1e-5, name
        # two --quick epochs learn too little to beat the majority baseline (that is
        # test_changepoint_models_learn), but training that changes nothing fails this:
        # the same weights give the same epoch loss (LSTM 0.6927 -> 0.6876, CNN 1.56 -> 0.95)
        loss = h[h.model == f"changepoint_{name}_seed0"]["loss"].to_numpy()
        assert loss[-1] < loss[0] - 1e-3, (name, loss)
    assert 0.8 < m["changepoint_lstm_params"] / m["changepoint_cnn_params"] < 1.25  # similar sizes
    assert m["changepoint_bayes_test_accuracy"] > 1 - m["changepoint_label_rate"]
    for task in "ab":
        assert m[f"query_{task}_majority"] == max(m[f"query_{task}_label_rate"], 1 - m[f"query_{task}_label_rate"])
        assert 0.3 < m[f"query_{task}_label_rate"] < 0.7
    for name in (
        "metrics.json",
        "history.csv",
        "report.md",
        "config.json",
        "model.keras",
        "changepoint_lstm.keras",
        "changepoint_cnn.keras",
        "query_a.keras",
        "query_b.keras",
        "changepoint_detection.png",
        "changepoint_examples.png",
        "changepoint_curves.png",
        "query_by_length.png",
        "query_curves.png",
    ):
        assert (tmp_path / name).is_file(), name
    assert set(h.model) == {"changepoint_lstm_seed0", "changepoint_cnn_seed0", "query_a_seed0", "query_b_seed0"}
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(h.columns)
    report = (tmp_path / "report.md").read_text()
    assert all(f"({f})" in report for f in ("changepoint_detection.png", "query_by_length.png"))
    assert "Bayes-optimal" in report and "majority baseline" in report and "parameters" in report
    lstm = lambda i, u: 4 * (u * (i + u) + u)  # four gates: kernel, recurrent kernel, bias
    params = lstm(10, 32) + lstm(32, 32) + 32 + 1  # 2 LSTM layers of 32 on 10 inputs, Dense(1) per step
    assert m["changepoint_lstm_params"] == params and f"{params:,}" in p.stdout  # the count is printed


def test_notebook_runs(tmp_path):
    nb, out = execute_notebook("sequences.ipynb", tmp_path)
    m = json.loads((out / "metrics.json").read_text())
    assert m["studies"] == "changepoint" and "changepoint_cnn_test_accuracy" in m
    assert (out / "changepoint_detection.png").is_file()
