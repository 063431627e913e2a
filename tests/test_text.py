"""The text cases (spam, sentiment): the tokenizer and vocabulary, every model family on every
backend (training, padding invariance, saving and loading across backends), a --quick spam
run with every artifact, bad input, and the two notebooks.

Backend work runs in ONE subprocess per backend (Keras fixes its backend at import)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import NOTEBOOK_BACKEND, SHARED_DATA, check, execute_notebook, run_python, shared_notebook

from keras_cases import UserError
from keras_cases.data.text import (
    Vocabulary,
    binary_labels,
    clean_rows,
    decode_imdb,
    read_tab_file,
    read_text_csv,
    split_unique,
    tokenize,
)

NEURAL = ("lstm", "gru", "bilstm", "conv1d", "transformer", "fasttext")
SOURCE = NOTEBOOK_BACKEND  # jax where it is under test, else the first backend
SPAM_FILE = SHARED_DATA / "sms_spam_collection" / "SMSSpamCollection"


# --- the text pipeline (pure Python, no Keras) ---------------------------------------
def test_tokenize_words_punctuation_and_number_shapes():
    assert tokenize("Free entry! Text WIN to 80086, call 08712460324 now.") == [
        "free",
        "entry",
        "!",
        "text",
        "win",
        "to",
        "ddddd",
        ",",
        "call",
        "ddddddddddd",
        "now",
        ".",
    ]
    assert tokenize("I'm 2 busy, C U l8r :-)") == ["i'm", "2", "busy", ",", "c", "u", "l8r", ":", "-", ")"]
    assert tokenize("") == [] and tokenize("   \t ") == []
    for text in ("£1000 prize!! Claim @ www.win.com", "Don't   stop\u0085me", "ÉCOLE café ñ"):
        toks = tokenize(text)
        assert tokenize(" ".join(toks)) == toks  # idempotent: decode(encode(x)) re-tokenizes the same


def test_vocabulary_round_trip_is_fit_on_training_texts_only(tmp_path):
    train = ["win a free prize now", "free entry to win", "see you at lunch", "lunch at noon, see you"]
    test = ["win a free zebra"]  # 'zebra' is not in training
    v = Vocabulary.fit(train, min_count=1, max_len=8, labels=["ham", "spam"])
    assert v.tokens[:2] == ["[PAD]", "[UNK]"] and "zebra" not in v.index
    # most frequent first, ties alphabetically: six words twice, then the rest once
    assert v.tokens[2:8] == ["at", "free", "lunch", "see", "win", "you"] and v.tokens[8] == ","
    x = v.encode(train)
    assert x.shape == (4, 8) and x.dtype == np.int32
    assert v.decode(x) == [" ".join(tokenize(t)) for t in train]  # round trip
    assert (x[0, 5:] == 0).all() and (x[0, :5] > 1).all()  # 0-padded at the end
    assert v.encode(test)[0, 3] == 1 and v.decode(v.encode(test)) == ["win a free [UNK]"]
    assert v.encode(["a b c d e f g h i j"]).shape == (1, 8)  # truncated to max_len
    # words seen once fall to OOV with the default min_count=2, so training sees [UNK] too
    assert set(Vocabulary.fit(train, max_len=8).tokens[2:]) == {"free", "win", "see", "you", "lunch", "at"}
    # saved as JSON next to the model; the loaded vocabulary encodes identically
    v.save(tmp_path / "vocab.json")
    w = Vocabulary.load(tmp_path / "vocab.json")
    assert w.meta["labels"] == ["ham", "spam"] and w.max_len == 8
    np.testing.assert_array_equal(w.encode(train + test), v.encode(train + test))
    # the default length: the 95th percentile of training lengths, rounded up to 8, >= 16
    assert Vocabulary.fit(["w " * 40] * 20).max_len == 40
    assert Vocabulary.fit(train).max_len == 16
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(UserError):
        Vocabulary.load(tmp_path / "bad.json")


def test_split_keeps_repeated_texts_together_and_stratifies():
    texts, labels = read_tab_file(SPAM_FILE, label_first=True)
    y, names = binary_labels(labels, None, ("spam",))
    assert len(texts) == 5574 and names == ("ham", "spam") and y.sum() == 747
    tr, va, te, dupes = split_unique(texts, y, 2024)
    assert len(tr) + len(va) + len(te) == 5574 and dupes > 300
    where = {}
    for k, part in enumerate((tr, va, te)):
        for i in part:
            key = " ".join(tokenize(texts[i]))
            assert where.setdefault(key, k) == k  # no message in two splits
    for part in (tr, va, te):
        assert abs(y[part].mean() - y.mean()) < 0.02


def test_sentence_files_read_with_quoting_off():
    from keras_cases.data import REGISTRY

    for key, n_quotes in (("sentiment_imdb", 1), ("sentiment_amazon", 0), ("sentiment_yelp", 0)):
        texts, labels = read_tab_file(SHARED_DATA / REGISTRY[key].relpath, label_first=False)
        assert len(texts) == 1000 and sorted(set(labels)) == ["0", "1"] and labels.count("1") == 500
        assert sum('"' in t for t in texts) >= n_quotes  # stray quotes stay plain characters


def test_kaggle_spam_csv_latin1_and_bad_csvs(tmp_path):
    rows = [
        ("ham", "Go until jurong point, crazy.. Available only in bugis n great world la e buffet"),
        ("spam", "Free entry in 2 a wkly comp to win FA Cup final tkts £100"),
        ("ham", "Ok lar..."),
    ]
    kaggle = pd.DataFrame(
        {"v1": [r[0] for r in rows], "v2": [r[1] for r in rows], "Unnamed: 2": "", "Unnamed: 3": "", "Unnamed: 4": ""}
    )
    kaggle.to_csv(tmp_path / "spam.csv", index=False, encoding="latin-1")
    texts, labels, tcol, lcol = read_text_csv(tmp_path / "spam.csv", None, None, ("text", "v2"), ("label", "v1"))
    assert (tcol, lcol) == ("v2", "v1") and "£100" in texts[1]
    y, names = binary_labels(labels, None, ("spam",))
    assert y.tolist() == [0, 1, 0] and names == ("ham", "spam")
    with pytest.raises(UserError, match="no text column 'body'"):
        read_text_csv(tmp_path / "spam.csv", "body", "v1")
    with pytest.raises(UserError, match="text column 'v2' is empty"):
        clean_rows(["", " "], ["ham", "spam"], "v2", "v1")
    with pytest.raises(UserError, match="3 distinct value"):
        binary_labels(["ham", "spam", "eggs"], None, ("spam",), "v1")
    with pytest.raises(UserError, match="--positive"):
        binary_labels(["a", "b"], None, ("spam",), "v1")
    with pytest.raises(UserError, match="not found"):
        read_text_csv(tmp_path / "missing.csv")


def test_imdb_ids_decode_to_text():
    word_index = {"the": 1, "movie": 2, "was": 3, "great": 4}
    assert decode_imdb([[1, 4, 5, 6, 7, 2, 0], [1, 2, 99]], word_index) == ["the movie was great", ""]


# --- the cases, end to end -------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """`python -m keras_cases.spam --quick`, every model, as a user types it."""
    out = tmp_path_factory.mktemp("spam_quick")
    p = check(run_python(["-m", "keras_cases.spam", "--quick", "--out", str(out), "-v", "0"], backend=SOURCE))
    return out, p


ARTIFACTS = [
    "metrics.json",
    "history.csv",
    "model.keras",
    "vocab.json",
    "decision.json",
    "config.json",
    "report.md",
    "test_scores.csv",
    "misclassified.csv",
    "learning_curves.png",
    "roc_pr.png",
    "confusion_matrices.png",
    "token_attributions.png",
    *[f"models/{k}.keras" for k in NEURAL],
]


def test_quick_spam_run_writes_every_artifact(quick_run):
    out, proc = quick_run
    for name in ARTIFACTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    m = json.loads((out / "metrics.json").read_text())
    for k in (
        "backend",
        "keras_version",
        "dataset",
        "n_train",
        "n_val",
        "n_test",
        "seconds",
        "seed",
        "best_model",
        "models",
        "objective",
    ):
        assert k in m, k
    assert m["backend"] == SOURCE and m["n_train"] + m["n_val"] + m["n_test"] == 5574
    assert m["objective"] == "precision>=0.98" and m["best_model"] in NEURAL
    assert sorted(m["models"]) == sorted([*NEURAL, "tfidf_logreg"])
    for name, r in m["models"].items():
        assert all(0 <= r[k] <= 1 for k in ("accuracy", "precision", "recall", "f1", "pr_auc")), name
        assert r["params"] > 0 and r["train_seconds"] >= 0
    # the flat metrics are the model chosen on validation, not on test
    best = max(NEURAL, key=lambda k: m["models"][k]["val_pr_auc"])
    assert m["best_model"] == best and m["f1"] == m["models"][best]["f1"]
    assert m["accuracy"] > 0.95 and m["models"]["tfidf_logreg"]["f1"] > 0.9  # real models
    h = pd.read_csv(out / "history.csv")
    assert set(h["model"]) == set(NEURAL) and {"loss", "val_pr_auc", "val_threshold"} <= set(h.columns)
    scores = pd.read_csv(out / "test_scores.csv")
    assert len(scores) == m["n_test"] and set(NEURAL) <= set(scores.columns)
    decision = json.loads((out / "decision.json").read_text())
    assert decision["model"] == best and decision["labels"] == ["ham", "spam"]
    mis = pd.read_csv(out / "misclassified.csv")
    p, t = scores[best], decision["threshold"]
    assert len(mis) == int(((p >= t) != (scores["label"] == "spam")).sum())
    report = (out / "report.md").read_text()
    for png in ("learning_curves.png", "roc_pr.png", "confusion_matrices.png"):
        assert f"]({png})" in report
    assert "| tfidf_logreg |" in report and "best on validation" in proc.stdout
    assert json.loads((out / "vocab.json").read_text())["max_len"] == m["max_len"]


BACKEND = str(Path(__file__).parent / "scripts" / "text_backend.py")  # run as a file in a subprocess


def test_every_family_on_every_backend(backend, quick_run):
    """The quick run's models (saved on SOURCE) load on `backend` and score the same; padding
    never changes an answer (trained models and stacked variants); each family trains one
    epoch here (on SOURCE the quick run trained them, same code path); `predict` works."""
    out, _ = quick_run
    fit = "load" if backend == SOURCE else "train"
    p = check(run_python([BACKEND, str(out), fit], backend=backend))
    res = json.loads(p.stdout.split("RESULT", 1)[1])
    assert res["backend"] == backend
    assert sorted(res["loaded"]) == sorted(NEURAL)
    assert sorted(res["masked"]) == sorted(k + "_stacked" for k in NEURAL)
    for k, r in res["loaded"].items():
        assert r["diff"] < 2e-6, (backend, k, r["diff"])  # saved on SOURCE, 7-decimal CSV
    for name, r in [*res["loaded"].items(), *res["masked"].items()]:
        # finite even for an empty text (all padding), and a probability
        assert np.isfinite(r["padded"]).all() and 0 <= min(r["padded"]) <= max(r["padded"]) <= 1, name
        # padding never decides the output: a padded and an unpadded copy score the same
        assert abs(r["unpadded"] - r["padded"][0]) < 2e-6, (name, r)
        assert len(set(np.round(r["padded"], 6))) > 1, name  # and the texts do matter
    if fit == "train":
        assert sorted(res["trained"]) == sorted(NEURAL)
        assert all(len(v) == 1 and np.isfinite(v[0]) for v in res["trained"].values()), res["trained"]
    assert res["predict_rc"] == 0
    lines = [ln.split("\t") for ln in p.stdout.splitlines() if "\t" in ln]
    assert [ln[2] for ln in lines] == ["Free entry! Text WIN to 80086", "Are we still on for lunch?"]
    assert all(ln[0] in ("ham", "spam") and 0 <= float(ln[1]) <= 1 for ln in lines)
    if backend != "tensorflow":  # the text pipeline needs no TensorFlow
        assert "tensorflow" not in res["modules"], res["modules"]


def test_quick_spam_report_explains_right_and_wrong_texts(quick_run):
    """The why-section: the best network's token attributions for right and wrong test texts of
    both classes, adding up to logit(text) - logit(zero embeddings) within 1%, and the figure."""
    import re

    out, _ = quick_run
    report = (out / "report.md").read_text()
    best = json.loads((out / "metrics.json").read_text())["best_model"]
    section = report.split(f"## Why: token attributions ({best}, test texts right and wrong)", 1)[1].split("\n## ")[0]
    assert "![token attributions](token_attributions.png)" in section
    rows = [ln for ln in section.splitlines() if ln.startswith("| right: ") or ln.startswith("| wrong: ")]
    cells = [re.split(r"(?<!\\)\|", ln) for ln in rows]  # a token may be an escaped pipe
    kinds = {c[1].strip() for c in cells}
    assert {"right: spam", "right: ham"} <= kinds and any(k.startswith("wrong: ") for k in kinds), kinds
    for c in cells:  # each names tokens with signed attributions, largest first
        sizes = [abs(float(v)) for v in re.findall(r"\(([+-]\d+\.\d+)\)", c[3])]
        assert sizes and sizes == sorted(sizes, reverse=True) and sizes[0] > 0.05, c
    miss = float(re.search(r"within (\d+\.\d+)%", section)[1])
    assert miss < 1.0, section


TEXT_EXPLAIN = str(Path(__file__).parent / "scripts" / "text_explain.py")  # run as a file in a subprocess


def test_token_attributions_add_up_on_every_backend(backend, quick_run):
    """Integrated gradients over the embedding output of the quick run's transformer and conv1d
    (saved on SOURCE): per-token attributions add up to f(text) - f(zero embeddings) within 1%,
    padding gets exactly 0, and Predictor.explain gives one item per raw token, as written."""
    out, _ = quick_run
    r = json.loads(check(run_python([TEXT_EXPLAIN, str(out)], backend=backend)).stdout.strip().splitlines()[-1])
    for kind in ("transformer", "conv1d"):
        c = r[kind]
        assert c["scores_match"] < 1e-5 and c["max_gap"] > 0.1, (kind, c)  # the head is the model
        assert c["completeness_rel"] < 0.01, (kind, c)
        assert c["padding"] == 0.0 and c["real"] > 0.01, (kind, c)
    assert r["names"] == r["surface"] and r["same_predictions"] and r["target"] == "spam" and r["heatmap"] == []
    assert r["names"][1] == ["Call", "08712460324", "NOW", "to", "claim", "your", "£", "1000"]


@pytest.mark.parametrize(
    "case,rows,message",
    [
        ("spam", [("ham", ""), ("spam", "  ")], "error: text column 'v2' is empty"),
        (
            "sentiment",
            [("pos", "great"), ("neg", "awful"), ("meh", "fine")],
            "error: label column 'v1' has 3 distinct value(s) (meh, neg, pos); a binary classifier needs exactly two",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(case, rows, message, tmp_path):
    pd.DataFrame({"v1": [r[0] for r in rows], "v2": [r[1] for r in rows]}).to_csv(tmp_path / "bad.csv", index=False)
    p = run_python(
        [
            "-m",
            f"keras_cases.{case}",
            "--csv",
            str(tmp_path / "bad.csv"),
            "--text-column",
            "v2",
            "--label-column",
            "v1",
            "--out",
            str(tmp_path / "run"),
        ],
        backend=SOURCE,
    )
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip() == message
    assert "Traceback" not in p.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["spam", "sentiment"])
def test_notebook_runs(name, tmp_path, tmp_path_factory):
    """spam's notebook runs QUICK_SPAM: its run is the one test_serve and test_bad_input read."""
    if name == "spam":
        nb, out, _ = shared_notebook(tmp_path_factory, "spam.ipynb")  # on SOURCE
    else:
        nb, out = execute_notebook(f"{name}.ipynb", tmp_path, backend=SOURCE)
    m = json.loads((out / "metrics.json").read_text())
    assert m["quick"] and m["backend"] == SOURCE
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "tfidf_logreg" in outputs and m["best_model"] in outputs
