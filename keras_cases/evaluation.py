"""Metrics, decision thresholds and seed summaries shared by every case study.

All metrics come from scikit-learn. A decision threshold is always chosen on validation
data for a stated objective, written as a short string:

- ``recall>=0.8``      the highest-precision threshold whose recall is at least 0.8
- ``precision>=0.98``  the highest-recall threshold whose precision is at least 0.98
- ``f1`` / ``fbeta:2`` the threshold with the best F-beta
- ``cost:fp=1,fn=5``   the threshold with the lowest expected cost per example
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from keras_cases import UserError


@dataclass(frozen=True)
class Objective:
    kind: str  # "recall>=", "precision>=", "fbeta", "cost"
    value: float = 1.0  # the floor, beta, or unused
    fp_cost: float = 1.0
    fn_cost: float = 1.0

    def __str__(self):
        if self.kind in ("recall>=", "precision>="):
            return f"{self.kind}{self.value:g}"
        if self.kind == "fbeta":
            return "f1" if self.value == 1 else f"fbeta:{self.value:g}"
        return f"cost:fp={self.fp_cost:g},fn={self.fn_cost:g}"


_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"  # 0.8, 1, .5 (not 0.8.1)


def parse_objective(text: str) -> Objective:
    t = text.replace(" ", "").lower()
    m = re.fullmatch(rf"(recall|precision)>={_NUMBER}", t)
    if m:
        v = float(m.group(2))
        if not 0 < v <= 1:
            raise UserError(f"objective {text!r}: the floor must be in (0, 1]")
        return Objective(m.group(1) + ">=", v)
    if t == "f1":
        return Objective("fbeta", 1.0)
    m = re.fullmatch(rf"fbeta:{_NUMBER}", t)
    if m and float(m.group(1)) > 0:
        return Objective("fbeta", float(m.group(1)))
    m = re.fullmatch(rf"cost:fp={_NUMBER},fn={_NUMBER}", t)
    if m:
        if not float(m.group(1)) + float(m.group(2)) > 0:
            raise UserError(f"objective {text!r}: at least one of the costs must be above 0")
        return Objective("cost", fp_cost=float(m.group(1)), fn_cost=float(m.group(2)))
    raise UserError(f"unknown threshold objective {text!r}: use recall>=R, precision>=P, f1, fbeta:B or cost:fp=A,fn=B")


def confusion_at(y, p, thresholds):
    """TP, FP, FN, TN for each threshold (predict positive when p >= threshold)."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype="float64").ravel()
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    thresholds = np.asarray(thresholds, dtype="float64")
    # number predicted positive at threshold t = count of p >= t
    k = np.searchsorted(-ps, -thresholds, side="right")
    cum_tp = np.concatenate([[0], np.cumsum(ys)])
    tp = cum_tp[k]
    fp = k - tp
    pos = ys.sum()
    fn = pos - tp
    tn = len(ys) - pos - fp
    return tp, fp, fn, tn


def threshold_sweep(y, p) -> dict:
    """Precision, recall, F1 and counts at every distinct score used as a threshold."""
    p = np.asarray(p, dtype="float64").ravel()
    t = np.unique(np.concatenate([p, [np.nextafter(p.max(), np.inf)]]))
    tp, fp, fn, tn = confusion_at(y, p, t)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
        recall = tp / np.maximum(tp + fn, 1)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {"threshold": t, "precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def choose_threshold(y, p, objective: Objective | str) -> tuple[float, float]:
    """(threshold, objective value) chosen on (y, p); ties go to the higher threshold."""
    obj = parse_objective(objective) if isinstance(objective, str) else objective
    s = threshold_sweep(y, p)
    t, prec, rec = s["threshold"], s["precision"], s["recall"]
    if obj.kind == "recall>=":
        ok = rec >= obj.value - 1e-12
        score = np.where(ok, prec, -np.inf)
    elif obj.kind == "precision>=":
        ok = (prec >= obj.value - 1e-12) & (s["tp"] > 0)
        score = np.where(ok, rec, -np.inf)
        if not ok.any():  # unreachable floor: fall back to the most precise threshold
            score = np.where(s["tp"] > 0, prec, -np.inf)
    elif obj.kind == "fbeta":
        b2 = obj.value**2
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.nan_to_num((1 + b2) * prec * rec / (b2 * prec + rec))
    else:
        score = -(obj.fp_cost * s["fp"] + obj.fn_cost * s["fn"]) / len(np.asarray(y))
    best = np.flatnonzero(score == score.max())[-1]
    value = float(score[best])  # precision, recall, F-beta, or minus the cost
    return float(t[best]), (-value if obj.kind == "cost" else value)


def binary_metrics(y, p, threshold: float = 0.5) -> dict:
    """The report's metrics for scores p on labels y, with decisions at `threshold`."""
    y = np.asarray(y).astype(int).ravel()
    p = np.asarray(p, dtype="float64").ravel()
    pred = (p >= threshold).astype(int)
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)),
        "pr_auc": float(skm.average_precision_score(y, p)),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "threshold": float(threshold),
    }


def confusion(y, p, threshold: float) -> np.ndarray:
    return skm.confusion_matrix(
        np.asarray(y).astype(int), (np.asarray(p).ravel() >= threshold).astype(int), labels=[0, 1]
    )


def summarize(runs: list[dict]) -> tuple[dict, dict]:
    """Mean and std (ddof=0 for one run, else 1) of every numeric key, nested dicts too."""
    mean, std = {}, {}
    for key, first in runs[0].items():
        if isinstance(first, dict):
            mean[key], std[key] = summarize([r[key] for r in runs])
        elif isinstance(first, (int, float)) and not isinstance(first, bool):
            vals = np.array([r[key] for r in runs], dtype="float64")
            mean[key] = float(vals.mean())
            std[key] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    return mean, std


def frechet_distance(a, b) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (rows = examples):
    |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the FID formula in any feature space."""
    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Tr((S_a S_b)^(1/2)) is the sum of the square roots of the eigenvalues of S_a S_b, which
    # are real and >= 0 (S_a S_b is similar to a PSD matrix); this stays stable when a
    # covariance is singular, where a matrix square root warns and loses precision.
    eig = np.linalg.eigvals(s_a @ s_b).real
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * tr_covmean)


def mean_std(values) -> tuple[float, float]:
    """Mean and sample std (ddof=1; 0 for a single value) of per-seed results."""
    v = np.asarray(values, "float64")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def pm(values, fmt="{:.4f}") -> str:
    """'mean ± std' of per-seed results, for reports."""
    m, s = mean_std(values)
    return f"{fmt.format(m)} ± {fmt.format(s)}"


def class_weights(y, n_classes: int = 2) -> np.ndarray:
    """Per-example weights n / (k n_class), so every class weighs the same in the loss (a
    class absent from `y` counts as one example). Labels are 0 .. n_classes-1."""
    y = np.asarray(y).ravel().astype("int64")
    counts = np.maximum(np.bincount(y, minlength=n_classes), 1).astype("float64")
    return (len(y) / (n_classes * counts))[y].astype("float32")
