"""The text-generation case: the n-gram baseline and the sampling filters by known answers,
the split by document, the IMDB corpus offline, and a --quick run with sampling on every
backend (the first through the notebook)."""

import json

import numpy as np
import pytest
from conftest import backends_under_test, check, execute_notebook, run_python

from keras_cases import UserError
from keras_cases.textgen import corpus as C
from keras_cases.textgen.ngram import NGram
from keras_cases.textgen.sample import filter_logits


def test_ngram_is_a_distribution_and_learns_a_pattern():
    train = C.encode("abcd" * 500)
    model = NGram(train)
    x, y = C.windows(C.encode("abcd" * 20), 16)
    # every context: the 257 probabilities sum to one
    total = sum(model.probabilities(x, np.full_like(x, w), 3) for w in range(C.VOCAB))
    np.testing.assert_allclose(total, 1.0, atol=1e-9)
    p = model.probabilities(x, y, 3)
    assert p.min() > 0.99  # with a byte of context the next one is certain
    np.testing.assert_allclose(model.probabilities(x, y, 0), 0.25, atol=0.01)  # no context: the unigram
    best, scores = model.choose(x, y)
    assert best >= 1 and scores[0] > 1.9 and scores[best] < 0.2


def test_filters_known_answers():
    logits = np.log([[0.5, 0.3, 0.2]])
    np.testing.assert_allclose(filter_logits(logits, 0), [[1, 0, 0]])  # temperature 0: greedy
    np.testing.assert_allclose(filter_logits(logits, 1.0), [[0.5, 0.3, 0.2]])
    np.testing.assert_allclose(filter_logits(logits, 1.0, top_k=2), [[0.625, 0.375, 0]])
    np.testing.assert_allclose(filter_logits(logits, 1.0, top_p=0.6), [[0.625, 0.375, 0]])
    np.testing.assert_allclose(filter_logits(logits, 1.0, top_p=0.4), [[1, 0, 0]])
    sharp = filter_logits(logits, 0.5)
    assert sharp[0, 0] > 0.5 and np.isclose(sharp.sum(), 1)


def test_split_by_document_merges_duplicates():
    docs = [f"document number {i}" for i in range(50)] + ["a repeated message"] * 20
    c = C.split(docs, "toy", seed=1, min_tokens=8)
    assert sum(c.documents.values()) == 51  # the 20 copies became one document
    decoded = {k: C.decode([t if t != C.BOUNDARY else 10 for t in s]).split("\n") for k, s in c.streams.items()}
    seen = [d for k in decoded for d in decoded[k] if d]
    assert len(seen) == len(set(seen)) == 51  # no document in two splits
    with pytest.raises(UserError, match="distinct document"):
        C.split(["one", "one", "two"], "tiny", 0)


def test_quick_run_and_sampling_on_every_backend(backend, tmp_path, monkeypatch):
    """The first backend's --quick run is the notebook's (it runs `case.main([... "--quick"])`
    in its kernel), the others' the command line's: one quick run per backend either way."""
    if backend == backends_under_test()[0]:
        monkeypatch.setenv("KERAS_BACKEND", backend)  # the notebook's kernel inherits it
        nb, out = execute_notebook("textgen.ipynb", tmp_path)
        shown = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
        assert "transformer_test_bits" in shown
    else:
        out = tmp_path / "run"
        check(
            run_python(["-m", "keras_cases.textgen", "--quick", "--out", str(out), "--verbose", "0"], backend=backend)
        )
    m = json.loads((out / "metrics.json").read_text())
    # 8.006 bits is a model that knows nothing; a short training already goes well below it
    assert m["transformer_test_bits"] < 7.5 and m["lstm_test_bits"] < 8.0
    assert 2.0 < m["ngram_test_bits"] < 4.5 and m["headline"]["bits_per_byte"] == m["transformer_test_bits"]
    assert m["n_train"] == 40_000 and m["documents"]["test"] > 500
    report = (out / "report.md").read_text()
    assert "## Samples" in report and "bits per byte" in report
    proc = check(
        run_python(
            [
                "-m",
                "keras_cases.textgen",
                "sample",
                "--run",
                str(out),
                "--prompt",
                "Hello",
                "--length",
                "12",
                "--samples",
                "2",
                "--temperature",
                "0",
            ],
            backend=backend,
        )
    )
    texts = [b.split("\n", 1)[1] for b in proc.stdout.split("--- sample ") if b.strip()]
    assert len(texts) == 2 and texts[0] == texts[1]  # greedy: the same continuation twice
    assert all(t.startswith("Hello") for t in texts)


def test_imdb_corpus_reads_aclimdb_and_never_downloads_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_CASES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("KERAS_CASES_OFFLINE", "1")
    with pytest.raises(UserError, match="aclImdb_v1.tar.gz"):  # says what to fetch, downloads nothing
        C.imdb_documents()
    for i, part in enumerate(C.IMDB_PARTS):
        d = tmp_path / "data" / "aclImdb" / part
        d.mkdir(parents=True)
        (d / f"{i}_7.txt").write_text(f"Review {i}.<br /><br />Good film.", encoding="utf-8")
    docs, name = C.imdb_documents()
    assert len(docs) == 4 and "IMDB" in name
    assert docs[0] == "Review 0.\n\nGood film."  # the HTML line breaks become newlines
