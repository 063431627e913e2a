"""Architecture under a parameter budget: how deep, what shape, which optimizer and
activation, and which family (MLP, CNN, GRU) buys the most accuracy per parameter.

Data (`--data`): MNIST-1D (default: 4,000 train / 1,000 test signals of length 40; published
test accuracy: logistic 32%, MLP 68%, GRU 91%, CNN 94%), scikit-learn `digits`, `mnist`
(the full set when cached or downloadable, else the official 10,000-image test split), or
an `.npz` file of your own (see keras_cases.data.arrays). Experiments (`--studies`, all by
default; `--experiments` is the earlier spelling), each a table and a plot in report.md:

    linear    softmax regression: the floor every network has to beat
    budgets   MLPs at budgets P (20k, 50k, 100k; 2k, 5k, 10k on digits) over depths 1..5
    shape     uniform / decreasing / increasing hidden widths at the middle budget
    optact    optimizer (SGD, momentum, RMSProp, Adam, AdamW) x activation (sigmoid, tanh,
              relu, elu, gelu), MLP of depth 3 at the middle budget
    families  CNN vs MLP vs GRU at equal budgets: accuracy per parameter and per second

Width from a budget. An MLP with d inputs, k classes and hidden widths n_i = r_i * w (shape
ratios r: uniform 1, 1, 1, ...; decreasing 1, 1/2, 1/4, ...; increasing ..., 1/4, 1/2, 1) has

    P(w) = a w^2 + b w + k,   a = sum_{i=2..L} r_{i-1} r_i,   b = d r_1 + sum_i r_i + k r_L

parameters (weights and biases), so the widest network within budget P has

    w = (-b + sqrt(b^2 + 4 a (P - k))) / (2 a)       (w = (P - k) / b for one hidden layer)

and n_i = floor(r_i w); flooring only removes parameters, so the count never exceeds P.
For L uniform layers a = L - 1 and b = d + L + k. The CNN's channels and the GRU's units
come from the same quadratic (`cnn_params`, `gru_params`).

Every cell gets the same data, epochs and early stopping on validation accuracy (best
weights restored), over `--seeds` seeds (3 by default): weights drawn from NumPy and batches
shuffled by NumPy, so a seed is the same run on every backend. Every choice is made on
validation accuracy; the test set is used once, at the end, for the chosen models.

    python -m keras_cases.architecture                      # MNIST-1D, every experiment
    python -m keras_cases.architecture --data mnist --studies budgets,families
    python -m keras_cases.architecture --quick
"""

from __future__ import annotations

import argparse

from keras_cases import cli, runtime
from keras_cases.architecture.experiments import EXPERIMENTS, RUNNERS, TITLES, best_of, check_plan, make_plan
from keras_cases.architecture.models import Study, build_model
from keras_cases.architecture.report import cnn_figures, cnn_vs_mlp, fmt_pm, plot_experiment, report_sections
from keras_cases.data.arrays import load
from keras_cases.runs import command

CASE = "architecture"
MAX_BUDGET = 100_000_000  # a budget above this is a typo, not a study on a laptop
QUICK_TRAIN_ROWS = 1000
# --quick, where the user did not type the flag: one seed, at most 6 epochs with patience 3;
# the plan (make_plan) keeps the smallest budget and fewer cells, the data its first 1,000 rows
QUICK = {"seeds": 1, "epochs": lambda v: min(v, 6), "patience": lambda v: min(v, 3)}
PUBLISHED = {"mnist1d": "published MNIST-1D test accuracy: logistic 32%, MLP 68%, GRU 91%, CNN 94%"}


def int_list(text: str) -> list[int]:
    try:
        vals = [int(v.replace("_", "")) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers")
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: budgets must be positive integers")
    if max(vals) > MAX_BUDGET:
        raise argparse.ArgumentTypeError(f"{text!r}: budgets must be at most {MAX_BUDGET:,} parameters")
    return sorted(vals)


def make_parser():
    p = cli.parser(
        "python -m keras_cases.architecture",
        __doc__.split("\n\n")[0],
        epochs=100,
        batch_size=128,
        threads=1,  # small models: 1 thread (runtime.set_threads)
        quick=QUICK,
    )
    p.set_defaults(seeds=3)
    for a in p._actions:
        if a.dest == "seeds":
            a.help = "repeat every cell with seeds seed..seed+N-1 (--quick: 1)"
    g = p.add_argument_group("data and experiments")
    g.add_argument("--data", default="mnist1d", help="mnist1d, digits, mnist, or an .npz path")
    g.add_argument("--studies", default="all", help=f"comma-separated experiments: {', '.join(EXPERIMENTS)}, or all")
    g.add_argument("--experiments", dest="studies", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # earlier name
    g.add_argument(
        "--budgets",
        type=int_list,
        default=None,
        help="parameter budgets, e.g. 20000,50000,100000 (default: scaled to the dataset)",
    )
    g.add_argument(
        "--patience", type=cli.positive_int, default=10, help="early-stopping patience in epochs (validation accuracy)"
    )
    return p


def parse_studies(text: str, argv) -> list[str]:
    """The experiments to run, in the order given (`all`: every one, in EXPERIMENTS' order)."""
    flag = "--experiments" if cli.given(argv, "--experiments") else "--studies"
    chosen = cli.parse_list(text, flag, (*EXPERIMENTS, "all"), "experiment")
    return list(EXPERIMENTS) if "all" in chosen else chosen


def choose(study, results, plan) -> tuple[dict, list[dict]]:
    """Choose on validation, then touch the test set once per chosen model: (the best cell
    overall, the finalists with their test accuracy, the best overall first)."""
    chosen = [("linear baseline", results["linear"][0])] if "linear" in results else []
    chosen += [(f"best of {n}", best_of(rows)) for n, rows in results.items() if n != "linear"]
    if "families" in results:
        fam = results["families"]
        chosen += [
            (f"best {f} at {p:,}", best_of([r for r in fam if r["family"] == f and r["budget"] == p]))
            for p in plan["budgets"]
            for f in ("MLP", "CNN", "GRU")
        ]
    overall, finalists = best_of([c for _, c in chosen]), {}
    for why, c in [("best overall", overall), *chosen]:
        if c["spec"] in finalists:
            finalists[c["spec"]]["why"] += f", {why}"
            continue
        test, test_std = study.test(c["spec"])
        finalists[c["spec"]] = {
            "why": why,
            "model": c["model"],
            "family": c["spec"].family,
            "params": c["params"],
            "val_accuracy": c["val_acc"],
            "val_std": c["val_std"],
            "test_accuracy": test,
            "test_std": test_std,
        }
    return overall, list(finalists.values())


def run_metrics(args, data, plan, experiments, results, finalists) -> dict:
    best = finalists[0]
    metrics = {
        "test_accuracy": best["test_accuracy"],
        "test_accuracy_std": best["test_std"],
        "val_accuracy": best["val_accuracy"],
        "val_accuracy_std": best["val_std"],
        "model": best["model"],
        "params": best["params"],
        "finalists": finalists,
        "cells": {
            n: [{k: v for k, v in r.items() if k not in ("spec", "runs")} for r in rows] for n, rows in results.items()
        },
        **({"cnn_vs_mlp": cnn_vs_mlp(results["families"])} if "families" in results else {}),
        "dataset": data.name,
        "data": args.data,
        "input_shape": list(data.shape),
        "n_classes": data.n_classes,
        "n_train": data.sizes[0],
        "n_val": data.sizes[1],
        "n_test": data.sizes[2],
        "seed": args.seed,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "patience": args.patience,
        "batch_size": args.batch_size,
        "quick": args.quick,
        "experiments": experiments,
        "budgets": list(plan["budgets"]),
    }
    if "linear" in results:
        metrics["linear_test_accuracy"] = next(f["test_accuracy"] for f in finalists if f["family"] == "linear")
    return metrics


def notes(m) -> list[str]:
    """The header lines of this case: the examples, the experiments, the published numbers."""
    quick = f" (--quick: fewer cells and epochs, the first {QUICK_TRAIN_ROWS:,} training rows)" if m["quick"] else ""
    lines = [
        f"examples of shape {tuple(m['input_shape'])}, {m['n_classes']} classes (fixed split)",
        f"experiments: {', '.join(m['experiments'])}{quick}",
    ]
    return lines + ([PUBLISHED[m["data"]]] if m["data"] in PUBLISHED else [])


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    experiments = parse_studies(args.studies, argv)
    data = load(args.data)
    if args.quick:  # a smaller training set: what runs, not a flag
        data = data.subset(QUICK_TRAIN_ROWS, len(data.y_val), len(data.y_test))
    plan = make_plan(args.data, args)
    check_plan(plan, experiments, data.shape, data.n_classes)
    run, info, seeds = cli.start(CASE, args, f"{data.name}: experiments {', '.join(experiments)}")
    print(
        f"{data.sizes[0]} train / {data.sizes[1]} val / {data.sizes[2]} test, shape {data.shape}, "
        f"{data.n_classes} classes",
        flush=True,
    )
    fit = {"epochs": args.epochs, "batch_size": args.batch_size, "patience": args.patience, "verbose": args.verbose}
    study = Study(data, seeds, **fit)
    results, figures = {}, {}
    for name in experiments:
        print(f"[{name}] {TITLES[name]}", flush=True)
        results[name] = RUNNERS[name](study, plan)
        figures[name] = plot_experiment(name, results[name], run)

    overall, finalists = choose(study, results, plan)
    model = build_model(overall["spec"], data.shape, data.n_classes)
    model.set_weights(overall["runs"][0]["weights"])
    runtime.save_model(model, run.path("model.keras"))
    metrics = run_metrics(args, data, plan, experiments, results, finalists)
    history = {f"{c['model']} seed {s}": r["history"] for c in study.cells.values() for s, r in zip(seeds, c["runs"])}
    sections = report_sections(metrics, results, finalists, plan, figures)
    sections[-1:-1] = cnn_figures(study, data, run, metrics)  # before the test section; [] without a CNN
    best = finalists[0]
    print(
        f"best on validation: {best['model']} ({best['params']:,} parameters): "
        f"val {fmt_pm(best['val_accuracy'], best['val_std'])}, test {fmt_pm(best['test_accuracy'], best['test_std'])}"
    )
    run.finish(
        metrics,
        sections,
        title="Architecture under a parameter budget",
        headline={"accuracy": metrics["test_accuracy"]},
        history=history,
        notes=notes(metrics),
    )
    return 0
