"""The text cases' cross-validated protocol (`--cv K --repeats R`, keras_cases.text_models.crossval):
folds over distinct texts, the same folds for every model (paired), the family and the
ensemble chosen per fold on validation, real models, the report and the fold plot.

Runs on a subset of the SMS collection, two folds, two families, two epochs, in one subprocess."""

import json

import numpy as np
import pytest
from conftest import SHARED_DATA, backends_under_test, check, run_python

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
    argv += ["--families", "conv1d,char_cnn", "--epochs", "3", "--out", str(out), "-v", "0"]
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
    names = ["network chosen on validation", "conv1d", "char_cnn", "ensemble of top 2", "TF-IDF + LR"]
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
    # each fold's chosen candidate is one of the candidates, and its held-out scores are that candidate's
    for j, c in enumerate(m["protocol"]["choices"]):
        assert c["chosen"] in ("conv1d", "char_cnn", "ensemble of top 2")
        assert chosen[j] == s["f1"]["models"][c["chosen"]]["folds"][j]
        assert sorted(c["members"]) == sorted(
            ["conv1d", "char_cnn"] if c["chosen"].startswith("ensemble") else [c["chosen"]]
        )
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
