"""The text-generation case: the n-gram baseline and the sampling filters by known answers,
the split by document, the IMDB corpus offline, the regularisers of the networks (the hashed
tables' size, weight decay on the matrices only, the best validation epoch's weights kept),
and a --quick run with sampling on every backend (the first through the notebook)."""

import json

import numpy as np
import pytest
from conftest import backends_under_test, check, execute_notebook, run_python

from keras_cases import UserError
from keras_cases.textgen import case
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


TINY = ["--context", "16", "--width", "32", "--layers", "1", "--heads", "2", "--lstm-width", "16"]


def test_ngram_buckets_flag_sizes_the_hashed_tables():
    """(N - 1) tables of --ngram-buckets rows, as wide as each network's byte embedding."""
    counts = {}
    for buckets in (100, 400):
        args = case.make_parser().parse_args([*TINY, "--ngram-buckets", str(buckets), "--input-ngrams", "4"])
        counts[buckets] = {k: case.build_network(k, args).count_params() for k in case.NETWORKS}
    assert counts[400]["transformer"] - counts[100]["transformer"] == 3 * 300 * 32
    assert counts[400]["lstm"] - counts[100]["lstm"] == 3 * 300 * 64
    off = case.make_parser().parse_args([*TINY, "--input-ngrams", "0"])
    assert case.build_network("transformer", off).count_params() == counts[100]["transformer"] - 3 * 100 * 32


def test_weight_decay_shrinks_the_matrices_only():
    """With zero gradients AdamW's step is its decay alone: every kernel and embedding table
    shrinks by lr x decay, biases (the attention's are 2-D) and LayerNorm scales stay."""
    import keras

    from keras_cases.textgen import models

    model = models.gpt(16, 32, 1, 2, 0.0, input_ngrams=3, buckets=50)
    for v in model.trainable_variables:
        if v.name in ("bias", "beta"):
            v.assign(keras.ops.ones(v.shape))  # a bias of 0 would not show a decay
    models.compile_model(model, lr=0.1, steps=10, warmup=1, weight_decay=0.5)
    before = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    zeros = [keras.ops.zeros(v.shape) for v in model.trainable_variables]
    for _ in range(2):  # the warm-up's first step has learning rate 0
        model.optimizer.apply(zeros, model.trainable_variables)
    decayed = set()
    for v, b in zip(model.trainable_variables, before):
        ratio = keras.ops.convert_to_numpy(v) / np.where(b == 0, 1, b)
        expected = 0.95 if models.decayed(v) else 1.0
        np.testing.assert_allclose(ratio[b != 0], expected, rtol=1e-5, err_msg=v.path)
        if models.decayed(v):
            decayed.add(v.name)
    assert {"embeddings", "kernel"} <= decayed and not decayed & {"bias", "gamma", "beta"}
    names = {v.name for v in model.trainable_variables if not models.decayed(v)}
    assert names == {"bias", "gamma", "beta"}


def test_training_keeps_the_best_validation_epoch():
    """Random letters: the best model is the 26-letter unigram, and memorising the training
    text's n-grams makes validation worse. The network ends with its best validation epoch's
    weights, not its last (the stopping rule both networks share)."""
    rng = np.random.default_rng(0)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8).astype("int32")
    train, val = rng.choice(letters, 1200), rng.choice(letters, 400)
    windows = {"train": C.windows(train, 16, 8), "val": C.windows(val, 16), "test": C.windows(val, 16)}
    args = case.make_parser().parse_args(
        [*TINY, "--epochs", "8", "--patience", "8", "--learning-rate", "0.03", "--dropout", "0", "--weight-decay", "0"]
        + ["--ngram-buckets", "4000", "--batch-size", "16", "--verbose", "0"]
    )
    model, history, test_bits, _ = case.train_network("transformer", args, windows, 0, steps_per_epoch=10)
    val = np.asarray(history["val_loss"]) / np.log(2)
    assert val.argmin() < len(val) - 1 and val[-1] > val.min() + 0.05  # it did overfit after its best epoch
    assert val.min() < np.log2(26) + 0.3  # the best epoch had learnt the letters (8.0 bits: nothing)
    np.testing.assert_allclose(test_bits, val.min(), rtol=1e-4)  # test windows = validation windows here


def test_local_mixing_is_causal_starts_as_the_plain_block_and_saves(tmp_path):
    """Primer's causal depthwise convolution before attention: started at zero the network is
    the plain GPT with the same weights; trained (random kernels), the logits of a byte still
    depend on that byte and the ones before only; 3 x width parameters a block; save and load
    (with the squared ReLU) give the same logits."""
    import keras

    from keras_cases.textgen import models

    x = np.random.default_rng(0).integers(0, 256, (2, 16)).astype("int32")
    plain = models.gpt(16, 32, 2, 2, 0.0, input_ngrams=3, buckets=50)
    local = models.gpt(16, 32, 2, 2, 0.0, input_ngrams=3, buckets=50, local=3, activation="relu2")
    assert local.count_params() - plain.count_params() == 2 * 3 * 32
    mixing = [la for la in local.layers if la.name.endswith("_local")]
    assert len(mixing) == 2 and all(not np.any(la.get_weights()[0]) for la in mixing)  # zero at the start
    gelu = models.gpt(16, 32, 2, 2, 0.0, input_ngrams=3, buckets=50, local=3)
    by_name = {la.name: la for la in plain.layers}
    for la in gelu.layers:
        if la.name in by_name and la.get_weights():
            la.set_weights(by_name[la.name].get_weights())
    np.testing.assert_allclose(gelu.predict(x, verbose=0), plain.predict(x, verbose=0), atol=1e-5)
    rng = np.random.default_rng(1)
    for la in mixing:
        la.set_weights([rng.normal(size=la.get_weights()[0].shape)])
    changed = x.copy()
    changed[:, 10:] = (changed[:, 10:] + 1) % 256
    before, after = local.predict(x, verbose=0), local.predict(changed, verbose=0)
    np.testing.assert_allclose(before[:, :10], after[:, :10], atol=1e-5)  # nothing from byte 10 on leaks back
    assert np.abs(before[:, 10:] - after[:, 10:]).max() > 1e-2
    local.save(tmp_path / "local.keras")
    np.testing.assert_allclose(
        keras.saving.load_model(tmp_path / "local.keras").predict(x, verbose=0), before, atol=1e-5
    )
