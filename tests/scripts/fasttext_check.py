"""Run in a subprocess by tests/test_text_cv.py (one backend per process): the fastText family's
layer against its NumPy definition, padding, and that it learns; prints one JSON line. Its
helpers (the tiny split, the bigram keys) are shared with the test file."""

import json
import os
from pathlib import Path

import numpy as np

from keras_cases.data.text import binary_labels, read_tab_file

SHARED_DATA = Path(
    os.environ.get("KERAS_CASES_DATA_DIR") or Path(__file__).resolve().parents[3] / "shared" / "datasets"
)
SPAM_FILE = SHARED_DATA / "sms_spam_collection" / "SMSSpamCollection"


def tiny_split():
    """The first 240 spam and 720 ham messages, every other one for training."""
    texts, labels = read_tab_file(SPAM_FILE, label_first=True)
    y = binary_labels(labels, None, ("spam",))[0]
    idx = np.r_[np.flatnonzero(y == 1)[:240], np.flatnonzero(y == 0)[:720]]
    texts, y = [texts[i] for i in idx], y[idx].astype("float32")
    return (texts[::2], y[::2]), (texts[1::2], y[1::2])


def fasttext_check() -> dict:
    """What `test_fasttext_on_every_backend` asserts, measured on this process's backend."""
    from sklearn.metrics import average_precision_score

    from keras_cases import runtime
    from keras_cases.data.text import Vocabulary
    from keras_cases.text_models.models import compile_model
    from keras_cases.text_models.training import score, train

    runtime.set_threads(1)
    (t_tr, y_tr), (t_va, y_va) = tiny_split()
    vocab = Vocabulary.fit(t_tr, max_len=32)
    x_tr, x_va = vocab.encode(t_tr), vocab.encode(t_va)
    runtime.set_seed(0)
    model = compile_model(build_model("fasttext", len(vocab), vocab.max_len, train_ids=x_tr))
    runtime.init_weights(model, 0)
    emb, (w, b) = model.get_layer("embedding"), model.get_layer("score").get_weights()
    want = [numpy_fasttext(row, emb, len(vocab), w[:, 0], b[0]) for row in x_va[:64]]
    untrained = score(model, x_va)
    i = next(i for i, t in enumerate(t_va) if 3 < len(vocab.ids(t)) < vocab.max_len)  # a padded row
    alone = np.array([vocab.ids(t_va[i])], "int32")
    train(model, x_tr, y_tr, x_va, y_va, epochs=6, batch_size=32, seed=0, verbose=0, objective="f1")
    return {
        "backend": runtime.backend(),
        "layer_vs_numpy": float(np.abs(untrained[:64] - np.asarray(want)).max()),
        "untrained_pr_auc": float(average_precision_score(y_va, untrained)),
        "trained_pr_auc": float(average_precision_score(y_va, score(model, x_va))),
        "padding": float(abs(model.predict(alone, verbose=0)[0, 0] - score(model, x_va[i : i + 1])[0])),
        "n_bigrams": len(emb.bigrams),
        "bigrams_found": float(np.mean([k in set(emb.bigrams) for k in bigram_keys_of(x_tr, len(vocab))])),
    }


def numpy_fasttext(row, emb, vocab_size, w, b) -> float:
    """The untrained fastText model's score of one row of token ids, by its definition: the
    mean over real tokens of the token's row plus its bigram's row (when a training bigram)."""
    table, keys = emb.get_weights()[0], {k: i for i, k in enumerate(emb.bigrams)}
    n, v = int((row > 0).sum()), np.zeros(table.shape[1])
    for t in range(n):
        v += table[row[t]]
        key = row[t] * vocab_size + (row[t + 1] if t + 1 < n else -vocab_size)
        if key in keys:
            v += table[vocab_size + keys[key]]
    return float(1 / (1 + np.exp(-(v / max(n, 1)) @ w - b)))


def bigram_keys_of(ids, vocab_size) -> set:
    """Every pair of adjacent real tokens in `ids`, as NGramEmbedding keys."""
    a, b = np.asarray(ids, "int64")[:, :-1].ravel(), np.asarray(ids, "int64")[:, 1:].ravel()
    return set(((a * vocab_size + b)[(a > 0) & (b > 0)]).tolist())


def build_model(*args, **kwargs):
    from keras_cases.text_models.models import build_model as build

    return build(*args, **kwargs)


if __name__ == "__main__":
    print(json.dumps(fasttext_check()))
