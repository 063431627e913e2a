"""Search MLP / CNN / GRU architectures under a hard parameter budget with KerasTuner.

The search space: the family (mlp, cnn, gru); for an MLP its depth (1-5), first-layer width
(8-1024, log scale), layer shape (uniform, decreasing, increasing) and activation; a CNN's
channels (4-128) and a GRU's units (4-256), log scale; for every family dropout (0-0.5) and
the Adam learning rate (1e-4 - 1e-2, log). Models and parameter formulas are those of the
architecture case study (keras_cases.architecture); proposals over the budget are rejected
before anything is built (tuning.search). The best configuration on validation accuracy is
retrained and tested once.

    python -m tuning.architecture --budget 50000 --algorithm bayesian --max-trials 30
    python -m tuning.architecture --budget 50000 --directory runs/tuning/a --resume
    python -m tuning.architecture --data mnist --families cnn,mlp --algorithm hyperband

    # distributed (KerasTuner's chief/worker mode; same command, shared --directory):
    python -m tuning.architecture --distributed chief --oracle 10.0.0.1:8000 --workers 2 ...
    python -m tuning.architecture --distributed worker --oracle 10.0.0.1:8000 ...   # on each worker
"""

from __future__ import annotations

import keras
import numpy as np

from keras_cases import UserError, cli
from keras_cases.architecture import SHAPES, Spec, build_model, compile_model, count_params, shape_ratios
from keras_cases.data.arrays import load
from tuning.search import BudgetHyperModel, check_args, fold_arrays, parser, run_search

FAMILIES = ("mlp", "cnn", "gru")
ACTIVATIONS = ("relu", "gelu", "tanh")
QUICK_ROWS = 600

QUICK = {"epochs": lambda v: min(v, 2)}  # --quick: at most 2 epochs a trial (and a row subset, below)


class ArchitectureHyperModel(BudgetHyperModel):
    """MLP, CNN and GRU families on one dataset, each under the same parameter budget."""

    def __init__(self, shape, n_classes, budget=None, families=FAMILIES, seed=0, patience=5):
        super().__init__(budget=budget, seed=seed, patience=patience, name="architecture")
        self.shape, self.k, self.families = tuple(shape), n_classes, tuple(families)

    def configure(self, hp) -> dict:
        config = {"family": hp.Choice("family", list(self.families))}
        if "mlp" in self.families:
            with hp.conditional_scope("family", ["mlp"]):
                config.update(
                    depth=hp.Int("depth", 1, 5),
                    width=hp.Int("width", 8, 1024, sampling="log"),
                    shape=hp.Choice("shape", list(SHAPES)),
                    activation=hp.Choice("activation", list(ACTIVATIONS)),
                )
        if "cnn" in self.families:
            with hp.conditional_scope("family", ["cnn"]):
                config["channels"] = hp.Int("channels", 4, 128, sampling="log")
        if "gru" in self.families:
            with hp.conditional_scope("family", ["gru"]):
                config["units"] = hp.Int("units", 4, 256, sampling="log")
        config["dropout"] = hp.Float("dropout", 0.0, 0.5, step=0.1)
        config["learning_rate"] = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=3e-3)
        return config

    def spec(self, config) -> Spec:
        family = config["family"]
        if family == "mlp":
            widths = tuple(max(1, int(r * config["width"])) for r in shape_ratios(config["shape"], config["depth"]))
            return Spec("mlp", widths, config["activation"])
        return Spec(family, (config["channels"] if family == "cnn" else config["units"],))

    def count(self, config) -> int:
        return count_params(self.spec(config), self.shape, self.k)

    def make(self, config):
        model = build_model(self.spec(config), self.shape, self.k, dropout=config["dropout"])
        return compile_model(model, keras.optimizers.Adam(config["learning_rate"]))

    def group(self, config) -> str:
        return config["family"].upper()

    def smallest(self, family) -> int:
        """Parameters of the family's smallest configuration (the search space's defaults)."""
        return self.count(
            {
                "family": family,
                "depth": 1,
                "width": 8,
                "shape": "uniform",
                "activation": "relu",
                "channels": 4,
                "units": 4,
            }
        )


def dev_folds(args, data):
    """With --cv: the folds of the training + validation rows as arrays (no preprocessing is
    fit on these data, so a fold is a slice)."""
    x_dev, y_dev = np.concatenate([data.x_train, data.x_val]), np.concatenate([data.y_train, data.y_val])

    def make(a, b, c):
        parts = (("train", a), ("val", b), ("test", c))
        return {f"{k}_{n}": v[i] for k, v in (("x", x_dev), ("y", y_dev)) for n, i in parts}

    return fold_arrays(args, y_dev, make)


def make_parser():
    p = parser(
        "python -m tuning.architecture", __doc__.split("\n\n")[0], budget=50_000, epochs=30, batch_size=128, quick=QUICK
    )
    g = p.add_argument_group("data")
    g.add_argument("--data", default="mnist1d", help="mnist1d, digits, mnist, or an .npz path")
    g.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset of mlp,cnn,gru")
    return p


def main(argv=None):
    args = make_parser().parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    if not families or any(f not in FAMILIES for f in families):
        raise UserError(f"--families {args.families!r}: choose from {', '.join(FAMILIES)}")
    check_args(args, "architecture")
    data = load(args.data)
    if args.quick:
        data = data.subset(QUICK_ROWS, QUICK_ROWS // 3, QUICK_ROWS // 3)
    hm = ArchitectureHyperModel(data.shape, data.n_classes, args.budget or None, families, args.seed, args.patience)
    fits = [f for f in families if not hm.over_budget(hm.smallest(f))]
    for f in sorted(set(families) - set(fits)):
        print(
            f"note: even the smallest {f.upper()} ({hm.smallest(f):,} parameters) is over the "
            f"budget; {f} is left out of the search"
        )
    if not fits:
        raise UserError(f"budget {args.budget:,} is below the smallest model of every family")
    hm.families = tuple(fits)
    hm.cv_folds = dev_folds(args, data)
    print(
        f"{data.name}: {data.sizes[0]} train / {data.sizes[1]} val / {data.sizes[2]} test; "
        f"families {', '.join(fits)}; budget {args.budget or 'none'}; {args.algorithm}, "
        f"{args.max_trials} trials" + (f"; each on {args.cv}-fold x {args.repeats} (--cv)" if args.cv else "")
    )
    arrays = dict(
        x_train=data.x_train,
        y_train=data.y_train,
        x_val=data.x_val,
        y_val=data.y_val,
        x_test=data.x_test,
        y_test=data.y_test,
    )

    def evaluate_test(model, d):
        pred = np.argmax(model.predict(d["x_test"], batch_size=1024, verbose=0), axis=1)
        return {"accuracy": float(np.mean(pred == d["y_test"]))}

    info = {
        "dataset": data.name,
        "n_train": data.sizes[0],
        "n_val": data.sizes[1],
        "n_test": data.sizes[2],
        "families": fits,
    }
    run_search(
        args,
        hm,
        arrays,
        name="architecture",
        info=info,
        evaluate_test=evaluate_test,
        title=f"Architecture search under {args.budget:,} parameters" if args.budget else "Architecture search",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
