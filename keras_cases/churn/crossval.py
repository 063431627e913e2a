"""The protocol: repeated stratified K-fold, every model on the same folds, paired against
the references (`python -m keras_cases.churn --cv K --repeats R`)."""

from __future__ import annotations

from keras_cases import cli, protocol, runtime
from keras_cases.churn.data import CASE, SPLIT_SEED, log1p_numerics
from keras_cases.churn.models import fit_improved, hist_gradient_boosting, improved, logistic_regression, run_seed
from keras_cases.data.tabular import TabularPreprocessor
from keras_cases.evaluation import binary_metrics

CHOSEN = "improved MLP, encoding chosen on validation"
REFERENCES = ("logistic regression", "logistic regression, log1p", "gradient boosting")
HEADLINE = {  # metrics.json headline key: model
    "chosen_mlp_roc_auc": CHOSEN,
    "improved_mlp_roc_auc": "improved MLP",
    "logistic_regression_roc_auc": "logistic regression",
    "logistic_regression_log1p_roc_auc": "logistic regression, log1p",
    "gradient_boosting_roc_auc": "gradient boosting",
}


def improved_mlp(xs, ys, args, objective, seed) -> tuple[dict, float]:
    """The improved MLP alone: (test metrics at the validation threshold, validation ROC-AUC)."""
    from sklearn.metrics import roc_auc_score

    runtime.set_seed(seed)
    model = improved(xs[0].shape[1])
    _, threshold = fit_improved(model, xs, ys, args, objective, seed)
    val_auc = roc_auc_score(ys[1], model.predict(xs[1], verbose=0).ravel())
    return binary_metrics(ys[2], model.predict(xs[2], verbose=0).ravel(), threshold), val_auc


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
        CHOSEN: {**chosen, "log1p": float(log_val > plain_val)},
        "baseline MLP": r["metrics"]["baseline"],
    }
    for name, x in (("logistic regression", xs), ("logistic regression, log1p", xl)):
        p, t = logistic_regression(x[0], ys[0], x[1], ys[1], x[2], objective)
        scores[name] = binary_metrics(ys[2], p, t)
    p_hgb, t_hgb = hist_gradient_boosting(xs[0], ys[0], xs[1], ys[1], xs[2], objective, args.seed)
    scores["gradient boosting"] = binary_metrics(ys[2], p_hgb, t_hgb)
    return scores


def cross_validate(args, data, objective) -> int:
    """Score every model on every held-out fold, then summarise with paired intervals."""
    splits = protocol.folds(data.y, args.cv, args.repeats, SPLIT_SEED)
    run, _, _ = cli.start(
        CASE,
        args,
        f"{data.dataset}: {len(data.y)} rows; {args.cv}-fold x {args.repeats} ({len(splits)} held-out folds)",
    )
    per_fold = []
    for f in splits:
        print(f"fold {f.name}: {len(f.train)} train / {len(f.val)} validation / {len(f.test)} held out", flush=True)
        per_fold.append(fold_scores(f, data, args, objective))
    n_train, n_test = len(splits[0].train) + len(splits[0].val), len(splits[0].test)
    summaries = {
        m: protocol.summary({k: [s[k][m] for s in per_fold] for k in per_fold[0]}, REFERENCES, n_train, n_test, m)
        for m in ("roc_auc", "recall", "precision")
    }
    auc = {k: [s[k]["roc_auc"] for s in per_fold] for k in per_fold[0]}
    title = f"churn: ROC-AUC per held-out fold ({args.cv}-fold x {args.repeats})"
    protocol.fold_plot(auc, run.path("folds_roc_auc.png"), "ROC-AUC", title)
    means = {k: v["mean"] for k, v in summaries["roc_auc"]["models"].items()}
    metrics = {
        "protocol": {
            "cv": args.cv,
            "repeats": args.repeats,
            "folds": len(splits),
            "n_train": n_train,
            "n_test": n_test,
            "split_seed": SPLIT_SEED,
            "log1p_chosen_in_folds": int(sum(f[CHOSEN]["log1p"] for f in per_fold)),
        },
        "summaries": summaries,
        "objective": str(objective),
        "dataset": data.dataset,
        "seed": args.seed,
        "epochs": args.epochs,
        "quick": args.quick,
    }
    run.finish(
        metrics,
        sections(summaries),
        title=f"Customer churn: {args.cv}-fold cross-validation x {args.repeats}",
        headline={"roc_auc": means[CHOSEN], **{k: means[model] for k, model in HEADLINE.items()}},
        notes=notes(metrics),
    )
    for r in summaries["roc_auc"]["paired"]:
        if r["model"] == CHOSEN:
            print(
                f"chosen MLP vs {r['reference']}: ROC-AUC {r['diff']:+.4f} "
                f"[{r['low']:+.4f}, {r['high']:+.4f}] ({r['verdict']})"
            )
    return 0


def notes(m) -> list[str]:
    """The protocol, for the report header."""
    p = m["protocol"]
    return [
        f"protocol: {p['folds']} held-out folds of ~{p['n_test']} rows, each model trained on the other "
        f"~{p['n_train']} rows\n  (of which a stratified 20% is the validation part that chooses early stopping "
        f"and the\n  decision threshold, objective {m['objective']}); preprocessing fit per fold on its training "
        "rows; the\n  same folds for every model, so the differences are paired",
        f'the network the protocol chooses ("encoding chosen on validation"): per fold, the improved MLP on\n  the '
        "numerics as they are or after log1p, whichever has the higher validation ROC-AUC (log1p chosen\n  in "
        f"{p['log1p_chosen_in_folds']} of {p['folds']} folds)",
        f"up to {m['epochs']} epochs",
    ]


def sections(s) -> list:
    return [
        ("ROC-AUC", f"{protocol.markdown(s['roc_auc'])}\n\n![per fold](folds_roc_auc.png)"),
        (
            "Recall and precision at the validation-chosen threshold",
            f"""{protocol.markdown(s["recall"])}

{protocol.markdown(s["precision"])}

The interval is the corrected resampled t-test of Nadeau & Bengio (2003): the fold-to-fold
variance of the paired difference is inflated by n_test/n_train because the training folds
overlap. "not distinguishable" means the interval covers 0.""",
        ),
    ]
