"""The protocol: repeated stratified K-fold, every model on the same folds, paired against
the references (`python -m keras_cases.churn --cv K --repeats R`)."""

from __future__ import annotations

import numpy as np

from keras_cases import cli, encodings, protocol, runtime
from keras_cases.churn.data import CASE, SPLIT_SEED, log1p_numerics
from keras_cases.churn.models import fit_improved, hist_gradient_boosting, logistic_regression, run_seed
from keras_cases.churn.models import network as build
from keras_cases.data.tabular import TabularPreprocessor
from keras_cases.evaluation import binary_metrics, choose_threshold

CHOSEN = "network chosen on validation"
ENCODINGS = ("plain", "log1p", "quantile", "ple")  # keras_cases.encodings; log1p as the churn case defines it
NETWORKS = ("mlp", "residual")  # the improved MLP; the same MLP as a residual on the logistic regression
_ENCODED = {"plain": "", "log1p": ", log1p", "quantile": ", quantile", "ple": ", PLE"}


def network_name(network: str, encoding: str) -> str:
    """The report's name of one candidate: "improved MLP, log1p", "residual MLP on LR", ..."""
    return ("improved MLP" if network == "mlp" else "residual MLP on LR") + _ENCODED[encoding]


REFERENCES = ("logistic regression", "logistic regression, log1p", "gradient boosting")
HEADLINE = {  # metrics.json headline key: model
    "chosen_mlp_roc_auc": CHOSEN,
    "improved_mlp_roc_auc": "improved MLP",
    "logistic_regression_roc_auc": "logistic regression",
    "logistic_regression_log1p_roc_auc": "logistic regression, log1p",
    "gradient_boosting_roc_auc": "gradient boosting",
}


def mlp_candidate(x, ys, args, objective, seeds, network="mlp") -> dict:
    """The improved MLP (or, `network="residual"`, the residual network started at the
    logistic regression fit on the same training rows) on one encoding, averaged over
    `seeds` (a seed ensemble when there are several; one network's threshold is its
    ThresholdTuner's, an ensemble's is chosen on its averaged validation scores):
    validation ROC-AUC and test metrics."""
    from sklearn.metrics import roc_auc_score

    p_val, p_test = np.zeros(len(ys[1])), np.zeros(len(ys[2]))
    for seed in seeds:
        runtime.set_seed(seed)
        model, start = build(network, x[0], ys[0])
        _, threshold = fit_improved(model, x, ys, args, objective, seed, start)
        p_val += model.predict(x[1], verbose=0).ravel() / len(seeds)
        p_test += model.predict(x[2], verbose=0).ravel() / len(seeds)
    if len(seeds) > 1:
        threshold, _ = choose_threshold(ys[1], p_val, objective)
    return {"val_auc": roc_auc_score(ys[1], p_val), "test": binary_metrics(ys[2], p_test, threshold)}


def encode(data, fold, name):
    """(train, validation, test) features of one fold under one numeric encoding, preprocessing
    (one-hot, standardising) fit on the fold's training rows only."""
    parts = (fold.train, fold.val, fold.test)
    frame = (
        log1p_numerics(data.features, fold.train)
        if name == "log1p"
        else encodings.ENCODINGS[name](data.features, fold.train)
    )
    pre = TabularPreprocessor.infer_and_fit(frame.iloc[fold.train])
    return tuple(pre.transform(frame.iloc[i]) for i in parts)


def fold_scores(fold, data, args, objective) -> tuple[dict, dict]:
    """Every model on one fold, and what the protocol chose there. The network (each of
    --networks) and its numeric encoding (each of --encodings) and, with --ensemble N, one
    network or the average of N seeds are chosen on the fold's validation part; the held-out
    part only scores."""
    from sklearn.metrics import roc_auc_score

    ys = tuple(data.y[i].astype("float32") for i in (fold.train, fold.val, fold.test))
    xs = {name: encode(data, fold, name) for name in args.encodings}
    r = run_seed(args.seed, xs["plain"], ys, args, objective, "mlp")
    cands = {}
    for network in args.networks:
        for name in args.encodings:
            if network == "mlp" and name == "plain":  # run_seed trained it, beside the baseline MLP
                cands[network, name] = {"val_auc": roc_auc_score(ys[1], r["p_val"]), "test": r["metrics"]}
            else:
                cands[network, name] = mlp_candidate(xs[name], ys, args, objective, [args.seed], network)
    best = max(cands, key=lambda k: cands[k]["val_auc"])
    chosen, choice = cands[best]["test"], {"network": best[0], "encoding": best[1], "ensemble": False}
    scores = {network_name(*k): {m: v for m, v in c["test"].items() if m != "baseline"} for k, c in cands.items()}
    if args.ensemble > 1:
        seeds = [args.seed + i for i in range(args.ensemble)]
        ens = mlp_candidate(xs[best[1]], ys, args, objective, seeds, best[0])
        scores[f"ensemble of {args.ensemble} (network and encoding chosen)"] = ens["test"]
        if ens["val_auc"] > cands[best]["val_auc"]:
            chosen, choice["ensemble"] = ens["test"], True
    scores[CHOSEN] = {m: v for m, v in chosen.items() if m != "baseline"}
    scores["baseline MLP"] = r["metrics"]["baseline"]
    scores.update(references(xs, ys, objective, args.seed))
    return scores, choice


def references(xs, ys, objective, seed) -> dict:
    """Logistic regression (plain and, when encoded, log1p numerics) and gradient boosting."""
    out = {}
    for name, key in (("logistic regression", "plain"), ("logistic regression, log1p", "log1p")):
        if key in xs:
            x = xs[key]
            p, t = logistic_regression(x[0], ys[0], x[1], ys[1], x[2], objective)
            out[name] = binary_metrics(ys[2], p, t)
    x = xs["plain"]
    p_hgb, t_hgb = hist_gradient_boosting(x[0], ys[0], x[1], ys[1], x[2], objective, seed)
    out["gradient boosting"] = binary_metrics(ys[2], p_hgb, t_hgb)
    return out


def cross_validate(args, data, objective) -> int:
    """Score every model on every held-out fold, then summarise with paired intervals."""
    splits = protocol.folds(data.y, args.cv, args.repeats, SPLIT_SEED)
    run, _, _ = cli.start(
        CASE,
        args,
        f"{data.dataset}: {len(data.y)} rows; {args.cv}-fold x {args.repeats} ({len(splits)} held-out folds)",
    )
    results = []
    for f in splits:
        print(f"fold {f.name}: {len(f.train)} train / {len(f.val)} validation / {len(f.test)} held out", flush=True)
        results.append(fold_scores(f, data, args, objective))
    per_fold, choices = [r[0] for r in results], [r[1] for r in results]
    n_train, n_test = len(splits[0].train) + len(splits[0].val), len(splits[0].test)
    refs = [r for r in REFERENCES if r in per_fold[0]]
    summaries = {
        m: protocol.summary({k: [s[k][m] for s in per_fold] for k in per_fold[0]}, refs, n_train, n_test, m)
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
            "encodings": list(args.encodings),
            "networks": list(args.networks),
            "network_chosen_in_folds": {n: sum(c["network"] == n for c in choices) for n in args.networks},
            "encoding_chosen_in_folds": {e: sum(c["encoding"] == e for c in choices) for e in args.encodings},
            "log1p_chosen_in_folds": sum(c["encoding"] == "log1p" for c in choices),
            "ensemble": args.ensemble,
            "ensemble_chosen_in_folds": sum(c["ensemble"] for c in choices),
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
        headline={"roc_auc": means[CHOSEN], **{k: means[model] for k, model in HEADLINE.items() if model in means}},
        notes=notes(metrics),
    )
    for r in summaries["roc_auc"]["paired"]:
        if r["model"] == CHOSEN:
            print(
                f"chosen network vs {r['reference']}: ROC-AUC {r['diff']:+.4f} "
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
        'the network the protocol chooses ("network chosen on validation"): per fold, the candidate\n  with the '
        f"highest validation ROC-AUC among the networks ({', '.join(p['networks'])}; residual: the improved MLP\n  "
        "added to the logistic regression's logit, started at that fit) on each numeric encoding\n  "
        f"({', '.join(p['encodings'])}); chosen per fold: "
        + ", ".join(f"{n} {k}" for n, k in p["network_chosen_in_folds"].items())
        + "; "
        + ", ".join(f"{e} {n}" for e, n in p["encoding_chosen_in_folds"].items())
        + f" of {p['folds']}"
        + (
            f"; then one network or the average of {p['ensemble']} seeds, again on validation (the ensemble "
            f"chosen in {p['ensemble_chosen_in_folds']} of {p['folds']} folds)"
            if p["ensemble"] > 1
            else ""
        ),
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
