"""What a text run leaves behind besides metrics.json: every first-seed network, the
vocabulary and decision file, per-model test scores, the misclassified texts, the plots,
and the report's lines and sections (Run.finish writes the shared header)."""

from __future__ import annotations

import numpy as np

from keras_cases import plots, runtime
from keras_cases.evaluation import confusion
from keras_cases.runs import markdown_table
from keras_cases.text_models import SPLIT_SEED, TFIDF


# --- artifacts ------------------------------------------------------------------------
def write_artifacts(run, metrics, split, first, reference) -> list[dict]:
    """Models, vocab.json, decision.json, test_scores.csv, misclassified.csv and the plots;
    returns the 25 worst misclassified test texts of the best network (for the report)."""
    best = metrics["best_model"]
    save_models(run, metrics, split.vocab, first)
    y_te, t_te = split.ys[2], split.texts[2]
    write_test_scores(run, metrics["labels"], y_te, t_te, first, reference)
    mis = misclassified(metrics["labels"], y_te, t_te, first[best]["p_test"], first[best]["threshold"])
    mis.to_csv(run.path("misclassified.csv"), index=False)
    plot_run(run, metrics["labels"], y_te, first, reference)
    return mis.head(25).to_dict("records")


def save_models(run, metrics, vocab, first):
    """Every network under models/, the best as model.keras, with the vocabulary and the
    decision file (chosen model, thresholds, labels) that `predict` and `serve` read."""
    best = metrics["best_model"]
    (run.dir / "models").mkdir(exist_ok=True)
    for kind, f in first.items():
        runtime.save_model(f["model"], run.path(f"models/{kind}.keras"))
    runtime.save_model(first[best]["model"], run.path("model.keras"))
    vocab.save(run.path("vocab.json"))
    run.write_json(
        "decision.json",
        {
            "model": best,
            "threshold": first[best]["threshold"],
            "objective": metrics["objective"],
            "labels": list(metrics["labels"]),
            "thresholds": {k: f["threshold"] for k, f in first.items()},
        },
    )


def write_test_scores(run, labels, y_te, t_te, first, reference):
    import pandas as pd

    neg, pos = labels
    scores = pd.DataFrame({"text": t_te, "label": np.where(y_te == 1, pos, neg)})
    for kind, f in first.items():
        scores[kind] = np.round(f["p_test"], 7)
    scores[TFIDF] = np.round(reference["p_test"], 7)
    scores.to_csv(run.path("test_scores.csv"), index=False)


def misclassified(labels, y_te, t_te, p, t):
    """The test texts the model gets wrong at its threshold, the most confident first."""
    import pandas as pd

    neg, pos = labels
    wrong = np.flatnonzero((p >= t) != (y_te == 1))
    wrong = wrong[np.argsort(-np.abs(p[wrong] - t), kind="stable")]
    return pd.DataFrame(
        {
            "true": np.where(y_te[wrong] == 1, pos, neg),
            "predicted": np.where(y_te[wrong] == 1, neg, pos),
            "score": np.round(p[wrong], 4),
            "text": [t_te[i] for i in wrong],
        }
    )


def plot_run(run, labels, y_te, first, reference):
    """Learning curves, ROC and PR curves, and confusion matrices (test, first seed)."""
    ref_test, ref_t = reference["p_test"], reference["threshold"]
    plots.learning_curves(
        {k: f["history"] for k, f in first.items()}, run.path("learning_curves.png"), metrics=("loss", "pr_auc")
    )
    curves = {k: (y_te, f["p_test"], f["threshold"]) for k, f in first.items()}
    curves["TF-IDF + LR"] = (y_te, ref_test, ref_t)
    plots.roc_pr(curves, run.path("roc_pr.png"), "(test)")
    cms = {f"{k} @{f['threshold']:.2f}": confusion(y_te, f["p_test"], f["threshold"]) for k, f in first.items()}
    cms[f"TF-IDF + LR @{ref_t:.2f}"] = confusion(y_te, ref_test, ref_t)
    plots.confusion_matrices(cms, run.path("confusion_matrices.png"), labels=tuple(labels))


# --- why: token attributions of a few test texts -------------------------------------
def explained_examples(y, p, t, labels, texts, per_kind: int = 2) -> list[tuple[int, str]]:
    """Test texts to explain: the `per_kind` most confident right and wrong ones of each true
    class (fewer where there are fewer; a repeated text once), as (index, what happened)."""
    neg, pos = labels
    right = (p >= t) == (y == 1)
    first = np.zeros(len(y), bool)
    first[np.unique(np.asarray(texts, dtype=object), return_index=True)[1]] = True
    picks = []
    for truth, name, other in ((1, pos, neg), (0, neg, pos)):
        for ok in (True, False):
            idx = np.flatnonzero((y == truth) & (right == ok) & first)
            idx = idx[np.argsort(-np.abs(p[idx] - t), kind="stable")][:per_kind]
            picks += [(int(i), f"right: {name}" if ok else f"wrong: {name} taken for {other}") for i in idx]
    return picks


def explain_examples(run, metrics, split, first) -> str:
    """Integrated gradients over the embedding output of the best network for right and wrong
    test texts: token_attributions.png (coloured token boxes) and the report section."""
    from keras_cases import explain
    from keras_cases.text_models.predict import IG_STEPS as steps
    from keras_cases.text_models.predict import IG_TEXTS, token_items

    best, (neg, pos) = metrics["best_model"], metrics["labels"]
    f, y, texts = first[best], split.ys[2], split.texts[2]
    picks = explained_examples(y, f["p_test"], f["threshold"], (neg, pos), texts)
    if not picks:
        return "no test texts"
    chosen = [texts[i] for i, _ in picks]
    model, ids = explain.logits(f["model"]), split.vocab.encode(chosen)
    attr, s, s0 = explain.token_attributions(model, ids, steps=steps, batch_size=steps * IG_TEXTS)
    err = float(np.abs(attr.sum(1) - (s - s0)).max() / max(np.abs(s - s0).max(), 1e-12))
    rows, table = [], []
    for (i, what), text, a, score in zip(picks, chosen, attr, f["p_test"][[i for i, _ in picks]]):
        items = token_items(text, a)
        rows.append(
            {"caption": f"{what}: p({pos}) {score:.3f}", "tokens": [(t["name"], t["attribution"]) for t in items]}
        )
        top = sorted(items, key=lambda t: -abs(t["attribution"]))[:4]
        table.append(
            {
                "test text": what,
                f"p({pos})": f"{score:.3f}",
                "tokens that moved it most": ", ".join(f"{t['name']} ({t['attribution']:+.2f})" for t in top).replace(
                    "|", "\\|"
                ),
            }
        )
    plots.token_highlights(
        rows, run.path("token_attributions.png"), f"{best}: token attributions to the logit of p({pos})"
    )
    return (
        f"Integrated gradients ({steps} steps) of the {best} network's logit of p({pos}) over its embedding "
        f"output, from all-zero embedding vectors, summed over the embedding dimension: one number per token "
        f"(in logit units), red towards {pos}, blue towards {neg} (shade scaled per text). The logit, not the "
        f"probability: a confident text's probability sits near 1 along most of the path and would give every "
        f"token about 0. Shown: the most confident right and wrong test texts of each class at the chosen "
        f"threshold {f['threshold']:.3f} (repeated texts once); the attributions add up to logit(text) - "
        f"logit(zero embeddings) within {err:.2%} (largest miss, relative to the largest gap). serve's /explain "
        f"(`Predictor.explain`) is the same computation.\n\n![token attributions](token_attributions.png)\n\n"
        + markdown_table(table, ["test text", f"p({pos})", "tokens that moved it most"])
    )


# --- the report -----------------------------------------------------------------------
def _pm(m, key, seeds):
    return f"{m[key]:.4f}" + (f" ± {m['std'][key]:.4f}" if seeds > 1 else "")


def summary_line(m) -> str:
    b, r = m["best_model"], m["models"][TFIDF]
    return (
        f"best on validation: {b}: test F1 {_pm(m, 'f1', m['seeds'])}, accuracy "
        f"{_pm(m, 'accuracy', m['seeds'])}, PR-AUC {m['pr_auc']:.4f} | TF-IDF + LR: F1 "
        f"{r['f1']:.4f}, accuracy {r['accuracy']:.4f}, PR-AUC {r['pr_auc']:.4f}"
    )


def notes(m) -> list[str]:
    """The case's lines of the report header (Run.finish writes data, backend, seeds, time)."""
    neg, pos = m["labels"]
    return [
        f"split: stratified, split seed {SPLIT_SEED}; {m['n_repeated_texts']} repeated texts kept in the "
        f"split of their first copy; labels {neg} / {pos}",
        f"text pipeline (outside the model, fit on train only, saved as vocab.json): {m['vocab_size']} "
        f"tokens incl. padding and OOV, {m['max_len']} tokens per text; {m['oov_rate_test']:.1%} of test "
        "tokens are out of vocabulary",
        f"up to {m['epochs']} epochs, batch {m['batch_size']}, class-weighted loss, early stopping on "
        f"validation PR-AUC (best weights restored){', stacked variants' if m['stacked'] else ''}",
        f"decision threshold per model chosen on validation only for `{m['objective']}`; the best "
        f"model is chosen by validation PR-AUC: **{m['best_model']}**",
    ]


RESULT_COLUMNS = ["model", "accuracy", "precision", "recall", "f1", "pr_auc", "threshold"]
RESULT_COLUMNS += ["val PR-AUC", "params", "train s", "epochs"]


def results_table(m, kinds) -> str:
    """One row per model (mean ± std over seeds; the reference is deterministic)."""
    rows = []
    for k in [*kinds, TFIDF]:
        r = m["models"][k]
        rows.append(
            {
                "model": k + (" (best on val)" if k == m["best_model"] else ""),
                **{
                    c: _pm(r, c, m["seeds"] if k != TFIDF else 1)
                    for c in ("accuracy", "precision", "recall", "f1", "pr_auc")
                },
                "threshold": r["threshold"],
                "val PR-AUC": r["val_pr_auc"],
                "params": f"{int(r['params']):,}",
                "train s": f"{r['train_seconds']:.1f}",
                "epochs": f"{r['epochs_trained']:.1f}",
            }
        )
    return markdown_table(rows, RESULT_COLUMNS)


def verdict(m, kinds) -> str:
    best, ref = m["models"][m["best_model"]], m["models"][TFIDF]
    nets = [k for k in kinds if m["models"][k]["f1"] > ref["f1"]]
    line = (
        f"TF-IDF + logistic regression beats the network chosen on validation ({m['best_model']}) on test F1"
        if ref["f1"] > best["f1"]
        else f"The network chosen on validation ({m['best_model']}) beats TF-IDF + logistic regression on test F1"
    )
    return (
        line + f" ({ref['f1']:.4f} vs {best['f1']:.4f}); networks above TF-IDF on test F1: {', '.join(nets) or 'none'}."
    )


def results_section(m, kinds) -> str:
    seeds = m["seeds"]
    spread, per_seed = "", ""
    if seeds > 1:
        spread = (
            f"Mean ± std over {seeds} seeds ({m['seed']}..{m['seed'] + seeds - 1}; the split "
            "is fixed, the seed sets weights, batch order and dropout); threshold, validation "
            "PR-AUC, train seconds and epochs are means. "
        )
        per_seed = "\n\nTest F1 per seed:\n\n" + markdown_table(
            [{"seed": r["seed"], **{k: r[k]["f1"] for k in kinds}} for r in m["per_seed"]], ["seed", *kinds]
        )
    return f"{spread}{verdict(m, kinds)}\n\n{results_table(m, kinds)}{per_seed}\n\n![ROC and PR curves](roc_pr.png)"


def sections(blurb, m, kinds, misclassified, explained=None) -> list:
    """The report after the shared header: the blurb, then results, confusion matrices,
    misclassified texts, token attributions (`explained`, when given) and learning curves."""
    mis = [
        {
            "true": r["true"],
            "score": f"{r['score']:.3f}",
            "text": str(r["text"]).replace("|", "\\|").replace("\n", " ")[:160],
        }
        for r in misclassified
    ]
    curves = (
        "Training loss is class-weighted, validation loss is not; validation PR-AUC is scikit-learn's\n"
        "average precision on the validation texts (what early stopping watched).\n\n"
        "![learning curves](learning_curves.png)\n\n"
        "Per-model test scores are in test_scores.csv; every network is saved under models/."
    )
    return [
        *([blurb] if blurb else []),
        ("Test-set results", results_section(m, kinds)),
        ("Confusion matrices (test, first seed)", "![confusion matrices](confusion_matrices.png)"),
        (
            f"Misclassified test texts ({m['best_model']}, first seed; worst first, all in misclassified.csv)",
            markdown_table(mis, ["true", "score", "text"]) if mis else "none",
        ),
        *(
            [(f"Why: token attributions ({m['best_model']}, test texts right and wrong)", explained)]
            if explained
            else []
        ),
        ("Learning curves (first seed)", curves),
    ]
