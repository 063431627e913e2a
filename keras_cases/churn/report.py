"""The single-split report: its figures, its sections and the one-line summary."""

from __future__ import annotations

import pandas as pd

from keras_cases import plots
from keras_cases.churn.data import METRICS
from keras_cases.evaluation import confusion, threshold_sweep
from keras_cases.runs import markdown_table

EDA_COLUMNS = ("contract", "tenure_band", "internet_service", "payment_method")


def figures(run, data, split, first, lr, objective) -> list[str]:
    """Learning curves, ROC / PR, the threshold sweep, confusion matrices and the churn rate
    by category (training rows) of the first seed. Returns the EDA columns plotted."""
    (_, y_val, y_te), (p_lr, t_lr) = split.ys, lr
    plots.learning_curves(first["history"], run.path("learning_curves.png"))
    plots.roc_pr(
        {
            "improved MLP": (y_te, first["p_test"], first["threshold"]),
            "baseline MLP": (y_te, first["p_test_baseline"], 0.5),
            "logistic regression": (y_te, p_lr, t_lr),
        },
        run.path("roc_pr.png"),
        "(test)",
    )
    plots.threshold_sweep(
        threshold_sweep(y_val, first["p_val"]),
        first["threshold"],
        run.path("threshold_sweep.png"),
        f"improved MLP on validation, objective {objective}",
    )
    plots.confusion_matrices(
        {
            "baseline MLP @0.5": confusion(y_te, first["p_test_baseline"], 0.5),
            f"improved MLP @{first['threshold']:.2f}": confusion(y_te, first["p_test"], first["threshold"]),
            f"logistic reg. @{t_lr:.2f}": confusion(y_te, p_lr, t_lr),
        },
        run.path("confusion_matrices.png"),
        labels=("stay", "churn"),
    )
    tr = split.rows[0]
    eda = data.features.iloc[tr].copy()
    if "tenure" in eda.columns and pd.api.types.is_numeric_dtype(eda["tenure"]):
        eda["tenure_band"] = pd.cut(
            eda["tenure"], [-1, 12, 24, 48, 1e9], labels=["0-12 mo", "13-24 mo", "25-48 mo", "49+ mo"]
        )
    eda_cols = [c for c in EDA_COLUMNS if c in eda.columns] or list(split.pre.categorical)[:4]
    if eda_cols:
        plots.rate_by_category(eda, data.y[tr], eda_cols, run.path("eda.png"), "churn rate (train)")
    return eda_cols


def notes(m, pre, split_seed) -> list[str]:
    """The case's lines of the report header."""
    return [
        f"split: stratified, split seed {split_seed}; {m['n_features']} features after preprocessing fit on train\n"
        f"  only ({len(pre.numeric)} numeric standardised, {len(pre.categorical)} categorical one-hot; "
        f"dropped as identifiers: {', '.join(pre.dropped) or 'none'})",
        f"up to {m['epochs']} epochs, batch {m['batch_size']}; epochs trained (early stopping on validation "
        f"ROC-AUC): {m['epochs_trained']}",
        f"decision threshold objective, chosen on validation only: `{m['objective']}`",
        f"`model.keras`: the improved MLP of seed {m['seed']}, with `preprocessing.json` and `decision.json`",
    ]


def sections(m, eda_cols) -> list:
    rows = [
        {"model": "improved MLP (tuned threshold)", **m},
        {"model": "baseline MLP (threshold 0.5)", **m["baseline"]},
        {"model": "logistic regression (tuned threshold)", **m["logistic_regression"]},
    ]
    spread = ""
    if m["seeds"] > 1:
        spread = (
            "\nMean over seeds; standard deviation of the improved MLP: "
            + ", ".join(f"{k} {m['std'][k]:.4f}" for k in METRICS)
            + ".\n\n"
            + markdown_table(m["per_seed"], ["seed", *METRICS])
            + "\n"
        )
    out = [
        (
            "Test-set results",
            f"{markdown_table(rows, ['model', *METRICS])}\n{spread}\n![ROC and PR curves](roc_pr.png)",
        ),
        ("How the threshold was chosen (validation set)", "![threshold sweep](threshold_sweep.png)"),
        ("Confusion matrices (test)", "![confusion matrices](confusion_matrices.png)"),
        ("Learning curves", "![learning curves](learning_curves.png)"),
    ]
    if eda_cols:
        out.append((f"Churn rate by {', '.join(eda_cols)} (training rows)", "![churn rate by category](eda.png)"))
    return out


def summary_line(m) -> str:
    pm = lambda k: f"{m[k]:.3f}" + (f"±{m['std'][k]:.3f}" if m["seeds"] > 1 else "")  # noqa: E731
    return (
        f"improved MLP @ threshold {m['threshold']:.3f}: ROC-AUC {pm('roc_auc')}, "
        f"recall {pm('recall')}, precision {pm('precision')} | baseline ROC-AUC "
        f"{m['baseline']['roc_auc']:.3f} | logistic regression {m['logistic_regression']['roc_auc']:.3f}"
    )
