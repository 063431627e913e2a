"""Text classifiers shared by the spam and sentiment cases, and the experiment they run.

- `models`      the masking layers (padding never decides an output), the six network
                families (`build_lstm`, `build_gru`, `build_bilstm`, `build_conv1d`,
                `build_transformer`, the bag of n-grams `build_fasttext` with its
                `NGramEmbedding`, behind `build_model`), the character CNN
                `build_char_cnn`, `compile_model`, and the
                TF-IDF + logistic regression reference `build_tfidf`
- `training`    `train` (seeded NumPy weights and batches, class weights, early stopping on
                validation PR-AUC, the threshold chosen on validation), `score`, `evaluate`
- `experiment`  the flags both cases share and `run_experiment`: split, vocabulary, the
                reference and every network over seeds, ending in `run.finish`
- `crossval`    `--cv K --repeats R`: folds over distinct texts, the family and the ensemble
                size chosen per fold on validation, paired intervals against TF-IDF + LR
- `chars`       UTF-8 byte ids for the character n-gram CNN (`build_char_cnn`)
- `report`      the run's artifacts (models, scores, misclassified texts, plots) and the
                report's sections
- `predict`     `Predictor` (a saved run scoring raw text, for `predict` and `serve`) and
                the `predict` command

Importing this package does not import Keras: the names below are loaded from their
module when first used (`text_models.build_model`, `from keras_cases.text_models import
train`), so code written against the single-file text_models keeps working.
"""

from __future__ import annotations

import importlib

NEURAL = ("lstm", "gru", "bilstm", "conv1d", "transformer", "fasttext")
TFIDF = "tfidf_logreg"
REPORTED = ("accuracy", "precision", "recall", "f1", "pr_auc", "roc_auc", "threshold")
SPLIT_SEED = 2024  # the split is fixed; --seed varies weights, batches and dropout

_WHERE = {
    "models": (
        "MaskedConv1D",
        "MaskedGlobalPooling1D",
        "PaddingMask",
        "build_lstm",
        "build_gru",
        "build_bilstm",
        "build_conv1d",
        "build_transformer",
        "build_fasttext",
        "NGramEmbedding",
        "bigram_keys",
        "build_char_cnn",
        "encoder_block",
        "build_model",
        "compile_model",
        "build_tfidf",
    ),
    "training": ("EVAL_BATCH", "pad_rows", "score", "ValidationScorer", "train", "evaluate", "class_weights"),
    "experiment": ("add_text_flags", "run_experiment"),
    "crossval": ("cross_validate", "text_folds", "fold_scores"),
    "report": ("write_artifacts", "summary_line", "sections"),
    "predict": ("Predictor", "predict_main"),
}
_MODULE = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name):
    if name in _MODULE:
        return getattr(importlib.import_module(f"{__name__}.{_MODULE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_MODULE])
