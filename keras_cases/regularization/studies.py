"""The five studies. Each `study_*(args, run, seeds, metrics, shared)` runs one study over
the seeds, adds its numbers to `metrics`, draws its figure into the run directory, prints
its table and returns its report section as (title, markdown)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from keras_cases import plots
from keras_cases.evaluation import mean_std, pm
from keras_cases.regularization.networks import MLPRuns, build_cnn, fit_classifier
from keras_cases.regularization.polynomials import biasvar_errors, fit_errors, plot_fit
from keras_cases.runs import markdown_table

L2_VALUES = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)
QUICK_L2_VALUES = (0.0, 1e-2)


@dataclass
class Shared:
    """What the studies share: every fit's history, the MLP runs (c) and (e) both use
    (None unless one of them runs) and the CIFAR-10 subset of (d)."""

    history: dict = field(default_factory=dict)
    mlps: MLPRuns | None = None
    cifar: object = None


def _table(rows) -> str:
    table = markdown_table(rows, list(rows[0]))
    print(table, flush=True)
    return table


def study_fit(args, run, seeds, metrics, shared):
    per = fit_errors(seeds)
    plot_fit(seeds[0], run.path("fit_curves.png"))
    rows = [
        {
            "degree": d,
            "train MSE": pm(r["train_mse"]),
            "test MSE": pm(r["test_mse"]),
            "max abs coefficient": pm(r["max_abs_coef"], "{:.3g}"),
        }
        for d, r in per.items()
    ]
    for d, r in per.items():
        for k, v in r.items():
            metrics[f"fit_degree{d}_{k}"], metrics[f"fit_degree{d}_{k}_std"] = mean_std(v)
    return (
        "a. Over- and underfitting",
        f"""20 training points on a fixed grid over [-1, 1],
y = 1.5 x^2 + 0.3 sin(15 x) + N(0, 0.2^2); test MSE on 1,000 fresh points. Coefficients in
the power basis of x.

{_table(rows)}

![fitted curves](fit_curves.png)""",
    )


def study_biasvar(args, run, seeds, metrics, shared):
    bv = biasvar_errors(seeds, n_sets=args.resamples)
    degs = list(bv)
    mean = lambda k: np.array([mean_std(bv[d][k])[0] for d in degs])  # noqa: E731
    curves = {"bias²": "bias2", "variance": "variance", "bias² + variance + noise": "sum"}
    curves.update({"measured test error": "test_error", "noise σ²": "noise"})
    plots.log_curves(
        degs,
        {label: mean(k) for label, k in curves.items()},
        run.path("bias_variance.png"),
        "polynomial degree",
        "squared error",
        f"{args.resamples} training sets of 30 points per degree",
    )
    best = degs[int(np.argmin(mean("test_error")))]
    rel = np.abs(mean("sum") - mean("test_error")) / mean("test_error")
    metrics.update(
        {
            "biasvar_best_degree": best,
            "biasvar_max_rel_gap": float(rel.max()),
            "biasvar": {str(d): {k: mean_std(v)[0] for k, v in bv[d].items()} for d in degs},
        }
    )
    shown = [d for d in degs if d in (1, 2, 3, 5, 8, 10, 12, 15, 20)]
    rows = [
        {
            "degree": d,
            "bias²": pm(bv[d]["bias2"]),
            "variance": pm(bv[d]["variance"]),
            "bias²+var+noise": pm(bv[d]["sum"]),
            "measured test error": pm(bv[d]["test_error"]),
        }
        for d in shown
    ]
    return (
        "b. Bias and variance",
        f"""y = sin(2 pi x) + 0.5 cos(4 pi x) + N(0, 0.3^2); for each degree {args.resamples}
training sets of 30 points (one uniform x in each of 30 equal bins of [0, 1]) are drawn and fit, and
the predictions at 200 fixed test inputs are decomposed. The measured test error (against
fresh noisy targets) and bias² + variance + noise agree within {100 * rel.max():.1f}% at every
degree. Lowest test error at degree **{best}**; below it bias dominates, above it variance.

{_table(rows)}

![bias-variance](bias_variance.png)""",
    )


def _summary(label, prefix, res, keys, metrics, formats=None) -> list[dict]:
    """One table row per setting of `res` ({setting: [results, one per seed]}) with each key
    as mean ± std; the means and stds go into metrics as f"{prefix.format(setting)}_{key}"."""
    rows = []
    for setting, rs in res.items():
        row = {label: f"{setting:g}"}
        for k in keys:
            v = [r[k] for r in rs]
            row[k] = pm(v, (formats or {}).get(k, "{:.4f}"))
            name = f"{prefix.format(setting)}_{k}"
            metrics[name], metrics[f"{name}_std"] = mean_std(v)
        rows.append(row)
    return rows


def study_dropout(args, run, seeds, metrics, shared):
    d, mlp = shared.mlps.d, shared.mlps
    res = {p: [mlp(s, p, False) for s in seeds] for p in (0.0, args.dropout)}
    rows = _summary("dropout", "dropout{:g}", res, ("train_accuracy", "test_accuracy", "gap"), metrics)
    plots.learning_curves(
        {f"dropout {p:g}": shared.history[f"mlp_dropout{p:g}_seed{seeds[0]}"] for p in res},
        run.path("dropout_curves.png"),
        metrics=("loss", "accuracy"),
    )
    return (
        "c. Dropout",
        f"""MLP 256-256 on {d.name} ({len(d.y_train)} training images),
{args.epochs} epochs, no early stopping; dropout {args.dropout:g} after each hidden layer.
Gap = train accuracy - test accuracy.

{_table(rows)}

![dropout learning curves, seed {seeds[0]}](dropout_curves.png)""",
    )


def study_l2(args, run, seeds, metrics, shared):
    dg = shared.cifar
    metrics.update(l2_dataset=dg.name, l2_n_train=len(dg.y_train), l2_n_test=len(dg.y_test))
    values = QUICK_L2_VALUES if args.quick else L2_VALUES  # --quick: two factors, not five
    res = {}
    for lam in values:
        res[lam] = []
        for s in seeds:
            name = f"cnn_l2_{lam:g}_seed{s}"
            print(f"--- {name}", flush=True)
            model, shared.history[name], r = fit_classifier(
                build_cnn(dg.shape, dg.n_classes, lam), dg, args, s, args.l2_epochs
            )
            res[lam].append(r)
    keys = ("train_accuracy", "test_accuracy", "gap", "weight_norm")
    rows = _summary("L2", "l2_{:g}", res, keys, metrics, {"weight_norm": "{:.2f}"})
    x = np.array([max(v, 1e-5) for v in values])
    plots.lines_with_errors(
        {
            k: (x, *np.array([mean_std([r[k] for r in res[v]]) for v in values]).T)
            for k in ("train_accuracy", "test_accuracy")
        },
        run.path("l2_sweep.png"),
        "L2 factor (0 drawn at 1e-5)",
        "accuracy",
        "weight decay on a small CNN (CIFAR-10 subset)",
        logx=True,
    )
    return (
        "d. L2 weight decay",
        f"""A small CNN (conv 16, 32, 64 with max-pooling, dense 128) with
an L2 penalty of the given factor on every kernel, {args.l2_epochs} epochs of Adam 1e-3, no augmentation,
on {dg.name}: {len(dg.y_train):,} training, {len(dg.y_val):,} validation and {len(dg.y_test):,} test images
(every class equally). Weight norm = L2 norm of all kernels after training; the test accuracy
is reported after the fixed number of epochs (no early stopping, so the penalty alone fights
overfitting).

{_table(rows)}

![L2 sweep](l2_sweep.png)""",
    )


def study_early(args, run, seeds, metrics, shared):
    mlp = shared.mlps
    fixed = [mlp(s, 0.0, False) for s in seeds]
    early = [mlp(s, 0.0, True) for s in seeds]
    saved = [args.epochs - r["epochs_run"] for r in early]
    for tag, rs in (("fixed", fixed), ("early", early)):
        for k in ("test_accuracy", "epochs_run"):
            metrics[f"{tag}_{k}"], metrics[f"{tag}_{k}_std"] = mean_std([r[k] for r in rs])
    metrics["early_epochs_saved"], metrics["early_epochs_saved_std"] = mean_std(saved)
    rows = [
        {
            "training": training,
            "epochs run": pm([r["epochs_run"] for r in rs], "{:.1f}"),
            "test accuracy": pm([r["test_accuracy"] for r in rs]),
        }
        for training, rs in (
            (f"fixed {args.epochs} epochs", fixed),
            (f"early stopping (patience {args.patience})", early),
        )
    ]
    first = seeds[0]
    plots.learning_curves(
        {
            "fixed": shared.history[f"mlp_dropout0_seed{first}"],
            "early stopping": shared.history[f"mlp_dropout0_early_seed{first}"],
        },
        run.path("early_stopping.png"),
        metrics=("loss", "accuracy"),
    )
    return (
        "e. Early stopping",
        f"""The MLP without dropout, trained for a fixed {args.epochs}
epochs or stopped when validation loss has not improved for {args.patience} epochs (best
weights restored). Epochs saved: {pm(saved, "{:.1f}")}.

{_table(rows)}

![early stopping, seed {first}](early_stopping.png)""",
    )


STUDIES = {"a": study_fit, "b": study_biasvar, "c": study_dropout, "d": study_l2, "e": study_early}
