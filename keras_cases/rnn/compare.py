"""The comparison study: SimpleRNN vs LSTM vs GRU on the copy task at every length, and on
the 3-class trend / sine / random-walk series task (test accuracy, parameters, time)."""

from __future__ import annotations

import numpy as np

from keras_cases import plots
from keras_cases.evaluation import mean_std, pm
from keras_cases.rnn import figures
from keras_cases.rnn.models import KINDS, LABELS, build_series_model
from keras_cases.rnn.tasks import SERIES_CLASSES, load_series
from keras_cases.rnn.training import TARGET, CopyRuns, quick_eager
from keras_cases.runs import markdown_table


def study_compare(args, copies: CopyRuns, run, metrics: dict) -> tuple[str, str]:
    """The "Comparison" section: the copy task at every length, then the series task."""
    L_max, seeds = max(copies.lengths), copies.seeds
    copy_table = compare_copy(copies, run, metrics)
    series_table, d = compare_series(args, copies, run, metrics)
    at_max = {k: metrics[f"copy{L_max}_{k}_test_accuracy"] for k in KINDS}
    gated_best = max(("lstm", "gru"), key=lambda k: at_max[k])
    metrics["target_length"] = L_max
    metrics["target_met"] = bool(at_max[gated_best] >= TARGET > at_max["simple_rnn"])
    verdict = (
        f"**Target {'met' if metrics['target_met'] else 'NOT met'}** at T = {L_max}: "
        f"{LABELS[gated_best]} {at_max[gated_best]:.3f}, SimpleRNN {at_max['simple_rnn']:.3f} "
        f"(solved: ≥ {TARGET} per-token test accuracy, mean over seeds)."
    )
    return (
        "Comparison",
        f"""{verdict}

### Copy task

{copy_table}

All three models share one optimizer setting (not tuned per model). Times are wall seconds on
a shared machine; the first seed of each model includes compilation (s / epoch is the median
epoch after the first).

![copy accuracy by length](copy_accuracy.png)

Learning curves at T = {L_max}, seed {seeds[0]} (train solid, validation dashed):

![learning curves](copy_learning_curves.png)

### Trend / sine / random walk

{len(d.y_train)} training, {len(d.y_val)} validation, {len(d.y_test)} test series of {copies.sizes.series_steps} steps,
each standardized on its own (chance 0.333); the last hidden state feeds a 3-way softmax.

{series_table}

![example series](series_examples.png)""",
    )


def timing(rs: list) -> dict:
    """The table columns every comparison row shares: epochs run and wall seconds."""
    return {
        "epochs": pm([r["epochs_run"] for r in rs], "{:.1f}"),
        "s / epoch": pm([r["seconds_per_epoch"] for r in rs], "{:.2f}"),
        "train s": pm([r["seconds"] for r in rs], "{:.1f}"),
    }


def compare_copy(copies: CopyRuns, run, metrics: dict) -> str:
    """Every model at every length and seed: metrics, the accuracy-by-length plot, the
    learning curves at the longest length; returns the table."""
    lengths, seeds, sizes = copies.lengths, copies.seeds, copies.sizes
    rows = []
    for L in lengths:
        for kind in KINDS:
            rs = [copies.train(L, kind, s) for s in seeds]
            acc = [r["test_accuracy"] for r in rs]
            m = f"copy{L}_{kind}"
            metrics[f"{m}_test_accuracy"], metrics[f"{m}_test_accuracy_std"] = mean_std(acc)
            metrics[f"{m}_epochs"] = mean_std([r["epochs_run"] for r in rs])[0]
            metrics[f"{m}_seconds"] = mean_std([r["seconds"] for r in rs])[0]
            metrics[f"{m}_solved_seeds"] = int(sum(a >= TARGET for a in acc))
            metrics[f"{kind}_copy_params"] = rs[0]["params"]
            rows.append(
                {
                    "T": L,
                    "model": LABELS[kind],
                    "params": f"{rs[0]['params']:,}",
                    "test accuracy": pm(acc, "{:.3f}"),
                    f"seeds ≥ {TARGET}": f"{metrics[f'{m}_solved_seeds']}/{len(rs)}",
                    **timing(rs),
                }
            )
    accuracy = {
        LABELS[k]: (
            np.array(lengths),
            *np.array(
                [mean_std([copies.runs[(L, k, None, False, s)]["test_accuracy"] for s in seeds]) for L in lengths]
            ).T,
        )
        for k in KINDS
    }
    plots.lines_with_errors(
        accuracy,
        run.path("copy_accuracy.png"),
        "delay T (time steps)",
        "test per-token accuracy after the delimiter",
        f"copy task, {sizes.n_symbols} symbols of {sizes.alphabet}; mean ± std over {len(seeds)} seed(s)",
    )
    plots.learning_curves(
        {LABELS[k]: copies.history[f"copy{max(lengths)}_{k}_seed{seeds[0]}"] for k in KINDS},
        run.path("copy_learning_curves.png"),
        metrics=("loss", "accuracy"),
    )
    table = markdown_table(rows, list(rows[0]))
    print(table, flush=True)
    return table


def compare_series(args, copies: CopyRuns, run, metrics: dict):
    """Every model on the series task, every seed: returns the table and the data."""
    sizes, seeds, trainer = copies.sizes, copies.seeds, copies.trainer
    d = load_series(sizes, args.data_seed)
    metrics.update(
        series_n_train=len(d.y_train),
        series_n_val=len(d.y_val),
        series_n_test=len(d.y_test),
        series_steps=sizes.series_steps,
    )
    figures.series_examples(d.x_train, d.y_train, SERIES_CLASSES, run.path("series_examples.png"))
    rows = []
    for kind in KINDS:
        rs = []
        for s in seeds:
            name = f"series_{kind}_seed{s}"
            print(f"--- {name}", flush=True)
            model = trainer.model(
                ("series", kind),
                lambda: build_series_model(sizes.series_steps, kind, sizes.units, unroll=quick_eager(args)),
            )
            r, copies.history[name] = trainer.fit(model, d, s, sizes.series_steps, name)
            print(f"    test accuracy {r['test_accuracy']:.4f} after {r['epochs_run']} epochs", flush=True)
            rs.append(r)
        acc = [r["test_accuracy"] for r in rs]
        metrics[f"series_{kind}_test_accuracy"], metrics[f"series_{kind}_test_accuracy_std"] = mean_std(acc)
        metrics[f"{kind}_series_params"] = model.count_params()
        rows.append(
            {
                "model": LABELS[kind],
                "params": f"{model.count_params():,}",
                "test accuracy": pm(acc, "{:.3f}"),
                **timing(rs),
            }
        )
    table = markdown_table(rows, list(rows[0]))
    print(table, flush=True)
    return table, d
