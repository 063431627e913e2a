"""The yardsticks: seasonal naive (a day and a week back), Ridge on the lag window, and the
metrics every forecast is scored with (MAE, RMSE, MASE). No Keras."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from keras_cases import UserError


def seasonal_naive(target, starts, horizon: int, season: int) -> np.ndarray:
    """Forecast y[t + h] by y[t + h - k * season], the latest value one season earlier that
    is already observed at the forecast origin t (k = 1 whenever horizon <= season)."""
    target = np.asarray(target)
    h = np.arange(horizon)
    lag = season * np.ceil((h + 1) / season).astype(int)
    idx = np.asarray(starts)[:, None] + h[None, :] - lag[None, :]
    if idx.min() < 0:
        raise UserError(f"seasonal naive needs {season} steps of history before the first forecast")
    return target[idx]


def mase_scale(target, train_end: int, season: int) -> float:
    """In-sample MAE of the one-season-back naive forecast on the training rows."""
    y = np.asarray(target, "float64")[:train_end]
    if len(y) <= season:
        raise UserError(f"the training split ({len(y)} rows) is shorter than one season ({season} steps)")
    scale = float(np.mean(np.abs(y[season:] - y[:-season])))
    if not scale > 0:
        raise UserError(
            f"the target repeats exactly every {season} steps in the training split (constant, "
            "or perfectly seasonal), so there is nothing to forecast and MASE is undefined"
        )
    return scale


def forecast_metrics(y_true, y_pred, scale: float) -> dict:
    err = np.asarray(y_pred, "float64") - np.asarray(y_true, "float64")
    mae = float(np.mean(np.abs(err)))
    return {"mae": mae, "rmse": float(np.sqrt(np.mean(err**2))), "mase": mae / scale}


RIDGE_ALPHA = 1.0


def fit_ridge(x_tr, y_tr, alpha=RIDGE_ALPHA):
    """scikit-learn Ridge on the flattened windows (steps x features) -> the horizon."""
    from sklearn.linear_model import Ridge

    with warnings.catch_warnings():  # lag windows are collinear by nature; alpha handles it
        warnings.simplefilter("ignore")
        return Ridge(alpha=alpha).fit(x_tr.reshape(len(x_tr), -1), y_tr)


def ridge_forecaster(x_tr, y_tr, alpha=RIDGE_ALPHA):
    model = fit_ridge(x_tr, y_tr, alpha)
    return lambda x: model.predict(x.reshape(len(x), -1))


def baseline_forecasts(pooled) -> dict:
    """{name: [{"val": forecast, "test": forecast} per series]} of the baselines: the value a
    day back (sub-daily data whose season is not a day), one season back, and Ridge on the
    networks' inputs (and, where these include the horizon's known columns, `ridge_lags` on
    the lag window alone)."""
    preds = {}
    step, H, m = pooled.series[0].step, pooled.horizon, pooled.season
    per_day = int(round(pd.Timedelta(days=1) / step)) if step < pd.Timedelta(days=1) else None
    pairs = list(zip(pooled.targets, pooled.starts))
    if per_day and per_day != m:
        preds["naive_day"] = [{p: seasonal_naive(y, st[p], H, per_day) for p in ("val", "test")} for y, st in pairs]
    preds["seasonal_naive"] = [{p: seasonal_naive(y, st[p], H, m) for p in ("val", "test")} for y, st in pairs]
    if pooled.future:  # Ridge on the lag window alone, beside Ridge on every input the networks get
        lags = lambda x: x[:, : pooled.lookback]  # noqa: E731
        lagged = ridge_forecaster(lags(pooled.train[0]), pooled.train[1])
        preds["ridge_lags"] = pooled.per_series(lambda x: lagged(lags(x)))
    preds["ridge"] = pooled.per_series(ridge_forecaster(*pooled.train))
    return preds
