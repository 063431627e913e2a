"""Windows, the chronological split and train-only scaling, and the pooled windows of every
series that one global model trains on. No Keras."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_cases import UserError
from keras_cases.forecast.baselines import forecast_metrics, mase_scale
from keras_cases.forecast.data import Series, default_geometry, future_columns

VAL_FRACTION, TEST_FRACTION = 0.15, 0.15
PARTS = ("train", "val", "test")


@dataclass
class Split:
    train_end: int  # rows [0, train_end) are training rows
    val_end: int  # rows [train_end, val_end) validation, [val_end, n) test
    n: int


def chronological_split(n: int, val=VAL_FRACTION, test=TEST_FRACTION) -> Split:
    return Split(int(round(n * (1 - val - test))), int(round(n * (1 - test))), n)


def window_starts(split: Split, part: str, lookback: int, horizon: int, stride: int = 1) -> np.ndarray:
    """First target index t of every window whose targets [t, t + horizon) lie wholly in
    `part`; its inputs are rows [t - lookback, t), which may reach into earlier parts."""
    lo, hi = {"train": (0, split.train_end), "val": (split.train_end, split.val_end), "test": (split.val_end, split.n)}[
        part
    ]
    first = max(lo, lookback)
    return np.arange(first, hi - horizon + 1, stride)


def make_windows(values, target, starts, lookback: int, horizon: int):
    """x: (len(starts), lookback, n_features) inputs, y: (len(starts), horizon) targets."""
    values, target = np.asarray(values), np.asarray(target)
    if values.ndim == 1:
        values = values[:, None]
    starts = np.asarray(starts, dtype="int64")
    xv = np.lib.stride_tricks.sliding_window_view(values, lookback, axis=0)  # (n-L+1, F, L)
    yv = np.lib.stride_tricks.sliding_window_view(target, horizon)
    return np.ascontiguousarray(xv[starts - lookback].transpose(0, 2, 1)), np.ascontiguousarray(yv[starts])


@dataclass
class Scaler:
    mean: np.ndarray
    std: np.ndarray

    def transform(self, v):
        return (v - self.mean) / self.std

    def inverse_target(self, y):
        return y * self.std[0] + self.mean[0]


def fit_scaler(values, train_end: int) -> Scaler:
    """Per-column mean and std of the training rows only (constant columns: std 1)."""
    v = np.asarray(values, "float64")[:train_end]
    std = v.std(axis=0)
    return Scaler(v.mean(axis=0), np.where(std > 1e-12, std, 1.0))


def with_future(x, values, starts, horizon: int, known: list[int]) -> np.ndarray:
    """The window (lookback, F) followed by the `horizon` forecast steps: there only the
    `known` columns hold their (scaled) values, the others (the target first) are 0, the
    training mean. x: (n, lookback + horizon, F); with no known column, x unchanged."""
    if not known:
        return x
    ahead = np.lib.stride_tricks.sliding_window_view(values, horizon, axis=0)[np.asarray(starts)].transpose(0, 2, 1)
    mask = np.zeros(values.shape[1], "float32")
    mask[known] = 1.0
    return np.concatenate([x, ahead * mask], axis=1)


def prepare(series: Series, args):
    """Windows of every split, scaled with training statistics, with the forecast steps'
    known columns appended (`with_future`); raises UserError if short."""
    lookback, horizon, season = default_geometry(series.step)
    lookback, horizon, season = args.lookback or lookback, args.horizon or horizon, args.season or season
    split = chronological_split(len(series.values))
    starts = {
        p: window_starts(split, p, lookback, horizon, args.stride if p == "train" else args.eval_stride)
        for p in ("train", "val", "test")
    }
    need = int(np.ceil((max(lookback, season) + horizon + 4 * args.eval_stride) / min(VAL_FRACTION, TEST_FRACTION)))
    if any(len(s) < 4 for s in starts.values()) or split.train_end <= season or starts["val"][0] < season:
        raise UserError(
            f"the series has {len(series.values)} rows: too short for a {lookback}-step lookback, "
            f"{horizon}-step horizon and {season}-step season (needs about {need} rows; "
            "try smaller --lookback / --horizon / --season)"
        )
    scaler = fit_scaler(series.values, split.train_end)
    scaled = scaler.transform(series.values).astype("float32")
    future = future_columns(series, getattr(args, "future", None))
    known = [series.columns.index(c) for c in future]
    win = {}
    for p, s in starts.items():
        x, y = make_windows(scaled, scaled[:, 0], s, lookback, horizon)
        win[p] = (with_future(x, scaled, s, horizon, known), y)
    return dict(
        lookback=lookback,
        horizon=horizon,
        season=season,
        split=split,
        starts=starts,
        scaler=scaler,
        windows=win,
        future=future,
    )


class Pooled:
    """Every series' windows, split and scaled by its own training rows, pooled for one
    global model; the truth, MASE scale and scoring of each series."""

    def __init__(self, series: list[Series], preps: list[dict]):
        self.series, self.preps = series, preps
        self.names = [s.key or s.columns[0] for s in series]
        self.lookback, self.horizon, self.season = (preps[0][k] for k in ("lookback", "horizon", "season"))
        self.future = preps[0]["future"]  # the columns known over the horizon (in every window)
        L, H = self.lookback, self.horizon
        self.targets = [s.target for s in series]
        self.starts = [p["starts"] for p in preps]
        self.truth = [
            {p: make_windows(y[:, None], y, st[p], L, H)[1] for p in ("val", "test")}
            for y, st in zip(self.targets, self.starts)
        ]
        self.scales = [mase_scale(y, p["split"].train_end, self.season) for y, p in zip(self.targets, preps)]
        self.counts = {p: sum(len(st[p]) for st in self.starts) for p in PARTS}
        pool = lambda p: tuple(np.concatenate([pr["windows"][p][i] for pr in preps]) for i in (0, 1))  # noqa: E731
        self.train, self.val = pool("train"), pool("val")  # (x, y): the windows of every series

    def per_series(self, predict) -> list[dict]:
        """[{"val": forecast, "test": forecast} in target units, one per series] from a
        function of scaled windows."""
        return [
            {p: pr["scaler"].inverse_target(predict(pr["windows"][p][0])) for p in ("val", "test")} for pr in self.preps
        ]

    def scores(self, forecasts) -> tuple[dict, list[dict]]:
        """Per-series metrics and their mean over series (MASE is unit-free; MAE and RMSE
        of several series are means of values in each series' own units)."""
        each = [
            {f"{p}_{k}": v for p in ("val", "test") for k, v in forecast_metrics(tr[p], f[p], sc).items()}
            for tr, f, sc in zip(self.truth, forecasts, self.scales)
        ]
        return {k: float(np.mean([e[k] for e in each])) for k in each[0]}, each
