"""The protocol for the text cases (`python -m keras_cases.spam --cv K --repeats R`, the same
for sentiment): repeated stratified K-fold over distinct texts, every model on the same
folds, the network family chosen per fold on validation, paired against TF-IDF + LR.

Per fold (keras_cases.protocol.folds over distinct texts: a repeated text is in one part
only; sentiment stratifies by site and label): the word vocabulary and the character length
are fit on the fold's training texts; every family in --families is trained with early
stopping and a threshold on the fold's validation part; the averages of the top 2, 3, ...
all families (ranked by validation PR-AUC; each ensemble's threshold chosen on its averaged
validation scores) are candidates too. "The network chosen on validation" (`choose`) is the
candidate of the most networks among those whose validation PR-AUC is within one standard
error of the best one's (a paired bootstrap over the validation texts): ~900 validation
texts cannot tell candidates apart by less than that, the best of a dozen by a margin below
the noise is mostly luck, and an average of more networks varies less from text to text
and from fold to fold. The held-out fold only scores.
TF-IDF + LR gets the same training texts, validation threshold and held-out fold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from keras_cases import cli, protocol, runtime
from keras_cases.data.text import Vocabulary, tokenize
from keras_cases.evaluation import binary_metrics, choose_threshold, parse_objective
from keras_cases.text_models import SPLIT_SEED, chars
from keras_cases.text_models.models import build_char_cnn, build_model, build_tfidf, compile_model
from keras_cases.text_models.training import score, train

FAMILIES = ("lstm", "gru", "bilstm", "conv1d", "transformer", "fasttext", "char_cnn")
DEFAULT_FAMILIES = ",".join(FAMILIES)
CHOSEN = "network chosen on validation"
REFERENCE = "TF-IDF + LR"
METRICS = ("f1", "accuracy", "pr_auc", "precision", "recall")
BOOTSTRAPS = 300  # resamples of the validation texts behind `choose`'s standard errors


def ensemble_name(k: int) -> str:
    return f"ensemble of top {k}"


def text_folds(data, k: int, repeats: int, seed: int = SPLIT_SEED) -> tuple[list, int]:
    """protocol.folds over distinct texts (tokenised the same way), mapped back to rows, so a
    repeated text is never in training and in the held-out fold at once; stratified by label,
    and by site and label where the data has a source per row. Returns (folds, n repeated)."""
    first, groups = {}, []
    for i, t in enumerate(data.texts):
        groups.append(first.setdefault(" ".join(tokenize(t)), i))
    groups = np.asarray(groups)
    reps = np.unique(groups)
    strata = np.asarray(data.y)[reps]
    if data.source is not None:
        sites = {s: j for j, s in enumerate(sorted(set(data.source)))}
        strata = strata + 2 * np.asarray([sites[data.source[i]] for i in reps])
    position = np.searchsorted(reps, groups)  # row -> index of its distinct text
    out = []
    for f in protocol.folds(strata, k, repeats, seed):
        rows = [np.flatnonzero(np.isin(position, part)) for part in (f.train, f.val, f.test)]
        out.append(protocol.Fold(f.repeat, f.fold, *rows))
    return out, int(len(data.texts) - len(reps))


@dataclass
class FoldInputs:
    """One fold's texts, labels and both encodings, each fit on the fold's training texts."""

    texts: tuple  # (train, validation, held out) lists of strings
    ys: tuple  # float32 labels
    words: tuple  # word ids (Vocabulary fit on the training texts)
    chars: tuple  # UTF-8 byte ids (length fit on the training texts)
    vocab_size: int
    max_len: int


def fold_inputs(data, fold, args) -> FoldInputs:
    texts = tuple([data.texts[i] for i in part] for part in (fold.train, fold.val, fold.test))
    ys = tuple(data.y[part].astype("float32") for part in (fold.train, fold.val, fold.test))
    vocab = Vocabulary.fit(texts[0], max_tokens=args.max_tokens, max_len=args.max_len)
    n_chars = chars.fit_length(texts[0])
    return FoldInputs(
        texts,
        ys,
        tuple(vocab.encode(t) for t in texts),
        tuple(chars.encode(t, n_chars) for t in texts),
        len(vocab),
        vocab.max_len,
    )


def fit_family(kind: str, fi: FoldInputs, args, objective) -> dict:
    """One family on one fold: validation and held-out scores, its validation threshold."""
    from sklearn.metrics import average_precision_score

    runtime.set_seed(args.seed)  # before building: Dropout layers draw their seeds at creation
    if kind == "char_cnn":
        model, xs = build_char_cnn(stacked=args.stacked), fi.chars
    else:
        model, xs = build_model(kind, fi.vocab_size, fi.max_len, args.stacked, train_ids=fi.words[0]), fi.words
    compile_model(model)
    hist, threshold, secs = train(
        model,
        xs[0],
        fi.ys[0],
        xs[1],
        fi.ys[1],
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        verbose=args.verbose,
        objective=objective,
        patience=args.patience,
    )
    p_val, p_test = score(model, xs[1]), score(model, xs[2])
    val = float(average_precision_score(fi.ys[1], p_val))
    print(f"  {kind}: validation PR-AUC {val:.4f}, {len(hist['loss'])} epochs, {secs:.1f} s", flush=True)
    return {"p_val": p_val, "p_test": p_test, "threshold": threshold, "val_pr_auc": val}


def ensembles(fits: dict, y_val, objective) -> dict:
    """The averages of the top-k families by validation PR-AUC (every k from 2 to all of
    them), each with its threshold chosen on its averaged validation scores."""
    from sklearn.metrics import average_precision_score

    ranked = sorted(fits, key=lambda k: -fits[k]["val_pr_auc"])
    out = {}
    for k in range(2, len(ranked) + 1):
        members = ranked[:k]
        p_val = np.mean([fits[m]["p_val"] for m in members], axis=0)
        p_test = np.mean([fits[m]["p_test"] for m in members], axis=0)
        threshold, _ = choose_threshold(y_val, p_val, objective)
        out[ensemble_name(k)] = {
            "p_val": p_val,
            "p_test": p_test,
            "threshold": threshold,
            "val_pr_auc": float(average_precision_score(y_val, p_val)),
            "members": members,
        }
    return out


def choose(cands: dict, y_val, seed: int = SPLIT_SEED) -> tuple[str, dict]:
    """The candidate validation chooses, and why: among the candidates whose validation PR-AUC
    is within one standard error of the best one's (the std of their paired difference over
    `BOOTSTRAPS` resamples of the validation texts), the one of the most networks, then the
    higher validation PR-AUC. Returns (name, {"best": the top candidate by validation PR-AUC,
    "close": the candidates within one standard error of it})."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(y_val)
    top = max(cands, key=lambda k: cands[k]["val_pr_auc"])
    rng = np.random.default_rng(seed)
    draws = [d for d in (rng.integers(0, len(y), len(y)) for _ in range(BOOTSTRAPS)) if 0 < y[d].sum() < len(y)]
    boot = {k: np.array([average_precision_score(y[d], c["p_val"][d]) for d in draws]) for k, c in cands.items()}
    close = [k for k in cands if cands[top]["val_pr_auc"] - cands[k]["val_pr_auc"] <= np.std(boot[top] - boot[k])]
    best = max(close, key=lambda k: (len(cands[k].get("members", [k])), cands[k]["val_pr_auc"]))
    return best, {"best": top, "close": close}


def reference(fi: FoldInputs, objective) -> dict:
    """TF-IDF + LR on the fold's training texts, threshold on its validation part."""
    ref = build_tfidf().fit(fi.texts[0], fi.ys[0])
    p_val, p_test = ref.predict_proba(fi.texts[1])[:, 1], ref.predict_proba(fi.texts[2])[:, 1]
    threshold, _ = choose_threshold(fi.ys[1], p_val, objective)
    return binary_metrics(fi.ys[2], p_test, threshold)


def fold_scores(data, fold, args, objective) -> tuple[dict, dict]:
    """Every model on one fold ({model: held-out metrics}) and what validation chose there."""
    fi = fold_inputs(data, fold, args)
    fits = {kind: fit_family(kind, fi, args, objective) for kind in args.families}
    cands = {**fits, **ensembles(fits, fi.ys[1], objective)}
    best, why = choose(cands, fi.ys[1])  # on validation only
    scores = {k: binary_metrics(fi.ys[2], c["p_test"], c["threshold"]) for k, c in cands.items()}
    scores[CHOSEN] = scores[best]
    scores[REFERENCE] = reference(fi, objective)
    choice = {"fold": fold.name, "chosen": best, "members": cands[best].get("members", [best]), **why}
    choice["val_pr_auc"] = {k: round(c["val_pr_auc"], 5) for k, c in cands.items()}
    print(
        f"  chosen on validation: {best} (best validation PR-AUC: {why['best']}; within one standard error: "
        f"{len(why['close'])} of {len(cands)}) F1 {scores[CHOSEN]['f1']:.4f}; {REFERENCE} F1 "
        f"{scores[REFERENCE]['f1']:.4f}",
        flush=True,
    )
    return scores, choice


def cross_validate(case: str, title: str, data, args) -> dict:
    """Score every model on every held-out fold, then summarise with paired intervals."""
    objective = parse_objective(args.objective)
    splits, n_repeated = text_folds(data, args.cv, args.repeats)
    run, _, _ = cli.start(
        case,
        args,
        f"{data.dataset}: {len(data.texts)} texts ({n_repeated} repeats of a text kept in one part); "
        f"{args.cv}-fold x {args.repeats} ({len(splits)} held-out folds); families {', '.join(args.families)}",
    )
    per_fold, choices, t0 = [], [], time.time()
    for f in splits:
        print(f"fold {f.name}: {len(f.train)} train / {len(f.val)} validation / {len(f.test)} held out", flush=True)
        scores, choice = fold_scores(data, f, args, objective)
        per_fold.append(scores)
        choices.append(choice)
    n_train, n_test = len(splits[0].train) + len(splits[0].val), len(splits[0].test)
    models = [CHOSEN, *(k for k in per_fold[0] if k not in (CHOSEN, REFERENCE)), REFERENCE]
    summaries = {
        m: protocol.summary({k: [s[k][m] for s in per_fold] for k in models}, [REFERENCE], n_train, n_test, m)
        for m in METRICS
    }
    f1 = {k: [s[k]["f1"] for s in per_fold] for k in models}
    protocol.fold_plot(
        f1, run.path("folds_f1.png"), "F1", f"{case}: F1 per held-out fold ({args.cv}-fold x {args.repeats})"
    )
    metrics = {
        "protocol": protocol_block(args, splits, n_train, n_test, n_repeated, choices, time.time() - t0),
        "summaries": summaries,
        "objective": str(objective),
        "dataset": data.dataset,
        "labels": list(data.labels),
        "n_texts": len(data.texts),
        "seed": args.seed,
        "epochs": args.epochs,
        "quick": args.quick,
    }
    for line in verdict_lines(summaries):
        print(line)
    return run.finish(
        metrics,
        sections(summaries, metrics["protocol"]),
        title=f"{title}: {args.cv}-fold cross-validation x {args.repeats}",
        headline=headline(summaries),
        config=vars(args),
        notes=notes(metrics),
    )


def protocol_block(args, splits, n_train, n_test, n_repeated, choices, seconds) -> dict:
    chosen = [c["chosen"] for c in choices]
    return {
        "cv": args.cv,
        "repeats": args.repeats,
        "folds": len(splits),
        "n_train": n_train,
        "n_test": n_test,
        "n_repeated_texts": n_repeated,
        "split_seed": SPLIT_SEED,
        "families": list(args.families),
        "ensembles": [ensemble_name(k) for k in range(2, len(args.families) + 1)],
        "chosen_in_folds": {k: chosen.count(k) for k in dict.fromkeys(chosen)},
        "choices": choices,
        "fold_indices": [{"fold": f.name, "test": f.test.tolist()} for f in splits],  # the same for every model
        "cv_seconds": round(seconds, 1),
    }


def _paired(summary, model=CHOSEN):
    return next(r for r in summary["paired"] if r["model"] == model)


def headline(s) -> dict:
    """The chosen network's and the reference's means, and their paired differences."""
    out = {}
    for m in ("f1", "accuracy", "pr_auc"):
        out[m] = s[m]["models"][CHOSEN]["mean"]
        out[f"{m}_std"] = s[m]["models"][CHOSEN]["std"]
        out[f"tfidf_{m}"] = s[m]["models"][REFERENCE]["mean"]
        r = _paired(s[m])
        out[f"{m}_vs_tfidf"], out[f"{m}_vs_tfidf_low"], out[f"{m}_vs_tfidf_high"] = r["diff"], r["low"], r["high"]
    return out


def verdict_lines(s) -> list[str]:
    lines = []
    for m in ("f1", "accuracy"):
        c, r = s[m]["models"][CHOSEN], _paired(s[m])
        lines.append(
            f"{CHOSEN}: {m} {c['mean']:.4f} ± {c['std']:.4f}; {REFERENCE} {s[m]['models'][REFERENCE]['mean']:.4f}; "
            f"paired difference {r['diff']:+.4f} [{r['low']:+.4f}, {r['high']:+.4f}] ({r['verdict']})"
        )
    return lines


def notes(m) -> list[str]:
    """The protocol, for the report header."""
    p = m["protocol"]
    return [
        f"protocol: {p['folds']} held-out folds of ~{p['n_test']} texts, each model trained on the other "
        f"~{p['n_train']}\n  (of which a stratified 20% is the validation part that makes every decision: early "
        f"stopping,\n  the threshold for `{m['objective']}`, the family, the ensemble size); folds over distinct "
        f"texts\n  ({p['n_repeated_texts']} repeats kept with their first copy); vocabulary and character length "
        "fit per fold on its\n  training texts; the same folds for every model, so the differences are paired",
        f"{CHOSEN}: per fold, among the families ({', '.join(p['families'])})\n  and "
        f"{', '.join(p['ensembles']) or 'no ensemble'} (probabilities averaged, threshold chosen on "
        "validation),\n  the candidate of the most networks whose validation PR-AUC is within one standard "
        f"error of the best\n  (paired bootstrap, {BOOTSTRAPS} resamples of the validation texts); chosen: "
        + ", ".join(f"{k} in {n}" for k, n in p["chosen_in_folds"].items())
        + f" of {p['folds']} folds",
        f"up to {m['epochs']} epochs, seed {m['seed']}; {p['cv_seconds']:.0f} s for the folds",
    ]


def sections(s, p) -> list:
    rows = "\n".join(
        f"| {c['fold']} | {c['chosen']} | {', '.join(c['members'])} | {c['best']} | {len(c['close'])} |"
        for c in p["choices"]
    )
    return [
        ("F1 at the validation-chosen threshold", f"{protocol.markdown(s['f1'])}\n\n![per fold](folds_f1.png)"),
        ("Accuracy", protocol.markdown(s["accuracy"])),
        (
            "PR-AUC, precision and recall",
            "\n\n".join(protocol.markdown(s[m]) for m in ("pr_auc", "precision", "recall"))
            + """

The interval is the corrected resampled t-test of Nadeau & Bengio (2003): the fold-to-fold
variance of the paired difference is inflated by n_test/n_train because the training folds
overlap. "not distinguishable" means the interval covers 0. The ensembles' members are the
fold's top families by validation PR-AUC, so they can differ from fold to fold.""",
        ),
        (
            "What validation chose per fold",
            "| fold | chosen | its networks | best validation PR-AUC | candidates within one SE |\n"
            f"|---|---|---|---|---|\n{rows}",
        ),
    ]


def parse_families(text: str) -> list[str]:
    """--families as a list of known families, in the order given (UserError otherwise)."""
    return cli.parse_list(text, "--families", FAMILIES, "family")
