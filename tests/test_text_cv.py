"""The text cases' cross-validated protocol (`--cv K --repeats R`, keras_cases.text_models.crossval):
folds over distinct texts, the same folds for every model (paired), the family and the
ensemble chosen per fold on validation, real models, the report and the fold plot.

Runs on a subset of the SMS collection, two folds, three families, three epochs, in one
subprocess. Also: the fastText family (its bigram table fit on training texts only; it learns;
the same layer arithmetic on every backend, run as a script in a subprocess) and the choice
rule on constructed validation scores.

The per-backend fastText check `test_fasttext_on_every_backend` starts is
tests/scripts/fasttext_check.py (it prints one JSON line)."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, backends_under_test, check, run_python
from scripts.fasttext_check import bigram_keys_of, build_model, tiny_split

from keras_cases.data.text import binary_labels, read_tab_file, tokenize

SOURCE = "jax" if "jax" in backends_under_test() else backends_under_test()[0]
SPAM_FILE = SHARED_DATA / "sms_spam_collection" / "SMSSpamCollection"
N_TEXTS = 1600  # the first 1,600 messages (13% spam, repeated messages among them)


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spam_cv")
    subset = tmp / "SMSSpamCollection"
    subset.write_text("\n".join(SPAM_FILE.read_text(encoding="utf-8").split("\n")[:N_TEXTS]) + "\n", encoding="utf-8")
    out = tmp / "run"
    argv = ["-m", "keras_cases.spam", "--data", str(subset), "--cv", "2", "--repeats", "1"]
    argv += ["--families", "conv1d,fasttext,char_cnn", "--epochs", "3", "--out", str(out), "-v", "0"]
    p = check(run_python(argv, backend=SOURCE))
    texts, labels = read_tab_file(subset, label_first=True)
    return out, p, texts, binary_labels(labels, None, ("spam",))[0]


def test_folds_are_over_distinct_texts_and_the_same_for_every_model(cv_run):
    out, _, texts, y = cv_run
    m = json.loads((out / "metrics.json").read_text())
    p = m["protocol"]
    assert (p["cv"], p["repeats"], p["folds"]) == (2, 1, 2) and m["n_texts"] == len(texts) == N_TEXTS
    tests = [np.asarray(f["test"]) for f in p["fold_indices"]]
    assert sorted(np.concatenate(tests).tolist()) == list(range(N_TEXTS))  # each text held out once
    where = {}
    for k, part in enumerate(tests):
        assert abs(y[part].mean() - y.mean()) < 0.02  # stratified
        for i in part:
            assert where.setdefault(" ".join(tokenize(texts[i])), k) == k  # a repeated text in one fold only
    assert p["n_repeated_texts"] == N_TEXTS - len(where) > 0
    # paired: every model has one score per fold, and the interval is about per-fold differences
    f1 = m["summaries"]["f1"]
    assert all(len(v["folds"]) == 2 for v in f1["models"].values())
    names = ["network chosen on validation", "conv1d", "fasttext", "char_cnn", "TF-IDF + LR"]
    names += ["ensemble of top 2", "ensemble of top 3"]
    assert sorted(f1["models"]) == sorted(names)
    for r in f1["paired"]:
        assert r["reference"] == "TF-IDF + LR"
        d = np.subtract(f1["models"][r["model"]]["folds"], f1["models"]["TF-IDF + LR"]["folds"])
        assert r["diff"] == pytest.approx(d.mean()) and r["low"] <= r["diff"] <= r["high"]


def test_chosen_network_is_real_and_chosen_on_validation(cv_run):
    out, proc, _, y = cv_run
    m = json.loads((out / "metrics.json").read_text())
    s, h = m["summaries"], m["headline"]
    chosen = s["f1"]["models"]["network chosen on validation"]["folds"]
    # all-negative scores F1 0 and accuracy 0.87; all-positive F1 0.23: a broken model reaches neither
    assert min(chosen) > 0.75 and h["f1"] == pytest.approx(np.mean(chosen))
    assert h["accuracy"] > 0.95 > 1 - y.mean() and h["tfidf_f1"] > 0.8
    # each fold's chosen candidate is one of the candidates, and its held-out scores are that candidate's;
    # validation chose it: the most networks among those within one standard error of the best
    families = ["conv1d", "fasttext", "char_cnn"]
    for j, c in enumerate(m["protocol"]["choices"]):
        val = c["val_pr_auc"]
        assert sorted(val) == sorted([*families, "ensemble of top 2", "ensemble of top 3"])
        assert c["best"] == max(val, key=val.get) and c["best"] in c["close"] and c["chosen"] in c["close"]
        assert chosen[j] == s["f1"]["models"][c["chosen"]]["folds"][j]
        size = {k: int(k.rsplit(" ", 1)[1]) if k.startswith("ensemble") else 1 for k in val}
        assert size[c["chosen"]] == max(size[k] for k in c["close"]) == len(c["members"])
        ranked = sorted(families, key=lambda k: -val[k])
        assert c["members"] == (ranked[: size[c["chosen"]]] if size[c["chosen"]] > 1 else [c["chosen"]])
    report = (out / "report.md").read_text()
    assert "![per fold](folds_f1.png)" in report and (out / "folds_f1.png").stat().st_size > 10_000
    assert "| network chosen on validation | TF-IDF + LR |" in report
    assert "paired difference" in proc.stdout and "chosen on validation:" in proc.stdout


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--cv", "1"], "at least 2 folds"),
        (["--cv", "-2"], "--cv"),
        (["--cv", "2", "--repeats", "0"], "--repeats"),
        (["--cv", "2", "--families", "bert"], "unknown family 'bert'"),
        (["--cv", "2", "--families", ","], "--families is empty"),
    ],
)
def test_bad_protocol_flags_are_one_line_and_exit_2(argv, message, tmp_path, capsys, monkeypatch):
    from keras_cases import cli, sentiment

    monkeypatch.setenv("KERAS_CASES_DATA_DIR", str(SHARED_DATA))
    try:
        rc = cli.run(sentiment.main, [*argv, "--out", str(tmp_path / "run")])
    except SystemExit as e:  # argparse's own range check (cli.positive_int) exits 2 itself
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and message in err.strip().splitlines()[-1], err
    assert not (tmp_path / "run").exists()


# --- the fastText family and the choice rule -------------------------------------------
def test_fasttext_bigram_table_is_fit_on_training_texts_only():
    from keras_cases.data.text import Vocabulary

    (t_tr, _), (t_va, _) = tiny_split()
    vocab = Vocabulary.fit(t_tr, max_len=32)
    x_tr, x_va = vocab.encode(t_tr), vocab.encode(t_va)
    seen, later = bigram_keys_of(x_tr, len(vocab)), bigram_keys_of(x_va, len(vocab))
    table = build_model("fasttext", len(vocab), vocab.max_len, train_ids=x_tr).get_layer("embedding")
    assert set(table.bigrams) == seen and table.bigrams == sorted(table.bigrams)  # every training pair, once
    assert len(later - seen) > 100 and not set(table.bigrams) & (later - seen)  # no held-out-only pair
    assert table.input_dim == len(vocab) + len(seen)  # a row per word and per training bigram
    # fit on other texts, the table is another one; without training ids, a bag of words
    assert set(build_model("fasttext", len(vocab), 32, train_ids=x_va).get_layer("embedding").bigrams) == later
    assert build_model("fasttext", len(vocab), 32).get_layer("embedding").bigrams == []


FASTTEXT = str(Path(__file__).parent / "scripts" / "fasttext_check.py")  # run as a file in a subprocess


def test_fasttext_on_every_backend(backend):
    """On each backend: the layer computes what its NumPy definition says (mean over real
    tokens of the word rows plus the training-bigram rows), padding changes nothing, and six
    epochs on 480 messages lift validation PR-AUC from an untrained model's to above 0.9."""
    r = json.loads(check(run_python([FASTTEXT], backend=backend)).stdout.strip().splitlines()[-1])
    assert r["backend"] == backend and r["n_bigrams"] > 1000 and r["bigrams_found"] == 1.0
    assert r["layer_vs_numpy"] < 1e-5 and r["padding"] < 1e-5
    assert r["untrained_pr_auc"] < 0.6 < 0.9 < r["trained_pr_auc"], r  # 25% spam: chance is 0.25


def constructed_candidates(noise_b: float) -> tuple:
    """Validation labels of 900 texts (120 positive) and candidates scored by validation: two
    families "a" and "b" that see the same signal through their own noise (b's of std
    `noise_b`, a's 0.7) and their average "ensemble of top 2"."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    y = np.r_[np.ones(120), np.zeros(780)]
    signal = y * 2.5 + rng.normal(0, 0.7, 900)
    raw = {"a": signal + rng.normal(0, 0.7, 900), "b": signal + rng.normal(0, noise_b, 900)}
    raw["ensemble of top 2"] = (raw["a"] + raw["b"]) / 2
    cands = {k: {"p_val": p, "val_pr_auc": float(average_precision_score(y, p))} for k, p in raw.items()}
    cands["ensemble of top 2"]["members"] = ["a", "b"]
    return y, cands


def test_choice_prefers_the_average_unless_validation_clearly_says_otherwise():
    from keras_cases.text_models.crossval import choose

    # "a" is the best by a hair (0.8286 vs 0.8271): within one standard error, so the average
    y, cands = constructed_candidates(1.3)
    val = {k: c["val_pr_auc"] for k, c in cands.items()}
    assert max(val, key=val.get) == "a" and 0 < val["a"] - val["ensemble of top 2"] < 0.005
    chosen, why = choose(cands, y)
    assert chosen == "ensemble of top 2" and why["best"] == "a" and sorted(why["close"]) == ["a", "ensemble of top 2"]
    # "b" is much noisier, and "a" far ahead of the average (0.829 vs 0.698): validation's best stands
    y, cands = constructed_candidates(2.0)
    assert cands["a"]["val_pr_auc"] - cands["ensemble of top 2"]["val_pr_auc"] > 0.1
    assert choose(cands, y) == ("a", {"best": "a", "close": ["a"]})
    # both as good: the average is best on validation, and chosen
    y, cands = constructed_candidates(0.7)
    assert choose(cands, y)[0] == "ensemble of top 2"
