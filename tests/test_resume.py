"""Resuming: a run stopped after epoch k and resumed ends with the same epochs and the same
weights as one never stopped, on every backend (exact on CPU: the same operations run in the
same order on the same values; compared with atol 1e-6)."""

import json

import numpy as np
from conftest import QUICK_CHURN, check, run_python, shared_run


def test_a_fit_stopped_and_resumed_equals_an_uninterrupted_one(backend, tmp_path):
    proc = check(run_python(["tests/scripts/resume_fit.py", str(tmp_path / "ck")], backend=backend))
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["stopped"] and r["saved_epoch"] == 3
    assert len(r["resumed_loss"]) == len(r["whole_loss"]) >= 4
    np.testing.assert_allclose(r["resumed_loss"], r["whole_loss"], rtol=0, atol=1e-6)
    assert r["diff"] <= 1e-6 and r["diff_restored"] <= 1e-6, r
    assert r["again_loss"] == r["resumed_loss"]
    assert min(r["lr"]) < max(r["lr"]), "ReduceLROnPlateau never acted: the test would not see its state"


def test_churn_interrupted_then_resumed_is_the_uninterrupted_run(backend, tmp_path, tmp_path_factory):
    quick = QUICK_CHURN
    whole, _ = shared_run(tmp_path_factory, quick, backend)  # the same run test_churn.py checks
    stopped = run_python([*quick, "--out", str(tmp_path / "cut")], backend=backend, KERAS_CASES_STOP_AFTER_EPOCHS=3)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert f"--resume {tmp_path / 'cut'}" in stopped.stderr
    record = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert record["status"] == "interrupted" and not (tmp_path / "cut" / "metrics.json").exists()
    serve = run_python(
        ["-m", "keras_cases.churn", "predict", "--run", str(tmp_path / "cut"), "--csv", "x.csv"], backend=backend
    )
    assert serve.returncode == 2 and "not a complete run (status interrupted" in serve.stderr
    again = check(run_python(["-m", "keras_cases.churn", "--resume", str(tmp_path / "cut")], backend=backend))
    assert "resumed baseline_mlp_seed0 at epoch 3" in again.stdout
    record = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert record["status"] == "complete" and record["resumed"]
    assert not (tmp_path / "cut" / "checkpoints").exists()
    a = (whole / "history.csv").read_text()
    b = (tmp_path / "cut" / "history.csv").read_text()
    assert a == b
    ma = json.loads((whole / "metrics.json").read_text())
    mb = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    for k in ("roc_auc", "recall", "precision", "threshold"):
        assert ma[k] == mb[k], k
    done = run_python(["-m", "keras_cases.churn", "--resume", str(tmp_path / "cut")], backend=backend)
    assert done.returncode == 2 and "already complete" in done.stderr


def test_sequences_interrupted_then_resumed_is_the_uninterrupted_run(backend, tmp_path):
    """A multi-study case (four fits: two change-point detectors, two query tasks), cut after
    epoch 2 of its first fit: the resumed run continues that fit at epoch 3, trains the three
    others, and ends with the same history and the same test metrics."""
    quick = ["-m", "keras_cases.sequences", "--quick", "--epochs", "3", "-v", "0"]
    check(run_python([*quick, "--out", str(tmp_path / "whole")], backend=backend))
    stopped = run_python([*quick, "--out", str(tmp_path / "cut")], backend=backend, KERAS_CASES_STOP_AFTER_EPOCHS=2)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    record = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert record["status"] == "interrupted" and not (tmp_path / "cut" / "metrics.json").exists()
    again = check(run_python(["-m", "keras_cases.sequences", "--resume", str(tmp_path / "cut")], backend=backend))
    assert "resumed changepoint_lstm_seed0 at epoch 2" in again.stdout
    record = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert record["status"] == "complete" and record["resumed"]
    assert not (tmp_path / "cut" / "checkpoints").exists()
    a = (tmp_path / "whole" / "history.csv").read_text()
    assert a == (tmp_path / "cut" / "history.csv").read_text()
    assert "changepoint_lstm_seed0,3," in a  # the cut fit did go on past epoch 2
    ma = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    tested = [k for k in ma if "_test_" in k or k.endswith("_val_accuracy")]
    assert len(tested) >= 10
    for k in tested:
        assert ma[k] == mb[k], k


def _without(csv_text: str, column: str) -> list:
    """history.csv rows without a (wall-clock) column."""
    rows = [line.split(",") for line in csv_text.strip().splitlines()]
    drop = rows[0].index(column)
    return [r[:drop] + r[drop + 1 :] for r in rows]


def test_cifar_interrupted_then_resumed_is_the_uninterrupted_run(backend, tmp_path, tmp_path_factory):
    """The CIFAR recipe (augmented batches shuffled per epoch, a one-cycle schedule, the
    epoch clock), cut after epoch 2 of 3: the resumed fit goes on at epoch 3 with the same
    augmentation order and ends with the same history and test accuracy; the clock carries
    on from the seconds already spent."""
    quick = ["-m", "keras_cases.cifar", "--quick", "-v", "0"]
    whole, _ = shared_run(tmp_path_factory, quick, backend)  # the same run test_cifar.py checks
    stopped = run_python([*quick, "--out", str(tmp_path / "cut")], backend=backend, KERAS_CASES_STOP_AFTER_EPOCHS=2)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    record = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert record["status"] == "interrupted" and not (tmp_path / "cut" / "metrics.json").exists()
    again = check(run_python(["-m", "keras_cases.cifar", "--resume", str(tmp_path / "cut")], backend=backend))
    assert "resumed recipe_seed0 at epoch 2" in again.stdout
    record = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert record["status"] == "complete" and record["resumed"]
    assert not (tmp_path / "cut" / "checkpoints").exists()
    a = (whole / "history.csv").read_text()
    b = (tmp_path / "cut" / "history.csv").read_text()
    assert _without(a, "wall_seconds") == _without(b, "wall_seconds")
    assert len(a.strip().splitlines()) == 4  # header + 3 epochs
    seconds = [float(r.split(",")[-1]) for r in b.strip().splitlines()[1:]]
    assert seconds == sorted(seconds), "the resumed clock restarted from zero"
    ma = json.loads((whole / "metrics.json").read_text())
    mb = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    for k in ("test_accuracy", "test_accuracy_no_tta", "val_accuracy", "epochs_trained"):
        assert ma[k] == mb[k], k
