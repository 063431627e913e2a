"""The experiment spam and sentiment share: one fixed split, the vocabulary fit on training
texts, the TF-IDF reference and every chosen network over seeds, each network's decision
threshold and the best network chosen on validation, the test set touched once per model,
and the run ended by `run.finish`."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from keras_cases import UserError, cli, protocol, runtime
from keras_cases.data.text import TextData, Vocabulary, split_unique
from keras_cases.evaluation import choose_threshold, parse_objective, summarize
from keras_cases.text_models import NEURAL, REPORTED, SPLIT_SEED, TFIDF
from keras_cases.text_models.crossval import DEFAULT_FAMILIES, FAMILIES, parse_families
from keras_cases.text_models.models import build_model, build_tfidf, compile_model
from keras_cases.text_models.report import explain_examples, notes, sections, summary_line, write_artifacts
from keras_cases.text_models.training import evaluate, score, train

QUICK = {"epochs": lambda v: min(v, 2)}  # the --quick preset of both cases (cli.parser(quick=QUICK))
HEADLINE = ("accuracy", "precision", "recall", "f1", "pr_auc", "roc_auc")  # test metrics, best network


def add_text_flags(p, default_objective, default_model="all"):
    g = p.add_argument_group("models and decisions")
    g.add_argument(
        "--model",
        default=default_model,
        choices=[*NEURAL, "all"],
        help="which network(s) to train; the TF-IDF + logistic regression reference always runs",
    )
    g.add_argument(
        "--stacked", action="store_true", help="two recurrent layers / conv layers / encoder blocks instead of one"
    )
    g.add_argument(
        "--objective",
        default=default_objective,
        help="decision-threshold objective chosen on validation: precision>=P, "
        "recall>=R, f1, fbeta:B or cost:fp=A,fn=B",
    )
    g.add_argument(
        "--patience", type=cli.positive_int, default=3, help="early stopping: epochs without a better validation PR-AUC"
    )
    g.add_argument(
        "--max-tokens",
        type=cli.positive_int,
        default=20000,
        help="vocabulary size (most frequent training tokens, seen at least twice)",
    )
    g.add_argument(
        "--max-len",
        type=cli.positive_int,
        default=None,
        help="tokens kept per text (default: 95th percentile of training lengths, rounded up to a multiple of 8)",
    )
    c = p.add_argument_group("protocol (to make a claim)")
    protocol.add_flags(c, repeats=1)
    c.add_argument(
        "--families",
        default=DEFAULT_FAMILIES,
        type=parse_families,
        help="with --cv: the network families to choose from per fold on validation (and the averages "
        f"of the top 2, 3, ... of them), comma-separated from {', '.join(FAMILIES)} (fasttext: a bag of "
        "word unigrams and training bigrams; char_cnn: UTF-8 characters, parallel n-gram convolutions); "
        "--model is the one split's choice",
    )
    return p


@dataclass
class TextSplit:
    """The fixed train / validation / test split: raw texts, token ids, float labels."""

    texts: tuple  # (train, validation, test) lists of strings
    xs: list  # their token ids
    ys: list  # their labels as float32
    vocab: Vocabulary
    n_repeated: int  # texts that occur more than once, each kept in the split of its first copy


def split_texts(case: str, data: TextData, args) -> TextSplit:
    """Split (stratified, SPLIT_SEED; repeated texts stay together) and fit the vocabulary
    on the training texts only."""
    texts, y = data.texts, data.y
    if len(texts) < 30 or min(np.bincount(y, minlength=2)) < 5:
        raise UserError(
            f"{data.dataset}: too few texts ({len(texts)}) or too few of one class "
            "to split into train, validation and test"
        )
    tr, va, te, n_dupes = split_unique(texts, y, SPLIT_SEED)
    t_tr, t_va, t_te = ([texts[i] for i in idx] for idx in (tr, va, te))
    vocab = Vocabulary.fit(
        t_tr,
        max_tokens=args.max_tokens,
        max_len=args.max_len,
        labels=list(data.labels),
        dataset=data.dataset,
        case=case,
        example=next(t for t, v in zip(t_tr, y[tr]) if v == 1),
    )
    xs = [vocab.encode(t) for t in (t_tr, t_va, t_te)]
    return TextSplit((t_tr, t_va, t_te), xs, [y[i].astype("float32") for i in (tr, va, te)], vocab, n_dupes)


def fit_reference(split: TextSplit, objective) -> dict:
    """The scikit-learn reference: deterministic, fit once (the same row for every seed)."""
    t1 = time.time()
    (t_tr, t_va, t_te), ys = split.texts, split.ys
    ref = build_tfidf().fit(t_tr, ys[0])
    p_val, p_test = ref.predict_proba(t_va)[:, 1], ref.predict_proba(t_te)[:, 1]
    threshold, _ = choose_threshold(ys[1], p_val, objective)
    metrics = {
        **evaluate(ys[1], p_val, ys[2], p_test, threshold),
        "params": int(ref[-1].coef_.size + 1),
        "train_seconds": time.time() - t1,
        "epochs_trained": 0,
    }
    return {"metrics": metrics, "p_test": p_test, "threshold": threshold}


def train_network(kind: str, seed: int, split: TextSplit, args, objective) -> tuple[dict, dict]:
    """One network, one seed: (its test metrics row, what the report keeps of it)."""
    xs, ys = split.xs, split.ys
    runtime.set_seed(seed)  # before building: Dropout layers draw their seeds at creation
    model = compile_model(build_model(kind, len(split.vocab), split.vocab.max_len, args.stacked, train_ids=xs[0]))
    print(f"[seed {seed}] {kind} ({model.count_params():,} parameters)")
    hist, t, secs = train(
        model,
        xs[0],
        ys[0],
        xs[1],
        ys[1],
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=seed,
        verbose=args.verbose,
        objective=objective,
        patience=args.patience,
    )
    p_val, p_test = score(model, xs[1]), score(model, xs[2])
    row = {
        **evaluate(ys[1], p_val, ys[2], p_test, t),
        "params": model.count_params(),
        "train_seconds": secs,
        "epochs_trained": len(hist["loss"]),
    }
    print(
        f"[seed {seed}] {kind}: test F1 {row['f1']:.4f}, accuracy {row['accuracy']:.4f}, "
        f"PR-AUC {row['pr_auc']:.4f} (threshold {t:.3f}; {secs:.1f} s)"
    )
    return row, {"model": model, "history": hist, "p_test": p_test, "threshold": t}


def train_seeds(kinds, seeds, split: TextSplit, args, objective, reference: dict) -> tuple[list, dict]:
    """Every network for every seed: (per-seed metric rows with the reference's, the first
    seed's models, histories and test scores)."""
    per_seed, first = [], {}
    for s in seeds:
        row = {}
        for kind in kinds:
            row[kind], kept = train_network(kind, s, split, args, objective)
            if s == seeds[0]:
                first[kind] = kept
        row[TFIDF] = reference["metrics"]
        per_seed.append(row)
    return per_seed, first


def summarize_seeds(per_seed, kinds, seeds) -> dict:
    """Mean and std over seeds per model; the best network chosen on validation PR-AUC
    only, its test metrics flat at the top."""
    mean, std = summarize(per_seed)
    for k in mean:
        mean[k]["std"] = {m: std[k][m] for m in REPORTED}
    best = max(kinds, key=lambda k: mean[k]["val_pr_auc"])  # chosen on validation only
    return {
        **{m: mean[best][m] for m in REPORTED},
        "best_model": best,
        "std": mean[best]["std"],
        "models": mean,
        "per_seed": [
            {"seed": s, **{k: {m: r[k][m] for m in (*REPORTED, "val_pr_auc")} for k in kinds}}
            for s, r in zip(seeds, per_seed)
        ],
    }


def describe(data: TextData, split: TextSplit, args) -> dict:
    """What metrics.json says about the data, the text pipeline and the run's settings."""
    vocab = split.vocab
    return {
        "dataset": data.dataset,
        "labels": list(data.labels),
        "n_train": len(split.texts[0]),
        "n_val": len(split.texts[1]),
        "n_test": len(split.texts[2]),
        "n_repeated_texts": split.n_repeated,
        "vocab_size": len(vocab),
        "max_len": vocab.max_len,
        "oov_rate_test": round(1 - vocab.coverage(split.texts[2]), 4),
        "seed": args.seed,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "stacked": args.stacked,
        "quick": args.quick,
    }


def run_experiment(case: str, title: str, data: TextData, args, blurb: str = "") -> dict:
    """Split, fit the vocabulary on train, train the chosen models for each seed, touch the
    test set once per model, and write the run directory. Returns metrics.json's dict.
    With `--cv K`: the cross-validated protocol instead (text_models.crossval)."""
    if args.cv:
        from keras_cases.text_models.crossval import cross_validate

        return cross_validate(case, title, data, args)
    objective = parse_objective(args.objective)
    kinds = list(NEURAL) if args.model == "all" else [args.model]
    split = split_texts(case, data, args)
    n, y = len(data.texts), data.y
    run, _, seeds = cli.start(
        case,
        args,
        f"{data.dataset}: {n} texts, {y.mean():.1%} {data.labels[1]}, {len(split.texts[0])}/"
        f"{len(split.texts[1])}/{len(split.texts[2])} train/val/test ({split.n_repeated} repeated texts "
        f"kept in one split); vocabulary {len(split.vocab)} tokens, max_len {split.vocab.max_len}",
    )
    reference = fit_reference(split, objective)
    per_seed, first = train_seeds(kinds, seeds, split, args, objective, reference)
    metrics = {**summarize_seeds(per_seed, kinds, seeds), "objective": str(objective), **describe(data, split, args)}
    misclassified = write_artifacts(run, metrics, split, first, reference)
    explained = explain_examples(run, metrics, split, first)
    print(summary_line(metrics))
    return run.finish(
        metrics,
        sections(blurb, metrics, kinds, misclassified, explained),
        title=title,
        headline={k: metrics[k] for k in HEADLINE},
        history={k: f["history"] for k, f in first.items()},
        config=vars(args),
        notes=notes(metrics),
    )
