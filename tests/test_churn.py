"""The churn case on every backend: parity of outputs and gradients, models that load across
backends, a --quick run that writes every artifact, the saved run predicting raw rows, and
the notebook."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import (
    QUICK_CHURN,
    backends_under_test,
    check,
    execute_notebook,
    run_python,
    shared_run,
    tensorboard_scalars,
)

PARITY = str(Path(__file__).parent / "scripts" / "churn_parity.py")  # run as a file in a subprocess


@pytest.fixture(scope="module")
def parity_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("parity")
    for mode in ("compute", "load"):
        for b in backends_under_test():
            check(run_python([PARITY, mode, str(out)], backend=b))
    return out


def test_same_weights_same_outputs_and_gradients_on_every_backend(parity_dir):
    bs = backends_under_test()
    ref = np.load(parity_dir / f"{bs[0]}.npz")
    assert ref["p"].std() > 0.01  # not a degenerate model
    for b in bs[1:]:
        got = np.load(parity_dir / f"{b}.npz")
        np.testing.assert_allclose(got["p"], ref["p"], rtol=1e-5, atol=1e-7, err_msg=b)
        np.testing.assert_allclose(got["loss"], ref["loss"], rtol=1e-5, err_msg=b)
        for k in ref.files:
            if k.startswith("g"):
                scale = np.abs(ref[k]).max()
                np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-5 * scale, err_msg=f"{b} {k}")


def test_a_model_saved_on_one_backend_predicts_the_same_on_another(parity_dir):
    bs = backends_under_test()
    for loader in bs:
        loaded = np.load(parity_dir / f"{loader}_loaded.npz")
        assert sorted(loaded.files) == sorted(bs)
        for saver in bs:
            np.testing.assert_allclose(
                loaded[saver],
                np.load(parity_dir / f"{saver}.npz")["p"],
                rtol=1e-5,
                atol=1e-7,
                err_msg=f"saved on {saver}, loaded on {loader}",
            )


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """{backend: (run dir, stdout)}: one `--quick` run per backend, as a user types it, made
    once per test session (conftest.shared_run: test_resume.py compares a resumed run with
    it, test_serve.py serves the jax one, test_bad_input.py breaks copies of it)."""
    return {b: shared_run(tmp_path_factory, QUICK_CHURN, b) for b in backends_under_test()}


ARTIFACTS = [
    "metrics.json",
    "history.csv",
    "model.keras",
    "preprocessing.json",
    "decision.json",
    "config.json",
    "report.md",
    "learning_curves.png",
    "roc_pr.png",
    "threshold_sweep.png",
    "confusion_matrices.png",
    "eda.png",
    "explanations.png",
    "permutation_importance.csv",
]
KEYS = ["roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "threshold"]


def test_quick_run_writes_every_artifact(quick_runs):
    for b, (out, stdout) in quick_runs.items():
        for name in ARTIFACTS:
            assert (out / name).is_file() and (out / name).stat().st_size > 0, (b, name)
        m = json.loads((out / "metrics.json").read_text())
        for section in (m, m["baseline"], m["logistic_regression"]):
            assert all(0 <= section[k] <= 1 for k in KEYS), (b, section)
        for k in ("backend", "keras_version", "dataset", "n_train", "n_val", "n_test", "seconds", "seed"):
            assert k in m, (b, k)
        assert m["backend"] == b and m["n_train"] + m["n_val"] + m["n_test"] == 7043
        assert m["headline"] == {k: m[k] for k in ("roc_auc", "pr_auc", "recall", "precision", "f1")}, b
        # the tuned threshold meets its objective on validation, as logged in the history
        h = pd.read_csv(out / "history.csv")
        assert {"model", "epoch", "loss", "val_auc", "val_threshold"} <= set(h.columns)
        assert m["roc_auc"] > 0.8 and m["recall"] > 0.7  # a real model, even after 6 epochs
        report = (out / "report.md").read_text()
        for png in [n for n in ARTIFACTS if n.endswith(".png")]:
            assert f"]({png})" in report, (b, png)
        assert "residual network @ threshold" in stdout


def test_tensorboard_logs_every_epoch_of_every_model(quick_runs):
    for b, (out, _) in quick_runs.items():
        hist = pd.read_csv(out / "history.csv")
        for model in ("baseline", "residual"):
            train = tensorboard_scalars(out / "tensorboard" / f"{model}_mlp_seed0" / "train")
            val = tensorboard_scalars(out / "tensorboard" / f"{model}_mlp_seed0" / "validation")
            h = hist[hist.model == model]
            assert len(train["epoch_loss"]) == len(val["epoch_loss"]) == len(h) >= 1, (b, model)
            np.testing.assert_allclose(train["epoch_loss"], h["loss"], rtol=1e-5)
            np.testing.assert_allclose(val["epoch_loss"], h["val_loss"], rtol=1e-5)


def test_same_command_similar_metrics_on_every_backend(quick_runs):
    """NumPy-drawn weights and NumPy-shuffled batches make one seed the same run everywhere;
    only dropout masks (each backend's own RNG) and float round-off differ."""
    ms = {b: json.loads((out / "metrics.json").read_text()) for b, (out, _) in quick_runs.items()}

    def spread(get):
        vals = [get(m) for m in ms.values()]
        return max(vals) - min(vals)

    assert spread(lambda m: m["roc_auc"]) < 0.01, {b: m["roc_auc"] for b, m in ms.items()}
    # the baseline has no dropout: only round-off separates the backends
    assert spread(lambda m: m["baseline"]["roc_auc"]) < 0.002
    assert spread(lambda m: m["baseline"]["pr_auc"]) < 0.005
    lr = {m["logistic_regression"]["roc_auc"] for m in ms.values()}
    assert len(lr) == 1  # the scikit-learn reference does not depend on the backend


def test_saved_run_predicts_raw_rows(quick_runs, kaggle_csv, tmp_path):
    out, _ = next(iter(quick_runs.values()))
    new = pd.read_csv(kaggle_csv).head(50).drop(columns="Churn")
    new.to_csv(tmp_path / "new.csv", index=False)
    for b in quick_runs:
        dest = tmp_path / f"pred_{b}.csv"
        check(
            run_python(
                [
                    "-m",
                    "keras_cases.churn",
                    "predict",
                    "--run",
                    str(out),
                    "--csv",
                    str(tmp_path / "new.csv"),
                    "--output",
                    str(dest),
                ],
                backend=b,
            )
        )
        pred = pd.read_csv(dest)
        assert len(pred) == 50 and list(pred.columns) == ["customer_id", "churn_probability", "churn_predicted"]
        assert pred["churn_probability"].between(0, 1).all()
        t = json.loads((out / "decision.json").read_text())["threshold"]
        assert (pred["churn_predicted"] == (pred["churn_probability"] >= t)).all()
    first, *others = [pd.read_csv(tmp_path / f"pred_{b}.csv") for b in quick_runs]
    for other in others:  # the one saved model scores the same on every backend
        np.testing.assert_allclose(other["churn_probability"], first["churn_probability"], rtol=1e-5)


JAX_ONLY = str(Path(__file__).parent / "scripts" / "churn_jax_only.py")  # run as a file in a subprocess


def test_jax_path_never_imports_tensorflow(tmp_path):
    check(run_python([JAX_ONLY, str(tmp_path)], backend="jax"))


def test_notebook_runs(tmp_path):
    nb, _ = execute_notebook("churn.ipynb", tmp_path)
    assert (tmp_path / "run" / "metrics.json").is_file()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "roc_auc" in outputs


SPE = str(Path(__file__).parent / "scripts" / "churn_steps_per_execution.py")  # run as a file in a subprocess


def test_steps_per_execution_default_changes_speed_not_results(backend):
    """The measured per-backend default (32 steps per compiled call on JAX and TensorFlow)
    trains the same weights as one step per call."""
    p = check(run_python([SPE], backend=backend))
    want = {"jax": 32, "tensorflow": 32}.get(backend, 1)
    assert f"None {want}" in p.stdout and f"default {want}" in p.stdout, p.stdout


EXPLAIN = str(Path(__file__).parent / "scripts" / "churn_explain.py")  # run as a file in a subprocess


def test_saved_run_explains_customers(backend, quick_runs):
    """Predictor.explain (serve's /explain) on 64 test customers of the run saved on `backend`:
    one item per raw column (one-hot columns summed back), sorted by |attribution|, adding up
    to p(customer) - p(baseline customer) (integrated gradients' completeness); a model made
    blind to `contract` gives it exactly nothing."""
    out, _ = quick_runs[backend]
    r = json.loads(check(run_python([EXPLAIN, str(out)], backend=backend)).stdout.strip().splitlines()[-1])
    assert r["same_predictions"] and r["finite"] and r["sorted"] and r["targets"] == ["churn"]
    assert r["names"] == [r["columns"]] and len(r["columns"]) == 19  # the Telco data's raw columns
    assert r["max_gap"] > 0.1  # customers far from the baseline one: completeness says something
    assert r["completeness_rel"] < 0.01 and r["completeness_abs"] < 0.005, r
    assert r["blind_before"] > 0.02 and r["blind_after"] < 1e-7 and r["others_after"] > 0.02, r


def test_predict_explain_adds_three_reasons(quick_runs, kaggle_csv, tmp_path):
    """`predict --explain`: reason_1..reason_3 per customer, `column=value (+0.123)`, the three
    raw columns with the largest |attribution| of Predictor.explain, largest first."""
    import re

    b, (out, _) = next(iter(quick_runs.items()))
    new = pd.read_csv(kaggle_csv).head(20).drop(columns="Churn")
    new.to_csv(tmp_path / "new.csv", index=False)
    dest = tmp_path / "pred.csv"
    args = ["-m", "keras_cases.churn", "predict", "--run", str(out), "--csv", str(tmp_path / "new.csv")]
    check(run_python([*args, "--output", str(dest), "--explain"], backend=b))
    pred = pd.read_csv(dest)
    reasons = ["reason_1", "reason_2", "reason_3"]
    assert list(pred.columns) == ["customer_id", "churn_probability", "churn_predicted", *reasons]
    columns = set(json.loads((out / "preprocessing.json").read_text())["numeric"])
    columns |= set(json.loads((out / "preprocessing.json").read_text())["categorical"])
    for _, row in pred.iterrows():
        parsed = [re.fullmatch(r"([a-z_]+)=(.*) \(([+-]\d\.\d{3})\)", row[r]) for r in reasons]
        assert all(parsed), row.to_dict()
        assert len({m[1] for m in parsed}) == 3 and {m[1] for m in parsed} <= columns
        sizes = [abs(float(m[3])) for m in parsed]
        assert sizes == sorted(sizes, reverse=True) and sizes[0] > 0.005, row.to_dict()
    assert pred["reason_1"].str.split("=").str[0].nunique() > 1  # not one column for everyone


def test_permutation_importance_finds_the_column_a_scorer_uses():
    """churn.reasons.permutation_importance (scikit-learn's, through ProbabilityModel) on a
    scorer that reads only `used` (and a little of `weak`): `used` first, far above its spread;
    a column the scorer ignores and a constant column lose exactly nothing when shuffled."""
    from keras_cases.churn.reasons import permutation_importance

    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame(
        {
            "ignored": rng.normal(size=n),
            "used": rng.normal(size=n),
            "weak": rng.choice(["a", "b"], n),
            "constant": np.ones(n),
        }
    )
    y = (frame["used"] + 0.5 * rng.normal(size=n) > 0).astype(int)

    def score(f):
        return 1 / (1 + np.exp(-(2 * f["used"].to_numpy() + 0.3 * (f["weak"] == "a"))))

    imp = permutation_importance(score, frame, y, repeats=5, seed=0).set_index("column")
    assert list(imp.index)[0] == "used" and imp.loc["used", "mean"] > 0.2 > 10 * imp.loc["used", "std"]
    assert imp.loc["ignored", "mean"] == imp.loc["ignored", "std"] == 0.0
    assert imp.loc["constant", "mean"] == 0.0
    assert abs(imp.loc["weak", "mean"]) < imp.loc["used", "mean"] / 10  # y does not depend on it


def test_quick_run_explains_itself(quick_runs):
    """The report's why-section on every backend's quick run: permutation importance of every raw
    column on validation, tenure or contract on top (the Telco data's known drivers) and clearly
    above zero; four test customers' top reasons; attributions adding up to p - p(baseline)."""
    for b, (out, _) in quick_runs.items():
        imp = pd.read_csv(out / "permutation_importance.csv")
        pre = json.loads((out / "preprocessing.json").read_text())
        assert sorted(imp["column"]) == sorted([*pre["numeric"], *pre["categorical"]]), b
        assert list(imp["mean"]) == sorted(imp["mean"], reverse=True), b
        assert imp["column"][0] in ("tenure", "contract") and imp["mean"][0] > max(0.02, 3 * imp["std"][0]), (b, imp)
        assert imp["logistic regression"].notna().all(), b
        m = json.loads((out / "metrics.json").read_text())["explanations"]
        assert m["attribution_max_miss"] < 0.005 and len(m["permutation_importance_val_roc_auc"]) == len(imp), b
        report = (out / "report.md").read_text()
        assert "## Why: what the residual network leans on" in report, b
        for kind in ("caught churner", "missed churner", "false alarm", "stayer"):
            assert f": {kind} |" in report, (b, kind)


RESIDUAL = str(Path(__file__).parent / "scripts" / "churn_residual.py")  # run as a file in a subprocess


def test_residual_network_starts_at_the_logistic_regression(backend):
    """The residual network (the improved MLP added to a linear logit) set from a fitted
    logistic regression predicts its probabilities to 1e-5 (a plain initialisation is 0.05+
    off), and training from there keeps the regression's validation ROC-AUC within 0.002."""
    p = check(run_python([RESIDUAL], backend=backend))
    assert "start gap" in p.stdout and "trained residual network" in p.stdout, p.stdout
