"""Electricity demand forecasting: the next day, half-hour by half-hour.

- `data`       the series: elecdemand or the user's CSV (one or several series), calendar
               features, the default window geometry (no Keras import)
- `windows`    windows, the chronological split, train-only scaling, the pooled windows
               one global model trains on (no Keras import)
- `baselines`  seasonal naive, Ridge on the lag window, MAE / RMSE / MASE (no Keras import)
- `models`     the LSTM, Conv1D and Transformer forecasters, the linear family (DLinear,
               N-BEATS, the linear skip) and their training
- `report`     metrics.json's numbers, tables, scaler.json, the forecast plot, the report text
- `case`       the case study: `python -m keras_cases.forecast` (see its docstring)

Importing this package does not import Keras. `forecast.build_model`, `forecast.main` and
the other names of the former single module still resolve (lazily, on first use).
"""

import importlib

# the names of the former single module, by the submodule that now holds them
_NAMES = {
    "data": ("Series", "calendar_features", "make_series", "load_elecdemand", "load_csv", "default_geometry"),
    "windows": (
        "VAL_FRACTION",
        "TEST_FRACTION",
        "Split",
        "chronological_split",
        "window_starts",
        "make_windows",
        "Scaler",
        "fit_scaler",
        "prepare",
    ),
    "baselines": ("seasonal_naive", "mase_scale", "forecast_metrics", "ridge_forecaster"),
    "models": ("MODELS", "build_model", "train"),
    "case": ("CASE", "make_parser", "main"),
}
_WHERE = {name: module for module, names in _NAMES.items() for name in names}


def __getattr__(name: str):
    """`forecast.build_model` and the like (tests/test_layers.py): the submodule that defines
    it is imported on first use, so importing the package alone does not import Keras."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
