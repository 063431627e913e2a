"""Sentiment: is this sentence or review positive or negative?

The same recurrent, convolutional, attention and fastText networks as the spam case (and the same
TF-IDF + logistic regression reference) on one of:

- `--data sentences`: UCI Sentiment Labelled Sentences, 3,000 one-line reviews from IMDB,
  Amazon and Yelp (500 positive / 500 negative each). Small and real; read with quoting off
  (the IMDB file has stray double quotes).
- `--data imdb`: the 50,000 IMDB movie reviews of `keras.datasets.imdb` (a download of
  about 80 MB). Keras ships them as word ids; they are decoded back to text with the word
  index, so the same tokenizer, vocabulary and `predict` on raw text work. Keras' text is
  lower-cased with punctuation removed, so punctuation in new text is out of vocabulary.
  The 25k/25k halves are pooled and split 60/20/20 like every dataset here.
- `--data auto` (the default): the sentences when they are already on this machine
  ($KERAS_CASES_DATA_DIR or the Keras cache, so CI never downloads), else IMDB.
- `--csv PATH` with `--text-column` / `--label-column` / `--positive`: your own data.

Balanced classes, so the decision threshold is chosen on validation for the best F1.
`--cv K --repeats R`: repeated stratified K-fold over distinct texts (stratified by site and
label on the sentences; one model for all three sites), the family and the ensemble size
chosen per fold on validation, paired against TF-IDF + LR (keras_cases/text_models/crossval.py).

    python -m keras_cases.sentiment --model all --seeds 3
    python -m keras_cases.sentiment --data imdb --model conv1d
    python -m keras_cases.sentiment --data sentences --cv 5 --repeats 2
    python -m keras_cases.sentiment predict --run runs/sentiment/<stamp> "Great food, lousy service."
"""

from __future__ import annotations

import numpy as np

from keras_cases import UserError, cli
from keras_cases.data import REGISTRY, data_dir, keras_cache_dir, locate
from keras_cases.data.text import TextData, binary_labels, clean_rows, decode_imdb, read_tab_file, read_text_csv
from keras_cases.evaluation import parse_objective
from keras_cases.runs import command
from keras_cases.text_models.experiment import QUICK, add_text_flags, run_experiment
from keras_cases.text_models.predict import Predictor, predict_main

CASE = "sentiment"
DEFAULT_OBJECTIVE = "f1"
SITES = {"imdb": "sentiment_imdb", "amazon": "sentiment_amazon", "yelp": "sentiment_yelp"}
LABELS = ("negative", "positive")
TEXT_GUESSES = ("text", "sentence", "review", "content", "body")
LABEL_GUESSES = ("label", "sentiment", "score", "polarity", "class", "target")
POSITIVES = ("positive", "pos", "1", "yes", "true")
QUICK_TEXTS = 5000
IMDB_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"


def sentences_on_disk() -> bool:
    """Are all three sentence files here without a download?"""
    bases = [b for b in (data_dir(), keras_cache_dir()) if b is not None]
    return all(any((b / REGISTRY[k].relpath).is_file() for b in bases) for k in SITES.values())


def load_sentences() -> TextData:
    texts, y, source = [], [], []
    for site, key in SITES.items():
        t, labels = read_tab_file(locate(key), label_first=False)
        bad = sorted(set(labels) - {"0", "1"})
        if bad:
            raise UserError(f"{REGISTRY[key].relpath}: labels must be 0 or 1, found {bad[:3]}")
        texts += t
        y += [int(v) for v in labels]
        source += [site] * len(t)
    return TextData(texts, np.array(y, "int64"), "UCI Sentiment Labelled Sentences (imdb+amazon+yelp)", LABELS, source)


def load_imdb() -> TextData:
    import os

    import keras

    cached = all((keras_cache_dir() / f).is_file() for f in ("imdb.npz", "imdb_word_index.json"))
    if not cached and os.environ.get("KERAS_CASES_OFFLINE") not in (None, "", "0"):
        raise UserError(
            f"IMDB 50k is not in {keras_cache_dir()} and KERAS_CASES_OFFLINE is set: "
            f"download {IMDB_URL} and imdb_word_index.json from the same folder "
            "there, or use --data sentences"
        )
    try:
        (x_tr, y_tr), (x_te, y_te) = keras.datasets.imdb.load_data()
        word_index = keras.datasets.imdb.get_word_index()
    except Exception as e:  # network errors come in many types
        raise UserError(
            f"IMDB 50k could not be loaded ({type(e).__name__}); it downloads {IMDB_URL} and "
            "imdb_word_index.json from the same folder into ~/.keras/datasets/. Offline, use "
            "--data sentences"
        )
    texts = decode_imdb(list(x_tr) + list(x_te), word_index)
    return TextData(
        texts,
        np.concatenate([y_tr, y_te]).astype("int64"),
        "IMDB movie reviews, 50,000 (keras.datasets.imdb, decoded to text)",
        LABELS,
    )


def load_data(data="auto", csv=None, text_column=None, label_column=None, positive=None) -> TextData:
    if csv is not None:
        texts, labels, tcol, lcol = read_text_csv(csv, text_column, label_column, TEXT_GUESSES, LABEL_GUESSES)
        texts, labels = clean_rows(texts, labels, tcol, lcol)
        y, names = binary_labels(labels, positive, POSITIVES, lcol)
        return TextData(texts, y, str(csv), names)
    if data == "auto":
        data = "sentences" if sentences_on_disk() else "imdb"
    return load_sentences() if data == "sentences" else load_imdb()


def quick_sample(data: TextData) -> TextData:
    """--quick on a large dataset (IMDB): a seeded random 5,000 texts; small data is kept whole."""
    if len(data.texts) <= QUICK_TEXTS:
        return data
    keep = np.sort(np.random.default_rng(0).choice(len(data.texts), QUICK_TEXTS, replace=False))
    return TextData(
        [data.texts[i] for i in keep], data.y[keep], f"{data.dataset}, random {QUICK_TEXTS} (--quick)", data.labels
    )


def load_predictor(run_dir) -> Predictor:
    """A saved sentiment run that scores raw text (for `predict` and `python -m keras_cases serve`)."""
    return Predictor(run_dir, CASE)


def make_parser():
    # small models: one thread is fastest on a busy CPU
    p = cli.parser(
        "python -m keras_cases.sentiment", __doc__.split("\n\n")[0], epochs=15, batch_size=64, threads=1, quick=QUICK
    )
    d = p.add_argument_group("data")
    d.add_argument(
        "--data",
        default="auto",
        choices=("auto", "sentences", "imdb"),
        help="auto: the UCI sentences when on disk, else IMDB 50k",
    )
    d.add_argument("--csv", default=None, help="a CSV of your own (overrides --data)")
    d.add_argument("--text-column", default=None, help="CSV column holding the text")
    d.add_argument("--label-column", default=None, help="CSV column holding the label")
    d.add_argument("--positive", default=None, help="the label meaning positive (default: positive/pos/1/yes)")
    return add_text_flags(p, DEFAULT_OBJECTIVE)


@command
def main(argv=None):
    import sys

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "predict":
        return predict_main(CASE, argv[1:])
    args = make_parser().parse_args(argv)
    parse_objective(args.objective)  # a bad --objective is refused before any data loads
    data = load_data(args.data, args.csv, args.text_column, args.label_column, args.positive)
    if args.quick:
        data = quick_sample(data)
    blurb = (
        f"The recurrent, convolutional, attention and fastText networks of the spam case against "
        f"TF-IDF + logistic regression on {data.dataset}. Each model's decision threshold "
        f"is chosen on validation for `{args.objective}`; the best network by validation "
        "PR-AUC; the test set is touched once."
    )
    run_experiment(CASE, "Sentiment", data, args, blurb)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
