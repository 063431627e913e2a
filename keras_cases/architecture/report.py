"""The plots and the report sections: one table and figure per experiment, the method
(widths from a budget), and the test set, touched once for the chosen models."""

from __future__ import annotations

import time

from keras_cases import plots
from keras_cases.architecture.experiments import TITLES, best_of
from keras_cases.architecture.models import OPTIMIZERS, build_model
from keras_cases.architecture.sizes import SHAPES
from keras_cases.runs import markdown_table

TABLES = {
    "linear": ["model", "params", "val", "epochs", "seconds"],
    "budgets": ["budget", "depth", "model", "params", "val", "epochs", "seconds"],
    "shape": ["depth", "shape", "model", "params", "val", "epochs", "seconds"],
    "optact": ["optimizer", "activation", "params", "val", "epochs", "seconds"],
    "families": ["budget", "family", "model", "params", "val", "acc/kparam", "acc/s", "epochs", "seconds"],
}
METHOD = """Widths from the budget P (d inputs, k classes, hidden widths n_i = r_i w):

    P(w) = a w^2 + b w + k,  a = sum_(i>=2) r_(i-1) r_i,  b = d r_1 + sum_i r_i + k r_L
    w = (-b + sqrt(b^2 + 4 a (P - k))) / (2 a)   (one layer: w = (P - k) / b),  n_i = floor(r_i w)

CNN: B blocks of two 'same' convolutions and a 2x max-pool, then a softmax on the flattened
features; P(c) = (2B-1) K c^2 + (K + 2B + S k) c + k (K kernel taps, S positions left).
GRU over the rows / time steps, then a softmax: P(u) = 3 u^2 + (3 F + 6 + k) u + k."""


def fmt_pm(mean, std) -> str:
    """'mean ± std' of statistics already computed (evaluation.mean_std) over seeds."""
    return f"{mean:.4f} ± {std:.4f}"


def by_depth(rows, key, keys) -> dict:
    """{label: (depths, mean val acc, std)} for each value of `key` in `keys`."""
    series = {}
    for label, value in keys:
        rs = [r for r in rows if r[key] == value]
        series[label] = ([r["depth"] for r in rs], [r["val_acc"] for r in rs], [r["val_std"] for r in rs])
    return series


def plot_experiment(name, rows, run) -> list:
    """The experiment's figure(s) in the run directory; returns their paths."""
    path = run.path(f"{name}.png")
    if name == "linear":
        c = rows[0]
        plots.learning_curves(
            {f"linear seed {i}": r["history"] for i, r in enumerate(c["runs"])}, path, metrics=("loss", "accuracy")
        )
    elif name == "budgets":
        series = by_depth(rows, "budget", [(f"P = {p:,}", p) for p in sorted({r["budget"] for r in rows})])
        plots.lines_with_errors(
            series, path, "hidden layers", "validation accuracy", "MLP depth under a parameter budget"
        )
    elif name == "shape":
        series = by_depth(rows, "shape", [(s, s) for s in SHAPES])
        plots.lines_with_errors(
            series, path, "hidden layers", "validation accuracy", f"layer shape at P = {rows[0]['budget']:,}"
        )
    elif name == "optact":
        opts = list(dict.fromkeys(r["optimizer"] for r in rows))
        acts = list(dict.fromkeys(r["activation"] for r in rows))
        cell = {(r["optimizer"], r["activation"]): r for r in rows}
        values = [[cell[o, a]["val_acc"] for a in acts] for o in opts]
        text = [[f"{cell[o, a]['val_acc']:.3f}\n±{cell[o, a]['val_std']:.3f}" for a in acts] for o in opts]
        plots.heatmap(values, opts, acts, path, "validation accuracy (mean ± std over seeds)", text)
    elif name == "families":
        return plot_families(rows, run)
    return [path]


def plot_families(rows, run) -> list:
    """Validation accuracy of each family's best network against the budget and the seconds."""
    paths = []
    for x_key, xlabel, fname in (
        ("budget", "parameter budget", "families.png"),
        ("seconds", "training seconds (mean per run)", "families_seconds.png"),
    ):
        series = {}
        for fam in ("MLP", "CNN", "GRU"):
            rs = [
                best_of([r for r in rows if r["family"] == fam and r["budget"] == p])
                for p in sorted({r["budget"] for r in rows})
            ]
            series[fam + (" (best depth)" if fam == "MLP" else "")] = (
                [r[x_key] for r in rs],
                [r["val_acc"] for r in rs],
                [r["val_std"] for r in rs],
            )
        paths.append(
            plots.lines_with_errors(
                series, run.path(fname), xlabel, "validation accuracy", "families at equal budgets", logx=True
            )
        )
    return paths


def table(name, rows) -> str:
    out = [
        {
            **r,
            "val": fmt_pm(r["val_acc"], r["val_std"]),
            "epochs": f"{r['epochs']:.1f}",
            "seconds": f"{r['seconds']:.1f}",
            "params": f"{r['params']:,}",
            "budget": f"{r['budget']:,}" if "budget" in r else "",
            "acc/kparam": f"{r.get('acc_per_kparam', 0):.4f}",
            "acc/s": f"{r.get('acc_per_second', 0):.4f}",
        }
        for r in rows
    ]
    return markdown_table(out, TABLES[name])


def cnn_vs_mlp(rows) -> list[dict]:
    """Per budget: does the CNN beat every MLP on validation accuracy per parameter?"""
    out = []
    for p in sorted({r["budget"] for r in rows}):
        at = [r for r in rows if r["budget"] == p]
        cnn = next(r for r in at if r["family"] == "CNN")
        best_mlp = max((r for r in at if r["family"] == "MLP"), key=lambda r: r["acc_per_kparam"])
        out.append(
            {
                "budget": p,
                "cnn": cnn["acc_per_kparam"],
                "mlp": best_mlp["acc_per_kparam"],
                "mlp_model": best_mlp["model"],
                "wins": cnn["acc_per_kparam"] > best_mlp["acc_per_kparam"],
            }
        )
    return out


def method_section(m, plan) -> tuple[str, str]:
    protocol = (
        f"Up to {m['epochs']} epochs, batch {m['batch_size']}, early stopping on validation accuracy (patience "
        f"{m['patience']}, best weights restored); every cell is mean ± std over seeds; training seconds include "
        "compilation."
    )
    optimizers = "; ".join(f"{n}: {OPTIMIZERS[n][0]}" for n in plan["optimizers"])
    return "Method", f"{protocol}\n\n{METHOD}\nOptimizers: {optimizers}."


def experiment_section(name, rows, figures) -> tuple[str, str]:
    parts = [table(name, rows)]
    if name != "linear":
        w = best_of(rows)
        parts.append(f"Best on validation: **{w['model']}** ({fmt_pm(w['val_acc'], w['val_std'])}).")
    if name == "families":
        parts.append(
            "CNN vs the best MLP on validation accuracy per 1,000 parameters: "
            + "; ".join(
                f"P = {c['budget']:,}: CNN {c['cnn']:.4f} vs {c['mlp_model']} {c['mlp']:.4f} "
                f"({'CNN ahead' if c['wins'] else 'MLP ahead'})"
                for c in cnn_vs_mlp(rows)
            )
            + "."
        )
    parts += [f"![{name}]({p.name})" for p in figures]
    return TITLES[name], "\n\n".join(parts)


def test_section(m, finalists) -> tuple[str, str]:
    rows = [
        {
            **f,
            "params": f"{f['params']:,}",
            "val": fmt_pm(f["val_accuracy"], f["val_std"]),
            "test": fmt_pm(f["test_accuracy"], f["test_std"]),
        }
        for f in finalists
    ]
    return "Test set (used once, for the models chosen on validation)", (
        markdown_table(rows, ["why", "model", "params", "val", "test"])
        + f"\n\nThe best model on validation, **{m['model']}**, is saved as `model.keras` (seed {m['seed']}): "
        f"test accuracy {fmt_pm(m['test_accuracy'], m['test_accuracy_std'])}."
    )


def report_sections(m, results, finalists, plan, figures) -> list:
    """The report after the shared header: method, one section per experiment, test set."""
    return [
        method_section(m, plan),
        *(experiment_section(name, rows, figures[name]) for name, rows in results.items()),
        test_section(m, finalists),
    ]


def cnn_figures(study, data, run, metrics) -> list:
    """The best CNN on validation (its first seed), if any was trained: its first layer's
    filters (cnn_filters.png) and the feature maps of test example 0 after each block
    (cnn_feature_maps.png, the max-pool outputs); [] or [its report section]. The seconds
    they took go in metrics["cnn_figures_seconds"]."""
    import keras

    cnns = [c for c in study.cells.values() if c["spec"].family == "cnn"]
    if not cnns:
        return []
    t = time.perf_counter()
    c = max(cnns, key=lambda c: c["val_acc"])
    model = build_model(c["spec"], data.shape, data.n_classes)
    model.set_weights(c["runs"][0]["weights"])
    n = plots.conv_filters(model, run.path("cnn_filters.png"), f"{c['model']}: first convolution's filters")
    pools = [la.name for la in model.layers if isinstance(la, (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D))]
    plots.feature_maps(
        model,
        data.x_test[0],
        pools,
        run.path("cnn_feature_maps.png"),
        f"test example 0 (class {data.y_test[0]}) after each block of {c['model']}",
    )
    metrics["cnn_figures_seconds"] = time.perf_counter() - t
    kind = "1-D kernels (a line per input channel)" if len(data.shape) == 1 else "2-D kernels"
    return [
        (
            "What the best CNN learnt",
            f"**{c['model']}** (the best CNN on validation, {c['params']:,} parameters, seed {study.seeds[0]}): "
            f"the {n} filters of its first convolution, {kind}, each scaled on its own.\n\n"
            "![first-layer filters](cnn_filters.png)\n\n"
            f"The feature maps of test example 0 after each of its {len(pools)} blocks (two convolutions and "
            "a 2x max-pool; 2-D maps: the 8 most active channels, each scaled on its own; 1-D maps: channels x "
            "positions).\n\n![feature maps](cnn_feature_maps.png)",
        )
    ]
