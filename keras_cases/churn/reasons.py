"""Why a churn model scores customers as it does, at the level of the raw columns:

- per customer: integrated gradients (keras_cases.explain) of the churn probability from a
  baseline customer, every numeric column at its training median and every categorical one at
  its training mode, the one-hot features summed back to their column. That customer is a
  real point of the data (the all-zero encoded row is a customer with the mean of every number
  and no category at all), so an attribution reads "this column moved the probability this
  much away from a typical customer's"; a customer's attributions add up to p - p(baseline).
- globally: permutation importance on the validation rows (scikit-learn's
  `permutation_importance` through `ProbabilityModel`, a thin estimator around any scoring
  function): how much ROC-AUC drops when one raw column's values are shuffled across customers.
- the logistic-regression reference's coefficients, per raw column.

No Keras import here: the model is only called through keras_cases.explain and the `score`
functions the caller passes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

IG_STEPS = 256  # Gauss-Legendre nodes; on a quick run the sums miss p - p(baseline) by <0.002 (64: 0.008)


def training_modes(frame: pd.DataFrame, pre) -> dict:
    """The most frequent value of every categorical column on the (training) rows `frame`."""
    return {c: str(frame[c].mode().iloc[0]) for c in pre.categorical}


def baseline_row(pre, modes: dict) -> np.ndarray:
    """The encoded baseline customer: numeric columns at their training median, categorical
    ones at their mode (`modes`; a column without one gets no category)."""
    parts = [np.array([(s["median"] - s["mean"]) / s["std"]]) for s in pre.numeric.values()]
    parts += [np.array([c == modes.get(name) for c in cats], float) for name, cats in pre.categorical.items()]
    return np.concatenate(parts).astype("float32")


def column_matrix(pre) -> np.ndarray:
    """(encoded features, raw columns) 0/1: which raw column each feature comes from, so
    `attributions @ column_matrix(pre)` sums the one-hot features back to their column."""
    sizes = [1] * len(pre.numeric) + [len(cats) for cats in pre.categorical.values()]
    return np.repeat(np.eye(len(sizes), dtype="float32"), sizes, axis=0)


def column_attributions(model, pre, x, baseline, steps: int = IG_STEPS) -> tuple[np.ndarray, float]:
    """(attributions (rows, raw columns `pre.columns`) to the churn probability, the baseline's
    probability): integrated gradients of the encoded rows `x` from `baseline`."""
    from keras_cases import explain

    attr = explain.integrated_gradients(model, x, baseline=baseline, steps=steps, batch_size=steps * 256)
    p0 = float(explain.scores(model, baseline[None])[0])
    return (attr @ column_matrix(pre)).astype("float64"), p0


def top_reasons(attr: np.ndarray, frame: pd.DataFrame, columns, k: int = 3) -> pd.DataFrame:
    """The k columns of largest |attribution| per row, as `column=value (+0.123)` in columns
    reason_1..reason_k (index of `frame`)."""
    out = {f"reason_{r + 1}": [] for r in range(min(k, len(columns)))}
    for i, row in enumerate(attr):
        for r, j in enumerate(np.argsort(-np.abs(row), kind="stable")[: len(out)]):
            out[f"reason_{r + 1}"].append(f"{columns[j]}={frame[columns[j]].iloc[i]} ({row[j]:+.3f})")
    return pd.DataFrame(out, index=frame.index)


class ProbabilityModel:
    """scikit-learn's view of a fitted binary scorer: `predict_proba(frame)` from
    `score(frame) -> P(positive)`, so `permutation_importance` can shuffle raw columns (a
    categorical column's one-hot features move together) and score ROC-AUC."""

    _estimator_type = "classifier"

    def __init__(self, score):
        self.score = score
        self.classes_ = np.array([0, 1])

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier", target_tags=TargetTags(required=True), classifier_tags=ClassifierTags()
        )

    def fit(self, X=None, y=None):
        return self

    def predict_proba(self, X) -> np.ndarray:
        p = np.asarray(self.score(X), "float64").ravel()
        return np.column_stack([1 - p, p])


def permutation_importance(score, frame: pd.DataFrame, y, repeats: int = 10, seed: int = 0) -> pd.DataFrame:
    """Drop of ROC-AUC when each column of `frame` is shuffled (`repeats` times): one row per
    column, mean and std over the repeats, most important first."""
    from sklearn import inspection

    r = inspection.permutation_importance(
        ProbabilityModel(score), frame, np.asarray(y), scoring="roc_auc", n_repeats=repeats, random_state=seed
    )
    out = pd.DataFrame({"column": list(frame.columns), "mean": r.importances_mean, "std": r.importances_std})
    return out.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)


def lr_coefficients(lr, pre) -> dict:
    """The logistic regression's coefficients per raw column (its features are the encoded
    ones): a numeric column's coefficient per standard deviation; for a categorical column its
    lowest and highest category (only differences between categories mean something)."""
    coef, out, j = np.ravel(lr.coef_), {}, 0
    for c in pre.numeric:
        out[c] = f"{coef[j]:+.3f} per std"
        j += 1
    for c, cats in pre.categorical.items():
        w = coef[j : j + len(cats)]
        lo, hi = int(np.argmin(w)), int(np.argmax(w))
        out[c] = f"{cats[lo]} {w[lo]:+.2f} .. {cats[hi]} {w[hi]:+.2f}" if len(cats) > 1 else f"{w[0]:+.3f}"
        j += len(cats)
    return out
