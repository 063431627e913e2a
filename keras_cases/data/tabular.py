"""Tabular data: reading a user's CSV, inferring feature types, and a preprocessor that is
fit on the training split only and saved as JSON next to the model.

Only NumPy and pandas here (no framework), so a saved run predicts on raw rows with any
backend installed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from keras_cases import UserError

POSITIVE_LABELS = ("yes", "true", "1", "1.0", "y", "t")
MISSING = "<missing>"


def snake_case(name: str) -> str:
    """`customerID` -> `customer_id`, `StreamingTV` -> `streaming_tv`, `Total Charges` -> `total_charges`."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).strip())
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return re.sub(r"[^0-9a-zA-Z]+", "_", s).strip("_").lower()


def read_csv(path) -> pd.DataFrame:
    """Read a CSV the user points at; every way it can fail is one clear UserError."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"CSV file not found: {p}")
    if p.is_dir():
        raise UserError(f"{p} is a directory, not a CSV file")
    if p.stat().st_size == 0:
        raise UserError(f"{p} is empty")
    try:
        df = pd.read_csv(p, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise UserError(f"{p} holds no data")
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UserError(f"{p} could not be read as CSV: {str(e).splitlines()[0]}")
    if len(df) == 0:
        raise UserError(f"{p} has a header but no rows")
    for name in df.columns[[pd.api.types.is_float_dtype(t) for t in df.dtypes]]:
        inf = np.isinf(df[name].to_numpy())
        if inf.any():
            row = int(np.flatnonzero(inf)[0])
            raise UserError(
                f"{p}: column {str(name)!r} holds an infinite or too large number "
                f"(data row {row + 1}: {df[name].iloc[row]}); fix or blank it"
            )
    return df


def normalize_columns(df: pd.DataFrame) -> pd.DataFrame:
    names = [snake_case(c) for c in df.columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"columns collide after normalising names: {', '.join(dupes)}")
    return df.set_axis(names, axis=1)


def find_column(df: pd.DataFrame, name: str, what: str = "target") -> str:
    key = snake_case(name)
    if key in df.columns:
        return key
    raise UserError(f"no {what} column {name!r} in the data; columns are: {', '.join(map(str, df.columns))}")


def binary_target(values: pd.Series, positive: str | None = None) -> np.ndarray:
    """Map a label column to 0/1; `positive` names the positive value (default Yes/1/True)."""
    text = values.astype(str).str.strip().str.lower()
    pos = {str(positive).strip().lower()} if positive is not None else set(POSITIVE_LABELS)
    classes = sorted(text.unique())
    if len(classes) < 2:
        raise UserError(
            f"target column {values.name!r} has only one class ({classes[0] if classes else 'none'}); "
            "a classifier needs both"
        )
    if len(classes) > 2:
        shown = ", ".join(classes[:6]) + (" ..." if len(classes) > 6 else "")
        raise UserError(f"target column {values.name!r} has {len(classes)} classes ({shown}); churn needs 2")
    if not pos & set(classes):
        raise UserError(
            f"none of the target values {classes} is a positive label "
            f"({', '.join(sorted(pos))}); say which one with --positive VALUE"
        )
    return text.isin(pos).to_numpy().astype("int64")


def is_id_column(name: str, col: pd.Series) -> bool:
    if name in ("rownames", "index", "unnamed_0") or re.search(r"(^|_)id$", name):
        return True
    textual = col.dtype == object or pd.api.types.is_string_dtype(col)
    return textual and len(col) > 20 and col.nunique() == len(col)


def _as_numeric(name: str, col: pd.Series) -> pd.Series | None:
    """The column as numbers if it is numeric (blanks become NaN), else None.

    A text column whose values are nearly all numbers but for a few is taken as a numeric
    column with bad entries, and reported, rather than silently turned into categories.
    """
    if pd.api.types.is_bool_dtype(col):
        return col.astype("float64")
    if pd.api.types.is_numeric_dtype(col):
        return col.astype("float64")
    text = col.astype("string").str.strip()
    text = text.mask(text == "")
    lowered = text.str.lower()
    if lowered.dropna().isin(["yes", "no"]).all() and lowered.notna().any():
        return (lowered == "yes").astype("float64").mask(lowered.isna())
    parsed = pd.to_numeric(text, errors="coerce")
    present = text.notna()
    bad = present & parsed.isna()
    if present.sum() == 0 or parsed.notna().sum() < 0.9 * present.sum():
        return None
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        label = col.index[row]
        where = f"data row {label + 1}" if isinstance(label, (int, np.integer)) else f"row {label!r}"
        raise UserError(
            f"column {name!r} is numeric but {where} holds {str(text.iloc[row])!r} "
            f"({int(bad.sum())} such value(s)); fix or blank them"
        )
    return parsed.astype("float64")


class TabularPreprocessor:
    """Impute + standardise numeric columns, one-hot categorical ones; state is JSON."""

    def __init__(self, numeric=None, categorical=None, dropped=None):
        self.numeric = numeric or {}  # name -> {"median", "mean", "std"}
        self.categorical = categorical or {}  # name -> [categories]
        self.dropped = dropped or []

    # -- fitting -----------------------------------------------------------------------
    @classmethod
    def infer_and_fit(cls, X: pd.DataFrame, max_categories: int = 50):
        pre = cls()
        for name in X.columns:
            col = X[name]
            if is_id_column(name, col):
                pre.dropped.append(name)
                continue
            num = _as_numeric(name, col)
            if num is not None:
                if num.notna().sum() == 0:
                    pre.dropped.append(name)
                    continue
                med = float(num.median())
                filled = num.fillna(med)
                std = float(filled.std(ddof=0)) or 1.0
                pre.numeric[name] = {"median": med, "mean": float(filled.mean()), "std": std}
            else:
                counts = col.astype("string").str.strip().fillna(MISSING).value_counts()
                pre.categorical[name] = sorted(counts.index[:max_categories].tolist())
        if not pre.numeric and not pre.categorical:
            raise UserError("no usable feature columns are left after dropping id columns")
        return pre

    # -- applying ----------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        names = list(self.numeric)
        for c, cats in self.categorical.items():
            names += [f"{c}={v}" for v in cats]
        return names

    @property
    def columns(self) -> list[str]:
        return list(self.numeric) + list(self.categorical)

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise UserError(f"the data lacks column(s) the model was trained on: {', '.join(missing)}")
        parts = []
        for name, s in self.numeric.items():
            num = _as_numeric(name, X[name])
            if num is None:
                raise UserError(f"column {name!r} should be numeric but holds text")
            parts.append(((num.fillna(s["median"]) - s["mean"]) / s["std"]).to_numpy()[:, None])
        for name, cats in self.categorical.items():
            text = X[name].astype("string").str.strip().fillna(MISSING).to_numpy()
            parts.append((text[:, None] == np.asarray(cats, dtype=object)[None, :]).astype("float64"))
        return np.concatenate(parts, axis=1).astype("float32")

    # -- saving ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical, "dropped": self.dropped}

    @classmethod
    def from_dict(cls, d: dict):
        return cls(d["numeric"], d["categorical"], d.get("dropped", []))

    def save(self, path, **extra):
        Path(path).write_text(json.dumps({**self.to_dict(), **extra}, indent=2))

    @classmethod
    def load(cls, path):
        """(the preprocessor saved at `path`, the whole saved dict); a corrupt or incomplete
        file is a UserError that says what is wrong with it."""
        from keras_cases.runs import read_json

        d = read_json(path)
        problem = _state_problem(d)
        if problem:
            raise UserError(f"{path} is not a saved preprocessor: {problem}")
        return cls.from_dict(d), d


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def _state_problem(d: dict) -> str | None:
    """What is wrong with a saved preprocessor state (None: nothing)."""
    num, cat, dropped = d.get("numeric"), d.get("categorical"), d.get("dropped", [])
    if not isinstance(num, dict) or not isinstance(cat, dict):
        return 'it lacks the "numeric" and "categorical" column tables'
    if not num and not cat:
        return "it has no feature columns"
    for name, s in num.items():
        stats = [s.get(k) for k in ("median", "mean", "std")] if isinstance(s, dict) else [None]
        if not all(_finite(v) for v in stats) or stats[2] == 0:
            return f'numeric column {name!r} lacks a finite "median", "mean" and non-zero "std"'
    for name, cats in cat.items():
        if not isinstance(cats, list) or not cats or not all(isinstance(c, str) for c in cats):
            return f"categorical column {name!r} has no list of category names"
    if not isinstance(dropped, list):
        return '"dropped" is not a list'
    return None
