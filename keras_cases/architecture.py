"""Architecture under a parameter budget: how deep, what shape, which optimizer and
activation, and which family (MLP, CNN, GRU) buys the most accuracy per parameter.

Data (`--data`): MNIST-1D (default: 4,000 train / 1,000 test signals of length 40; published
test accuracy: logistic 32%, MLP 68%, GRU 91%, CNN 94%), scikit-learn `digits`, `mnist`
(the full set when cached or downloadable, else the official 10,000-image test split), or
an `.npz` file of your own (see keras_cases.data.arrays). Experiments (`--experiments`, all
by default), each a table and a plot in report.md:

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
    python -m keras_cases.architecture --data mnist --experiments budgets,families
    python -m keras_cases.architecture --quick
"""

from __future__ import annotations

import argparse
import math
import re
import time
from dataclasses import dataclass

import keras
import numpy as np

from keras_cases import UserError, cli, plots, runtime
from keras_cases.callbacks import resumable, tensorboard
from keras_cases.data import batches
from keras_cases.data.arrays import ArrayData, load
from keras_cases.runs import Run, command, markdown_table

CASE = "architecture"
EXPERIMENTS = ("linear", "budgets", "shape", "optact", "families")
BUDGETS = {"digits": (2_000, 5_000, 10_000)}  # every other dataset: 20k, 50k, 100k
DEFAULT_BUDGETS = (20_000, 50_000, 100_000)
MAX_BUDGET = 100_000_000  # a budget above this is a typo, not a study on a laptop
DEPTHS = (1, 2, 3, 4, 5)
SHAPES = ("uniform", "decreasing", "increasing")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "elu", "gelu")
OPTIMIZERS = {  # Adam's 3e-3 (not Keras' 1e-3) measured better here; momentum SGD has SGD's step
    "sgd": ("SGD, lr 0.1", lambda: keras.optimizers.SGD(0.1)),
    "momentum": ("SGD, lr 0.01, momentum 0.9", lambda: keras.optimizers.SGD(0.01, momentum=0.9)),
    "rmsprop": ("RMSProp, lr 1e-3", lambda: keras.optimizers.RMSprop(1e-3)),
    "adam": ("Adam, lr 3e-3", lambda: keras.optimizers.Adam(3e-3)),
    "adamw": ("AdamW, lr 3e-3, weight decay 0.01", lambda: keras.optimizers.AdamW(3e-3, weight_decay=0.01)),
}
QUICK_TRAIN_ROWS = 1000
PUBLISHED = {"mnist1d": "published MNIST-1D test accuracy: logistic 32%, MLP 68%, GRU 91%, CNN 94%"}


# --- parameter counts and sizes from a budget ---------------------------------------
@dataclass(frozen=True)
class Spec:
    """One network: family, its sizes (MLP widths, CNN channels, GRU units), training."""

    family: str  # "linear", "mlp", "cnn" or "gru"
    sizes: tuple = ()
    activation: str = "relu"  # the MLP's hidden activation (CNN: relu, GRU: tanh)
    optimizer: str = "adam"

    @property
    def label(self) -> str:
        if self.family == "linear":
            name = "linear softmax"
        elif self.family == "mlp":
            name = f"MLP {'-'.join(map(str, self.sizes))} {self.activation}"
        else:
            name = f"{self.family.upper()} {self.sizes[0]}" + (" ch" if self.family == "cnn" else " units")
        return name + ("" if self.optimizer == "adam" else f" {self.optimizer}")


def largest_root(a: float, b: float, c: float, budget: int) -> float:
    """The largest real s with a s^2 + b s + c <= budget."""
    if a == 0:
        return (budget - c) / b
    return (-b + math.sqrt(b * b + 4 * a * (budget - c))) / (2 * a)


def shape_ratios(shape: str, depth: int) -> list[float]:
    halving = [0.5**i for i in range(depth)]
    return {"uniform": [1.0] * depth, "decreasing": halving, "increasing": halving[::-1]}[shape]


def mlp_params(d: int, widths, k: int) -> int:
    sizes = [d, *widths, k]
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:]))


def mlp_widths(budget: int, d: int, k: int, depth: int, shape: str = "uniform") -> tuple:
    """Hidden widths of the widest MLP of `depth` layers within `budget` (module docstring)."""
    r = shape_ratios(shape, depth)
    a = sum(r[i - 1] * r[i] for i in range(1, depth))
    b = d * r[0] + sum(r) + k * r[-1]
    w = largest_root(a, b, k, budget)
    widths = tuple(int(np.floor(ri * w + 1e-9)) for ri in r)
    if min(widths) < 1:
        raise UserError(f"budget {budget:,} is too small for a {shape} MLP of depth {depth} on {d} inputs")
    return widths


def cnn_layout(shape) -> tuple[int, int, int]:
    """(kernel size, conv blocks, positions left): 5-wide kernels on a signal, 3x3 on an
    image; up to 3 blocks of two 'same' convolutions and a 2x max-pool."""
    kernel = 5 if len(shape) == 1 else 3
    blocks, side = 0, min(shape)
    while blocks < 3 and side // 2 >= 2:
        side //= 2
        blocks += 1
    left = int(np.prod([n // 2**blocks for n in shape]))
    return kernel, blocks, left


def cnn_params(shape, k: int, channels: int) -> int:
    """(2B-1) K c^2 + (K + 2B + S k) c + k for B blocks, K = kernel taps, S positions left."""
    kernel, blocks, left = cnn_layout(shape)
    taps = kernel ** len(shape)
    c = channels
    return (2 * blocks - 1) * taps * c * c + (taps + 2 * blocks + left * k) * c + k


def cnn_channels(budget: int, shape, k: int) -> int:
    kernel, blocks, left = cnn_layout(shape)
    taps = kernel ** len(shape)
    c = int(np.floor(largest_root((2 * blocks - 1) * taps, taps + 2 * blocks + left * k, k, budget) + 1e-9))
    if c < 1:
        raise UserError(f"budget {budget:,} is too small for a CNN on inputs of shape {shape}")
    return c


def as_sequence(shape) -> tuple[int, int]:
    """A signal is (length, 1) steps; an image is read row by row, (height, width)."""
    return (shape[0], 1) if len(shape) == 1 else (shape[0], int(np.prod(shape[1:])))


def gru_params(shape, k: int, units: int) -> int:
    """3 u^2 + (3 F + 6 + k) u + k: Keras' GRU (reset_after, two bias rows) and a softmax."""
    f = as_sequence(shape)[1]
    return 3 * units * units + (3 * f + 6 + k) * units + k


def gru_units(budget: int, shape, k: int) -> int:
    f = as_sequence(shape)[1]
    u = int(np.floor(largest_root(3, 3 * f + 6 + k, k, budget) + 1e-9))
    if u < 1:
        raise UserError(f"budget {budget:,} is too small for a GRU on inputs of shape {shape}")
    return u


def count_params(spec: Spec, shape, k: int) -> int:
    """The parameter count of `build_model(spec, shape, k)`, without building it."""
    d = int(np.prod(shape))
    if spec.family in ("linear", "mlp"):
        return mlp_params(d, spec.sizes, k)
    if spec.family == "cnn":
        return cnn_params(shape, k, spec.sizes[0])
    return gru_params(shape, k, spec.sizes[0])


def for_budget(
    family: str, budget: int, shape, k: int, depth: int = 3, mlp_shape="uniform", activation="relu", optimizer="adam"
) -> Spec:
    """The largest network of a family within `budget` parameters."""
    if family == "mlp":
        sizes = mlp_widths(budget, int(np.prod(shape)), k, depth, mlp_shape)
    elif family == "cnn":
        sizes = (cnn_channels(budget, shape, k),)
    elif family == "gru":
        sizes = (gru_units(budget, shape, k),)
    else:
        raise ValueError(f"unknown family {family!r}")
    return Spec(family, sizes, activation, optimizer)


# --- models -------------------------------------------------------------------------
def build_model(spec: Spec, shape, k: int, dropout: float = 0.0) -> keras.Model:
    """The network for `spec` on examples of `shape` (a signal or an image), k classes."""
    shape = tuple(shape)
    inputs = keras.Input(shape, name="x")
    if spec.family in ("linear", "mlp"):
        x = keras.layers.Flatten()(inputs)
        for n in spec.sizes:
            x = keras.layers.Dense(n, activation=spec.activation)(x)
            if dropout:
                x = keras.layers.Dropout(dropout)(x)
    elif spec.family == "cnn":
        kernel, blocks, _ = cnn_layout(shape)
        conv, pool = (
            (keras.layers.Conv1D, keras.layers.MaxPooling1D)
            if len(shape) == 1
            else (keras.layers.Conv2D, keras.layers.MaxPooling2D)
        )
        x = keras.layers.Reshape(shape + (1,))(inputs)
        for _ in range(blocks):
            x = conv(spec.sizes[0], kernel, padding="same", activation="relu")(x)
            x = conv(spec.sizes[0], kernel, padding="same", activation="relu")(x)
            x = pool(2)(x)
        x = keras.layers.Flatten()(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    elif spec.family == "gru":
        x = keras.layers.Reshape(as_sequence(shape))(inputs)
        x = keras.layers.GRU(spec.sizes[0])(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    else:
        raise ValueError(f"unknown family {spec.family!r}")
    outputs = keras.layers.Dense(k, activation="softmax", name="class")(x)
    return keras.Model(inputs, outputs, name=spec.family)


def compile_model(model, optimizer="adam"):
    opt = OPTIMIZERS[optimizer][1]() if isinstance(optimizer, str) else optimizer
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# --- training -----------------------------------------------------------------------
def train(spec: Spec, data: ArrayData, seed: int, *, epochs, batch_size, patience, verbose) -> dict:
    """Fit one seed with early stopping on validation accuracy; best weights restored."""
    keras.utils.clear_session()
    runtime.set_seed(seed)
    model = compile_model(build_model(spec, data.shape, data.n_classes), spec.optimizer)
    runtime.init_weights(model, seed)
    stop = keras.callbacks.EarlyStopping("val_accuracy", mode="max", patience=patience, restore_best_weights=True)
    name = f"{re.sub(r'[^A-Za-z0-9._-]+', '_', spec.label)}_seed{seed}"  # unique in a run: the label has the sizes
    batch = batches(data.x_train, data.y_train, batch_size, seed)
    t0 = time.perf_counter()
    h = model.fit(
        batch,
        epochs=epochs,
        validation_data=(data.x_val, data.y_val),
        validation_batch_size=1024,
        callbacks=resumable(name, [stop, *tensorboard(name)], batch),
        verbose=verbose,
    ).history
    seconds = time.perf_counter() - t0
    best = int(np.argmax(h["val_accuracy"]))
    return {
        "val_accuracy": float(h["val_accuracy"][best]),
        "val_loss": float(h["val_loss"][best]),
        "epochs": len(h["loss"]),
        "seconds": seconds,
        "weights": model.get_weights(),
        "history": h,
    }


class Study:
    """Trains each (network, seed) once, however many experiments ask for it."""

    def __init__(self, data: ArrayData, seeds, **fit):
        self.data, self.seeds, self.fit, self.cells = data, list(seeds), fit, {}

    def cell(self, spec: Spec) -> dict:
        if spec not in self.cells:
            runs = []
            for s in self.seeds:
                r = train(spec, self.data, s, **self.fit)
                print(
                    f"  {spec.label:<36} seed {s}: val acc {r['val_accuracy']:.4f} "
                    f"({r['epochs']} epochs, {r['seconds']:.1f} s)",
                    flush=True,
                )
                runs.append(r)
            acc = np.array([r["val_accuracy"] for r in runs])
            self.cells[spec] = {
                "model": spec.label,
                "spec": spec,
                "runs": runs,
                "params": count_params(spec, self.data.shape, self.data.n_classes),
                "val_acc": float(acc.mean()),
                "val_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                "epochs": float(np.mean([r["epochs"] for r in runs])),
                "seconds": float(np.mean([r["seconds"] for r in runs])),
            }
        return self.cells[spec]

    def test(self, spec: Spec) -> tuple[float, float]:
        """Test accuracy, mean and std over seeds: called only for the chosen models."""
        c, d = self.cells[spec], self.data
        model = build_model(spec, d.shape, d.n_classes)
        accs = []
        for r in c["runs"]:
            model.set_weights(r["weights"])
            pred = np.argmax(model.predict(d.x_test, batch_size=1024, verbose=0), axis=1)
            accs.append(float(np.mean(pred == d.y_test)))
        return float(np.mean(accs)), float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0


def pm(mean, std) -> str:
    return f"{mean:.4f} ± {std:.4f}"


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


# --- plots and report ---------------------------------------------------------------
def plot_experiment(name, rows, run):
    path = run.path(f"{name}.png")
    if name == "linear":
        c = rows[0]
        plots.learning_curves(
            {f"linear seed {i}": r["history"] for i, r in enumerate(c["runs"])}, path, metrics=("loss", "accuracy")
        )
    elif name == "budgets":
        series = {}
        for p in sorted({r["budget"] for r in rows}):
            rs = [r for r in rows if r["budget"] == p]
            series[f"P = {p:,}"] = ([r["depth"] for r in rs], [r["val_acc"] for r in rs], [r["val_std"] for r in rs])
        plots.lines_with_errors(
            series, path, "hidden layers", "validation accuracy", "MLP depth under a parameter budget"
        )
    elif name == "shape":
        series = {}
        for s in SHAPES:
            rs = [r for r in rows if r["shape"] == s]
            series[s] = ([r["depth"] for r in rs], [r["val_acc"] for r in rs], [r["val_std"] for r in rs])
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
    return [path]


TABLES = {
    "linear": ["model", "params", "val", "epochs", "seconds"],
    "budgets": ["budget", "depth", "model", "params", "val", "epochs", "seconds"],
    "shape": ["depth", "shape", "model", "params", "val", "epochs", "seconds"],
    "optact": ["optimizer", "activation", "params", "val", "epochs", "seconds"],
    "families": ["budget", "family", "model", "params", "val", "acc/kparam", "acc/s", "epochs", "seconds"],
}
TITLES = {
    "linear": "Linear softmax baseline",
    "budgets": "MLP depth at fixed parameter budgets (uniform widths, relu, Adam)",
    "shape": "Layer shape: uniform, decreasing (halving) and increasing (doubling) widths",
    "optact": "Optimizer x activation (MLP of depth 3 at the middle budget)",
    "families": "CNN vs MLP vs GRU at equal budgets",
}


def table(name, rows) -> str:
    out = [
        {
            **r,
            "val": pm(r["val_acc"], r["val_std"]),
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


def report(m, results, finalists, plan, figures) -> str:
    parts = [
        f"""# Architecture under a parameter budget

- data: {m["dataset"]}; {m["n_train"]:,} train / {m["n_val"]:,} validation / {m["n_test"]:,} test
  examples of shape {tuple(m["input_shape"])}, {m["n_classes"]} classes (fixed split)
- backend: {m["backend"]} (Keras {m["keras_version"]}, {m["framework_version"]}), devices {", ".join(m["devices"])}
- seeds: {m["seeds"]} from {m["seed"]}; up to {m["epochs"]} epochs, batch {m["batch_size"]}, early
  stopping on validation accuracy (patience {m["patience"]}, best weights restored);
  every cell is mean ± std over seeds; training seconds include compilation
- experiments: {", ".join(m["experiments"])}{f" (--quick: fewer cells and epochs, the first {QUICK_TRAIN_ROWS:,} training rows)" if m["quick"] else ""}
- wall time: {m["seconds"]} s
{("- " + PUBLISHED[m["data"]]) if m["data"] in PUBLISHED else ""}

Widths from the budget P (d inputs, k classes, hidden widths n_i = r_i w):

    P(w) = a w^2 + b w + k,  a = sum_(i>=2) r_(i-1) r_i,  b = d r_1 + sum_i r_i + k r_L
    w = (-b + sqrt(b^2 + 4 a (P - k))) / (2 a)   (one layer: w = (P - k) / b),  n_i = floor(r_i w)

CNN: B blocks of two 'same' convolutions and a 2x max-pool, then a softmax on the flattened
features; P(c) = (2B-1) K c^2 + (K + 2B + S k) c + k (K kernel taps, S positions left).
GRU over the rows / time steps, then a softmax: P(u) = 3 u^2 + (3 F + 6 + k) u + k.
Optimizers: {"; ".join(f"{n}: {OPTIMIZERS[n][0]}" for n in plan["optimizers"])}.
"""
    ]
    for name, rows in results.items():
        parts.append(f"## {TITLES[name]}\n\n{table(name, rows)}\n")
        if name != "linear":
            w = best_of(rows)
            parts.append(f"Best on validation: **{w['model']}** ({pm(w['val_acc'], w['val_std'])}).\n")
        if name == "families":
            checks = cnn_vs_mlp(rows)
            parts.append(
                "CNN vs the best MLP on validation accuracy per 1,000 parameters: "
                + "; ".join(
                    f"P = {c['budget']:,}: CNN {c['cnn']:.4f} vs {c['mlp_model']} {c['mlp']:.4f} "
                    f"({'CNN ahead' if c['wins'] else 'MLP ahead'})"
                    for c in checks
                )
                + ".\n"
            )
        parts += [f"![{name}]({p.name})\n" for p in figures[name]]
    parts.append(f"""## Test set (used once, for the models chosen on validation)

{
        markdown_table(
            [
                {
                    **f,
                    "params": f"{f['params']:,}",
                    "val": pm(f["val_accuracy"], f["val_std"]),
                    "test": pm(f["test_accuracy"], f["test_std"]),
                }
                for f in finalists
            ],
            ["why", "model", "params", "val", "test"],
        )
    }

The best model on validation, **{m["model"]}**, is saved as `model.keras` (seed {m["seed"]}):
test accuracy {pm(m["test_accuracy"], m["test_accuracy_std"])}.
""")
    return "\n".join(parts)


# --- the command --------------------------------------------------------------------
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
        "python -m keras_cases.architecture", __doc__.split("\n\n")[0], epochs=100, batch_size=128, threads=1
    )  # small models: 1 thread (runtime.set_threads)
    p.set_defaults(seeds=None)
    for a in p._actions:
        if a.dest == "seeds":
            a.help = "repeat every cell with seeds seed..seed+N-1 (default 3; 1 with --quick)"
    g = p.add_argument_group("data and experiments")
    g.add_argument("--data", default="mnist1d", help="mnist1d, digits, mnist, or an .npz path")
    g.add_argument(
        "--experiments", default=",".join(EXPERIMENTS), help=f"comma-separated subset of {','.join(EXPERIMENTS)}"
    )
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


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    experiments = [e.strip() for e in args.experiments.split(",") if e.strip()]
    unknown = [e for e in experiments if e not in EXPERIMENTS]
    if unknown or not experiments:
        raise UserError(
            f"unknown experiment(s) {', '.join(unknown) or '(none given)'}: choose from {', '.join(EXPERIMENTS)}"
        )
    seeds = args.seeds or (1 if args.quick else 3)
    if args.quick:
        args.epochs, args.patience = min(args.epochs, 6), min(args.patience, 3)
    runtime.set_threads(args.threads)
    t0 = time.time()
    data = load(args.data)
    if args.quick:
        data = data.subset(QUICK_TRAIN_ROWS, len(data.y_val), len(data.y_test))
    plan = make_plan(args.data, args)
    check_plan(plan, experiments, data.shape, data.n_classes)
    run = Run(CASE, args.out, tensorboard=args.tensorboard, overwrite=args.overwrite)
    info = runtime.backend_report()
    print(
        f"{data.name}: {data.sizes[0]} train / {data.sizes[1]} val / {data.sizes[2]} test, "
        f"shape {data.shape}, {data.n_classes} classes; backend {info['backend']}; writing {run.dir}"
    )

    study = Study(
        data,
        range(args.seed, args.seed + seeds),
        epochs=args.epochs,
        batch_size=args.batch_size,
        patience=args.patience,
        verbose=args.verbose,
    )
    results, figures = {}, {}
    for name in experiments:
        print(f"[{name}] {TITLES[name]}", flush=True)
        results[name] = RUNNERS[name](study, plan)
        figures[name] = plot_experiment(name, results[name], run)

    # choose on validation, then touch the test set once per chosen model
    chosen = [("linear baseline", results["linear"][0])] if "linear" in results else []
    chosen += [(f"best of {n}", best_of(rows)) for n, rows in results.items() if n != "linear"]
    if "families" in results:
        fam = results["families"]
        chosen += [
            (f"best {f} at {p:,}", best_of([r for r in fam if r["family"] == f and r["budget"] == p]))
            for p in plan["budgets"]
            for f in ("MLP", "CNN", "GRU")
        ]
    overall = best_of([c for _, c in chosen])
    finalists = {}
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
    finalists = list(finalists.values())
    best = finalists[0]
    model = build_model(overall["spec"], data.shape, data.n_classes)
    model.set_weights(overall["runs"][0]["weights"])
    runtime.save_model(model, run.path("model.keras"))

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
        **info,
        "dataset": data.name,
        "data": args.data,
        "input_shape": list(data.shape),
        "n_classes": data.n_classes,
        "n_train": data.sizes[0],
        "n_val": data.sizes[1],
        "n_test": data.sizes[2],
        "seed": args.seed,
        "seeds": seeds,
        "epochs": args.epochs,
        "patience": args.patience,
        "batch_size": args.batch_size,
        "quick": args.quick,
        "experiments": experiments,
        "budgets": list(plan["budgets"]),
    }
    if "linear" in results:
        metrics["linear_test_accuracy"] = next(f["test_accuracy"] for f in finalists if f["family"] == "linear")
    run.write_json("config.json", {**vars(args), "seeds": seeds})
    run.write_history(
        {f"{c['model']} seed {s}": r["history"] for c in study.cells.values() for s, r in zip(study.seeds, c["runs"])}
    )
    metrics["seconds"] = round(time.time() - t0, 2)
    run.write_json("metrics.json", metrics)
    run.write_text("report.md", report(metrics, results, finalists, plan, figures))
    print(
        f"best on validation: {best['model']} ({best['params']:,} parameters): "
        f"val {pm(best['val_accuracy'], best['val_std'])}, test {pm(best['test_accuracy'], best['test_std'])}"
    )
    print(f"wrote {run.dir}/ (metrics.json, report.md, history.csv, model.keras, plots)")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
