"""Encodings of numeric columns for MLPs on tabular data, each fit on the training rows only.

Gorishniy et al. (2022), "On Embeddings for Numerical Features in Tabular Deep Learning",
found that how an MLP sees a numeric feature matters as much as the architecture: a
monotone transform that evens out skew, or a piecewise-linear encoding (PLE) that gives the
network one coordinate per quantile bin, lets a plain MLP fit shapes it would need many
units to learn from the raw value.

- `plain`     the columns as they are (standardised later with the rest)
- `log1p`     log(1 + x) of the non-negative continuous columns
- `quantile`  each continuous column mapped through its training quantiles to a standard
              normal (scikit-learn's QuantileTransformer)
- `ple`       piecewise-linear encoding: bin edges at the training quantiles; coordinate t is
              0 below bin t, 1 above it, and the position inside it in between (the first
              and last coordinates are left unclipped outwards, as in the paper)

Every function takes the whole frame and the positions of the training rows, and returns a
new frame; the other columns pass through unchanged. `ENCODINGS` maps the names to them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_DISTINCT = 10  # a numeric column with fewer distinct training values is treated as categorical-like


def continuous_columns(frame: pd.DataFrame, train_rows, nonnegative: bool = False) -> list[str]:
    """Numeric columns with at least MIN_DISTINCT distinct values on the training rows."""
    train = frame.iloc[np.asarray(train_rows)]
    cols = []
    for c in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]):
            values = train[c].dropna()
            if values.nunique() >= MIN_DISTINCT and (not nonnegative or values.min() >= 0):
                cols.append(c)
    return cols


def plain(frame: pd.DataFrame, train_rows) -> pd.DataFrame:
    return frame.copy()


def log1p(frame: pd.DataFrame, train_rows) -> pd.DataFrame:
    out = frame.copy()
    for c in continuous_columns(frame, train_rows, nonnegative=True):
        out[c] = np.log1p(frame[c].clip(lower=0))
    return out


def quantile(frame: pd.DataFrame, train_rows) -> pd.DataFrame:
    from sklearn.preprocessing import QuantileTransformer

    out = frame.copy()
    cols = continuous_columns(frame, train_rows)
    if cols:
        train = frame.iloc[np.asarray(train_rows)][cols]
        qt = QuantileTransformer(n_quantiles=min(1000, len(train)), output_distribution="normal", random_state=0)
        qt.fit(train.fillna(train.median()))
        filled = frame[cols].fillna(train.median())
        out[cols] = qt.transform(filled)
    return out


def ple_edges(values, n_bins: int) -> np.ndarray:
    """Bin edges at the quantiles of `values` (repeated edges dropped): at most n_bins bins."""
    v = np.asarray(values, "float64")
    v = v[np.isfinite(v)]
    return np.unique(np.quantile(v, np.linspace(0, 1, n_bins + 1)))


def ple_encode(x, edges: np.ndarray) -> np.ndarray:
    """(n, bins) piecewise-linear codes of `x` for the bin `edges` (len bins + 1)."""
    x = np.asarray(x, "float64")[:, None]
    lo, hi = edges[:-1][None], edges[1:][None]
    t = (x - lo) / (hi - lo)
    codes = np.clip(t, 0, 1)
    codes[:, :1] = np.minimum(t[:, :1], 1)  # below the first edge: negative, not clipped
    codes[:, -1:] = np.maximum(t[:, -1:], 0)  # above the last edge: beyond 1
    if codes.shape[1] == 1:
        codes = t
    return codes


def ple(frame: pd.DataFrame, train_rows, n_bins: int = 16) -> pd.DataFrame:
    """Each continuous column replaced by its PLE coordinates `<column>_ple<t>`."""
    out = frame.copy()
    train = frame.iloc[np.asarray(train_rows)]
    for c in continuous_columns(frame, train_rows):
        edges = ple_edges(train[c], n_bins)
        if len(edges) < 2:
            continue
        filled = frame[c].fillna(train[c].median())
        codes = ple_encode(filled, edges)
        at = out.columns.get_loc(c)
        out = out.drop(columns=[c])
        for t in range(codes.shape[1]):
            out.insert(at + t, f"{c}_ple{t}", codes[:, t])
    return out


ENCODINGS = {"plain": plain, "log1p": log1p, "quantile": quantile, "ple": ple}
