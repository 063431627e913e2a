"""The comparison protocol: folds that are disjoint, stratified and the same for every
model; the corrected resampled t interval against a hand computation; churn --cv end to end."""

import json

import numpy as np
import pytest
from conftest import check, many_small_models_backend, run_python
from scipy import stats

from keras_cases import UserError, protocol


def test_folds_partition_every_row_once_per_repeat_and_hold_out_validation():
    y = np.array([0] * 70 + [1] * 30)
    splits = protocol.folds(y, k=5, repeats=2, seed=3)
    assert len(splits) == 10
    for r in range(2):
        tests = np.concatenate([f.test for f in splits if f.repeat == r])
        assert sorted(tests.tolist()) == list(range(100))  # each row held out once per repeat
    for f in splits:
        assert not set(f.train) & set(f.val) and not set(f.train) & set(f.test) and not set(f.val) & set(f.test)
        assert len(f.train) + len(f.val) + len(f.test) == 100
        assert y[f.test].mean() == pytest.approx(0.3)  # stratified
        assert y[f.val].mean() == pytest.approx(0.3, abs=0.05)
    again = protocol.folds(y, k=5, repeats=2, seed=3)
    assert all((a.test == b.test).all() and (a.val == b.val).all() for a, b in zip(splits, again))
    other = protocol.folds(y, k=5, repeats=2, seed=4)
    assert any((a.test != b.test).any() for a, b in zip(splits, other))


def test_too_few_of_a_class_for_the_folds_is_a_user_error():
    with pytest.raises(UserError, match="smallest class has 7 rows"):
        protocol.folds(np.array([0] * 50 + [1] * 7), k=5)


def test_corrected_resampled_t_matches_a_hand_computation():
    a = np.array([0.84, 0.85, 0.83, 0.86, 0.84, 0.85])
    b = np.array([0.83, 0.845, 0.826, 0.85, 0.835, 0.84])
    r = protocol.paired(a, b, n_train=800, n_test=200)
    d = a - b
    se = np.sqrt((1 / 6 + 200 / 800) * d.var(ddof=1))
    t = stats.t.ppf(0.975, 5)
    assert r["diff"] == pytest.approx(d.mean())
    assert (r["low"], r["high"]) == pytest.approx((d.mean() - t * se, d.mean() + t * se))
    assert r["verdict"] == "better"  # every fold agrees: the interval excludes 0
    # the same differences with the naive (uncorrected) variance would be narrower
    assert se > np.sqrt(d.var(ddof=1) / 6)
    flip = protocol.paired(b, a, 800, 200)
    assert flip["verdict"] == "worse" and flip["low"] == pytest.approx(-r["high"])
    noisy = protocol.paired(a, a[::-1], 800, 200)
    assert noisy["verdict"] == "not distinguishable"


def test_churn_cross_validation_is_paired_and_scores_every_model_per_fold(tmp_path):
    check(
        run_python(
            [
                "-m",
                "keras_cases.churn",
                "--quick",
                "--cv",
                "2",
                "--repeats",
                "1",
                "--encodings",
                "log1p",
                "--networks",
                "mlp,residual",
                "--ensemble",
                "2",
                "-v",
                "0",
                "--out",
                str(tmp_path / "cv"),
            ],
            backend=many_small_models_backend(),
        )
    )
    m = json.loads((tmp_path / "cv" / "metrics.json").read_text())
    auc = m["summaries"]["roc_auc"]
    assert set(auc["models"]) == {
        "improved MLP",
        "improved MLP, log1p",
        "residual MLP on LR",
        "residual MLP on LR, log1p",
        "ensemble of 2 (network and encoding chosen)",
        "network chosen on validation",
        "baseline MLP",
        "logistic regression",
        "logistic regression, log1p",
        "gradient boosting",
    }
    models = auc["models"]
    chosen = models["network chosen on validation"]["folds"]
    names = [k for k in models if "MLP" in k and k != "baseline MLP"] + ["ensemble of 2 (network and encoding chosen)"]
    assert all(c in [models[n]["folds"][i] for n in names] for i, c in enumerate(chosen))  # per fold, a candidate
    p = m["protocol"]
    assert p["encodings"] == ["plain", "log1p"] and sum(p["encoding_chosen_in_folds"].values()) == 2
    assert p["networks"] == ["mlp", "residual"] and sum(p["network_chosen_in_folds"].values()) == 2
    for name, v in auc["models"].items():
        assert len(v["folds"]) == 2
        # a broken pipeline (leaky or shuffled labels, untrained model) cannot score like this
        assert min(v["folds"]) > 0.75, (name, v)
    pairs = {(r["model"], r["reference"]) for r in auc["paired"]}
    assert ("improved MLP", "logistic regression") in pairs and ("improved MLP", "gradient boosting") in pairs
    assert ("gradient boosting", "logistic regression") not in pairs  # each pair once
    assert ("network chosen on validation", "gradient boosting") in pairs
    row = [r for r in auc["paired"] if r["model"] == "improved MLP" and r["reference"] == "logistic regression"][0]
    folds = auc["models"]
    assert row["diff"] == pytest.approx(
        np.mean(folds["improved MLP"]["folds"]) - np.mean(folds["logistic regression"]["folds"])
    )
    assert row["low"] <= row["diff"] <= row["high"]
    assert m["headline"]["improved_mlp_roc_auc"] == pytest.approx(folds["improved MLP"]["mean"])
    report = (tmp_path / "cv" / "report.md").read_text()
    assert "corrected resampled t" in report and "folds_roc_auc.png" in report
    assert (tmp_path / "cv" / "folds_roc_auc.png").stat().st_size > 5000
