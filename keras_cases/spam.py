"""SMS spam: catch spam without losing real messages.

The SMS Spam Collection (UCI, 5,574 messages, 13.4% spam), or your own CSV. Recurrent
(LSTM, GRU, bidirectional LSTM), convolutional (Conv1D + global max pooling), attention
(a small Transformer encoder) and bag-of-n-grams (fastText: word and bigram embeddings
averaged) networks against a TF-IDF + logistic regression reference,
on one stratified train/validation/test split (a repeated message stays in one split).
The tokenizer and vocabulary live outside the model, fit on training messages only, and
are saved as vocab.json next to it, so a saved run scores raw text. The loss is
class-weighted; each model's decision threshold is chosen on validation for a stated
objective (default: precision at least 0.98, as much recall as that allows); the best
network is chosen by validation PR-AUC; the test set is touched once. `--cv K --repeats R`
replaces the one split by repeated stratified K-fold over distinct messages, where each
fold's validation part also chooses the family (a character n-gram CNN among them) and the
ensemble size, with paired intervals against TF-IDF + LR (keras_cases/text_models/crossval.py).

    KERAS_BACKEND=jax python -m keras_cases.spam                # every model
    python -m keras_cases.spam --model conv1d --seeds 3
    python -m keras_cases.spam --cv 5 --repeats 1             # the claim: paired, on folds
    python -m keras_cases.spam --csv spam.csv --text-column v2 --label-column v1
    python -m keras_cases.spam predict --run runs/spam/<stamp> "Free entry! Text WIN to 80086"
"""

from __future__ import annotations

from keras_cases import cli
from keras_cases.data import locate
from keras_cases.data.text import TextData, binary_labels, clean_rows, read_tab_file, read_text_csv
from keras_cases.evaluation import parse_objective
from keras_cases.runs import command
from keras_cases.text_models.experiment import QUICK, add_text_flags, run_experiment
from keras_cases.text_models.predict import Predictor, predict_main

CASE = "spam"
DEFAULT_OBJECTIVE = "precision>=0.98"
TEXT_GUESSES = ("text", "message", "sms", "v2", "body", "content")
LABEL_GUESSES = ("label", "v1", "class", "category", "target", "spam", "type")
POSITIVES = ("spam", "1", "yes", "true")


def load_data(data=None, csv=None, text_column=None, label_column=None, positive=None) -> TextData:
    """The UCI collection (or a file in its `label<TAB>text` layout via `data`), or a CSV:
    the Kaggle spam.csv (latin-1, v1/v2 columns) is read without naming columns."""
    if csv is not None:
        texts, labels, tcol, lcol = read_text_csv(csv, text_column, label_column, TEXT_GUESSES, LABEL_GUESSES)
        name = str(csv)
    else:
        path = locate("sms_spam", data)
        texts, labels = read_tab_file(path, label_first=True)
        tcol, lcol, name = "text", "label", "SMS Spam Collection v.1 (UCI)" if data is None else str(data)
    texts, labels = clean_rows(texts, labels, tcol, lcol)
    y, names = binary_labels(labels, positive, POSITIVES, lcol)
    return TextData(texts, y, name, names)


def load_predictor(run_dir) -> Predictor:
    """A saved spam run that scores raw messages (for `predict` and `python -m keras_cases serve`)."""
    return Predictor(run_dir, CASE)


def make_parser():
    # small models: one thread is fastest on a busy CPU (torch: 12x)
    p = cli.parser(
        "python -m keras_cases.spam", __doc__.split("\n\n")[0], epochs=15, batch_size=64, threads=1, quick=QUICK
    )
    d = p.add_argument_group("data")
    d.add_argument(
        "--data",
        default=None,
        help="a file in the SMSSpamCollection layout (label<TAB>text); default: the "
        "UCI collection ($KERAS_CASES_DATA_DIR, Keras cache, or download)",
    )
    d.add_argument("--csv", default=None, help="a CSV of your own (or Kaggle's spam.csv)")
    d.add_argument("--text-column", default=None, help="CSV column holding the message text")
    d.add_argument("--label-column", default=None, help="CSV column holding the label")
    d.add_argument("--positive", default=None, help="the label meaning spam (default: spam/1/yes)")
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
    run_experiment(CASE, "SMS spam", data, args, __doc__.split("\n\n")[1].replace("\n", " "))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
