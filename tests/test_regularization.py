"""Regularization: overfitting on the seeded polynomial data, a bias-variance
decomposition that adds up, a quick run that writes every artifact, the notebook."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import check, execute_notebook, run_python

from keras_cases import UserError
from keras_cases.regularization import polynomials as poly
from keras_cases.regularization.case import parse_studies


def test_degree_15_overfits_where_degree_3_does_not():
    per = poly.fit_errors(seeds=range(5))
    for s in range(5):
        assert per[15]["train_mse"][s] < per[3]["train_mse"][s] < per[1]["train_mse"][s]
        assert per[15]["test_mse"][s] > per[3]["test_mse"][s]  # overfit
        assert per[1]["test_mse"][s] > per[3]["test_mse"][s]  # underfit
    assert np.mean(per[15]["max_abs_coef"]) > 100 * np.mean(per[3]["max_abs_coef"])


def test_bias_variance_adds_up_on_a_known_truth():
    truth = lambda x: 2.0 * x - 1.0  # noqa: E731
    rng = np.random.default_rng(0)
    # a straight line fit to a straight line: no bias, variance ~ 2 sigma^2 / n on average
    r1 = poly.bias_variance(truth, 1, n_train=20, noise=0.5, n_sets=400, rng=rng)
    assert r1["bias2"] < 0.01 * r1["variance"]
    assert r1["variance"] == pytest.approx(2 * 0.25 / 20, rel=0.25)
    # a constant fit to the line: bias^2 = mean over test x of (2x - 1)^2 on [0.02, 0.98]
    x = np.linspace(0.02, 0.98, 200)
    r0 = poly.bias_variance(truth, 0, n_train=20, noise=0.5, n_sets=400, rng=rng)
    assert r0["bias2"] == pytest.approx(np.mean((2 * x - 1) ** 2), rel=0.05)
    for r in (r0, r1, poly.bias_variance(poly.truth_biasvar, 6, 30, 0.3, 300, rng)):
        assert r["sum"] == pytest.approx(r["bias2"] + r["variance"] + r["noise"])
        assert r["test_error"] == pytest.approx(r["sum"], rel=0.03)  # measured directly vs decomposition


def test_unknown_study_is_a_user_error():
    assert parse_studies("a, biasvar,a") == ["a", "b"]
    with pytest.raises(UserError, match="unknown study 'x'"):
        parse_studies("a,x")


def test_quick_run_writes_every_artifact(tmp_path):
    p = check(run_python(["-m", "keras_cases.regularization", "--quick", "--out", str(tmp_path), "-v", "0"]))
    m = json.loads((tmp_path / "metrics.json").read_text())
    for k in ("backend", "keras_version", "dataset", "n_train", "n_test", "seconds", "seed"):
        assert k in m, k
    assert m["fit_degree15_train_mse"] < m["fit_degree3_train_mse"]
    assert m["fit_degree15_test_mse"] > m["fit_degree3_test_mse"]
    assert m["biasvar_max_rel_gap"] < 0.05 and 2 <= m["biasvar_best_degree"] <= 15
    for k in ("dropout0_test_accuracy", "dropout0.5_test_accuracy", "fixed_test_accuracy", "early_test_accuracy"):
        assert 0.5 < m[k] <= 1.0, (k, m[k])  # 10 classes: chance is 0.1
    # the L2 sweep: CIFAR-10, 50 images per class in every split, 8 epochs: above chance
    assert m["l2_n_train"] == m["l2_n_test"] == 500 and "CIFAR-10" in m["l2_dataset"]
    for k in ("l2_0_test_accuracy", "l2_0.01_test_accuracy"):
        assert 0.18 < m[k] <= 1.0, (k, m[k])
    assert m["l2_0.01_weight_norm"] < m["l2_0_weight_norm"]  # weight decay shrinks the weights
    assert m["early_epochs_run"] <= 4
    for name in (
        "fit_curves.png",
        "bias_variance.png",
        "dropout_curves.png",
        "l2_sweep.png",
        "early_stopping.png",
        "history.csv",
        "report.md",
        "mlp_dropout0.keras",
        "mlp_dropout0.5.keras",
        "config.json",
    ):
        assert (tmp_path / name).is_file(), name
    report = (tmp_path / "report.md").read_text()
    assert "CIFAR-10" in report and all(f"({f})" in report for f in ("fit_curves.png", "l2_sweep.png"))
    h = pd.read_csv(tmp_path / "history.csv")
    assert {"mlp_dropout0_seed0", "mlp_dropout0.5_seed0", "cnn_l2_0_seed0"} <= set(h.model)
    assert "bias²" in p.stdout


def test_notebook_runs(tmp_path):
    nb, _ = execute_notebook("regularization.ipynb", tmp_path)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["studies"] == ["a", "b"] and "fit_degree15_test_mse" in m
