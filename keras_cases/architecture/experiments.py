"""The experiments: each asks `Study` for the cells it needs and returns its rows; the plan
says which budgets, depths, optimizers and activations they sweep."""

from __future__ import annotations

import numpy as np

from keras_cases.architecture.models import OPTIMIZERS
from keras_cases.architecture.sizes import DEPTHS, SHAPES, Spec, cnn_channels, for_budget, gru_units, mlp_widths

EXPERIMENTS = ("linear", "budgets", "shape", "optact", "families")
TITLES = {
    "linear": "Linear softmax baseline",
    "budgets": "MLP depth at fixed parameter budgets (uniform widths, relu, Adam)",
    "shape": "Layer shape: uniform, decreasing (halving) and increasing (doubling) widths",
    "optact": "Optimizer x activation (MLP of depth 3 at the middle budget)",
    "families": "CNN vs MLP vs GRU at equal budgets",
}
BUDGETS = {"digits": (2_000, 5_000, 10_000)}  # every other dataset: 20k, 50k, 100k
DEFAULT_BUDGETS = (20_000, 50_000, 100_000)
ACTIVATIONS = ("sigmoid", "tanh", "relu", "elu", "gelu")


def best_of(rows):
    """The row with the best mean validation accuracy (fewer parameters break ties)."""
    return max(rows, key=lambda r: (r["val_acc"], -r["params"]))


# --- the experiments ----------------------------------------------------------------
def exp_linear(study, plan):
    return [{"experiment": "linear", **study.cell(Spec("linear"))}]


def exp_budgets(study, plan):
    d, k = int(np.prod(study.data.shape)), study.data.n_classes
    return [
        {"experiment": "budgets", "budget": p, "depth": L, **study.cell(Spec("mlp", mlp_widths(p, d, k, L)))}
        for p in plan["budgets"]
        for L in plan["depths"]
    ]


def exp_shape(study, plan):
    d, k = int(np.prod(study.data.shape)), study.data.n_classes
    p = plan["budget"]
    return [
        {
            "experiment": "shape",
            "budget": p,
            "depth": L,
            "shape": s,
            **study.cell(Spec("mlp", mlp_widths(p, d, k, L, s))),
        }
        for L in plan["shape_depths"]
        for s in SHAPES
    ]


def exp_optact(study, plan):
    d, k = int(np.prod(study.data.shape)), study.data.n_classes
    widths = mlp_widths(plan["budget"], d, k, 3)
    return [
        {"experiment": "optact", "optimizer": o, "activation": a, **study.cell(Spec("mlp", widths, a, o))}
        for o in plan["optimizers"]
        for a in plan["activations"]
    ]


def exp_families(study, plan):
    shape, k = study.data.shape, study.data.n_classes
    rows = []
    for p in plan["budgets"]:
        specs = [for_budget("mlp", p, shape, k, depth=L) for L in plan["depths"]]
        specs += [for_budget("cnn", p, shape, k), for_budget("gru", p, shape, k)]
        for spec in specs:
            c = study.cell(spec)
            rows.append(
                {
                    "experiment": "families",
                    "budget": p,
                    "family": spec.family.upper(),
                    **c,
                    "acc_per_kparam": 1000 * c["val_acc"] / c["params"],
                    "acc_per_second": c["val_acc"] / c["seconds"],
                }
            )
    return rows


RUNNERS = {
    "linear": exp_linear,
    "budgets": exp_budgets,
    "shape": exp_shape,
    "optact": exp_optact,
    "families": exp_families,
}


def make_plan(dataset: str, args) -> dict:
    budgets = tuple(args.budgets) if args.budgets else BUDGETS.get(dataset, DEFAULT_BUDGETS)
    middle = budgets[len(budgets) // 2]
    if args.quick:  # the smallest budget only: a smoke run of every experiment
        small = budgets[0]
        return {
            "budgets": (small,),
            "budget": small,
            "depths": (1, 3),
            "shape_depths": (3,),
            "optimizers": ("sgd", "adam"),
            "activations": ("tanh", "relu"),
        }
    return {
        "budgets": budgets,
        "budget": middle,
        "depths": DEPTHS,
        "shape_depths": (3, 5),
        "optimizers": tuple(OPTIMIZERS),
        "activations": ACTIVATIONS,
    }


def check_plan(plan: dict, experiments, shape, k: int) -> None:
    """Size every MLP, CNN and GRU the experiments will build, so that a budget too small
    for one of them is refused before anything is trained or written."""
    d = int(np.prod(shape))
    if {"budgets", "families"} & set(experiments):
        for p in plan["budgets"]:
            for depth in plan["depths"]:
                mlp_widths(p, d, k, depth)
    if "families" in experiments:
        for p in plan["budgets"]:
            cnn_channels(p, shape, k)
            gru_units(p, shape, k)
    if "shape" in experiments:
        for depth in plan["shape_depths"]:
            for s in SHAPES:
                mlp_widths(plan["budget"], d, k, depth, s)
    if "optact" in experiments:
        mlp_widths(plan["budget"], d, k, 3)
