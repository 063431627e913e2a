"""The single-split report: its figures, its sections and the one-line summary."""

from __future__ import annotations

import numpy as np
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
            first["name"]: (y_te, first["p_test"], first["threshold"]),
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
        f"{first['name']} on validation, objective {objective}",
    )
    plots.confusion_matrices(
        {
            "baseline MLP @0.5": confusion(y_te, first["p_test_baseline"], 0.5),
            f"{first['name']} @{first['threshold']:.2f}": confusion(y_te, first["p_test"], first["threshold"]),
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
        f"`model.keras`: the {m['network']} of seed {m['seed']}, with `preprocessing.json` and `decision.json`",
    ]


def sections(m, eda_cols, why=None) -> list:
    rows = [
        {"model": f"{m['network']} (tuned threshold)", **m},
        {"model": "baseline MLP (threshold 0.5)", **m["baseline"]},
        {"model": "logistic regression (tuned threshold)", **m["logistic_regression"]},
    ]
    spread = ""
    if m["seeds"] > 1:
        spread = (
            f"\nMean over seeds; standard deviation of the {m['network']}: "
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
    if why:
        out.append((f"Why: what the {m['network']} leans on (permutation importance, integrated gradients)", why))
    if eda_cols:
        out.append((f"Churn rate by {', '.join(eda_cols)} (training rows)", "![churn rate by category](eda.png)"))
    return out


def summary_line(m) -> str:
    pm = lambda k: f"{m[k]:.3f}" + (f"±{m['std'][k]:.3f}" if m["seeds"] > 1 else "")  # noqa: E731
    return (
        f"{m['network']} @ threshold {m['threshold']:.3f}: ROC-AUC {pm('roc_auc')}, "
        f"recall {pm('recall')}, precision {pm('precision')} | baseline ROC-AUC "
        f"{m['baseline']['roc_auc']:.3f} | logistic regression {m['logistic_regression']['roc_auc']:.3f}"
    )


# --- why: permutation importance, the reference's coefficients, customers' attributions ---
def why(run, data, split, first, seed: int, repeats: int = 10) -> tuple[str, dict]:
    """Permutation importance of the network on validation (ROC-AUC, `repeats` shuffles)
    beside the logistic regression's coefficients, and integrated gradients for four test
    customers; writes explanations.png and permutation_importance.csv. Returns (the report
    section, what metrics.json keeps: importance per column and the attributions' largest miss)."""
    from keras_cases.churn import reasons
    from keras_cases.churn.models import fit_logistic_regression

    pre, model = split.pre, first["model"]
    cols = pre.columns
    val = data.features.iloc[split.rows[1]][cols]
    imp = reasons.permutation_importance(
        lambda f: np.asarray(model.predict_on_batch(pre.transform(f))), val, split.ys[1], repeats, seed
    )
    lr = fit_logistic_regression(split.xs[0], split.ys[0])  # the reference again (deterministic)
    imp["logistic regression"] = imp["column"].map(reasons.lr_coefficients(lr, pre))
    imp.to_csv(run.path("permutation_importance.csv"), index=False)
    picks = _customers(split.ys[2], first["p_test"], first["threshold"])
    modes = reasons.training_modes(data.features.iloc[split.rows[0]], pre)
    x = split.xs[2][[i for i, _ in picks]]
    attr, p0 = reasons.column_attributions(model, pre, x, reasons.baseline_row(pre, modes))
    miss = float(np.abs(attr.sum(1) - (first["p_test"][[i for i, _ in picks]] - p0)).max())
    _plot_why(run, imp, picks, attr, cols, data.features.iloc[split.rows[2]], first["p_test"])
    test_rows = data.features.iloc[split.rows[2]]
    section = _why_text(first["name"], imp, picks, attr, cols, test_rows, first["p_test"], p0, miss, repeats)
    kept = {r.column: [round(r.mean, 5), round(r.std, 5)] for r in imp.itertuples()}
    return section, {"permutation_importance_val_roc_auc": kept, "attribution_max_miss": miss}


def _customers(y, p, t) -> list[tuple[int, str]]:
    """Four test customers: the surest caught churner, the most missed churner, the surest
    false alarm and the surest stayer (where they exist)."""
    kinds = [
        ("caught churner", (y == 1) & (p >= t), -1),
        ("missed churner", (y == 1) & (p < t), 1),
        ("false alarm", (y == 0) & (p >= t), -1),
        ("stayer", (y == 0) & (p < t), 1),
    ]
    out = []
    for name, mask, sign in kinds:
        idx = np.flatnonzero(mask)
        if len(idx):
            out.append((int(idx[np.argmin(sign * p[idx])]), name))
    return out


def _plot_why(run, imp, picks, attr, cols, test_rows, p):
    panels = [
        {
            "title": "permutation importance (validation)",
            "names": imp["column"],
            "values": imp["mean"],
            "errors": imp["std"],
            "xlabel": "ROC-AUC drop when shuffled",
        }
    ]
    for (i, name), a in zip(picks, attr):
        top = np.argsort(-np.abs(a), kind="stable")[:8]
        panels.append(
            {
                "title": f"test customer {i}: {name}\np(churn) {p[i]:.2f}",
                "names": [f"{cols[j]}={test_rows[cols[j]].iloc[i]}" for j in top],
                "values": a[top],
                "xlabel": "attribution to p(churn)",
            }
        )
    plots.attribution_bars(panels, run.path("explanations.png"))


def _why_text(name, imp, picks, attr, cols, test_rows, p, p0, miss, repeats) -> str:
    from keras_cases.churn import reasons

    importance = markdown_table(
        [
            {
                "column": r["column"],
                "ROC-AUC drop (mean ± std)": f"{r['mean']:.4f} ± {r['std']:.4f}",
                "logistic regression coefficient": r["logistic regression"],
            }
            for r in imp.to_dict("records")
        ],
        ["column", "ROC-AUC drop (mean ± std)", "logistic regression coefficient"],
    )
    top = reasons.top_reasons(attr, test_rows.iloc[[i for i, _ in picks]], cols, 3)
    customers = markdown_table(
        [
            {"test customer": f"{i}: {name}", "p(churn)": f"{p[i]:.3f}", **top.iloc[k].to_dict()}
            for k, (i, name) in enumerate(picks)
        ],
        ["test customer", "p(churn)", *top.columns],
    )
    return (
        f"**Globally** (validation rows): how much the {name}'s ROC-AUC drops when one raw column's "
        f"values are shuffled across customers (scikit-learn's `permutation_importance`, {repeats} shuffles, "
        f"mean ± std; a categorical column's one-hot features move together), beside the logistic-regression "
        f"reference's coefficients on the same standardised / one-hot features (a number's per standard "
        f"deviation; for a category its lowest and highest category, as only their differences mean "
        f"something). permutation_importance.csv holds the table.\n\n{importance}\n\n"
        f"**Per customer** (test rows): integrated gradients ({reasons.IG_STEPS} steps) of p(churn) from a "
        f"typical customer (every number at its training median, every category at its training mode; "
        f"p(churn) {p0:.3f} there), one-hot features summed back to their column. A customer's attributions add "
        f"up to p(customer) - {p0:.3f}, here within {miss:.4f}. `predict --explain` writes these three reasons "
        f"per row, and serve's /explain returns them all.\n\n{customers}\n\n![explanations](explanations.png)"
    )
