"""The comparison protocol for small datasets: repeated stratified K-fold, with a validation
part inside every training fold, and paired comparisons against the references.

- `folds(y, k, repeats, seed)`  the same folds for every model (so scores are paired): for
  each repeat and fold, `train` / `val` (a stratified part of the training fold that makes
  every decision: early stopping, threshold, model choice) / `test` (the held-out fold,
  scored once)
- `paired(a, b, n_train, n_test)`  mean difference a - b over folds with a 95% interval from
  the corrected resampled t-test (Nadeau & Bengio 2003: the variance of the mean difference
  is (1/J + n_test/n_train) s^2 over J folds, because the training sets overlap), and a verdict
- `table(scores, references, ...)`  per model mean ± std over folds, then each model's
  paired difference with each reference
- `fold_plot(scores, path)`  per-fold scores, one line per fold across the models, which
  makes the pairing visible

The default run of each case stays one split; `--cv K --repeats R` (`add_flags`) is how to
make a claim.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_cases import UserError

CV_HELP = (
    "repeated stratified K-fold instead of the one split: every model on the same folds, decisions "
    "on a validation part of each training fold, the held-out fold scored once; paired intervals "
    "against the references (0: the one split)"
)


def add_flags(group, repeats: int = 3, cv_help: str = CV_HELP):
    """`--cv K` and `--repeats R`, the same flags on every case and search that offers the protocol."""
    from keras_cases import cli

    group.add_argument("--cv", type=cli.nonnegative_int, default=0, metavar="K", help=cv_help)
    group.add_argument("--repeats", type=cli.positive_int, default=repeats, help="repeats of the K folds (with --cv)")
    return group


@dataclass(frozen=True)
class Fold:
    repeat: int
    fold: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @property
    def name(self) -> str:
        return f"r{self.repeat}f{self.fold}"


def folds(y, k: int = 5, repeats: int = 3, seed: int = 0, val_fraction: float = 0.2) -> list[Fold]:
    """Repeated stratified K-fold over labels `y`; inside each training fold a stratified
    `val_fraction` is held out for decisions."""
    from sklearn.model_selection import RepeatedStratifiedKFold, train_test_split

    y = np.asarray(y)
    if k < 2:
        raise UserError(f"--cv {k}: cross-validation needs at least 2 folds")
    smallest = int(np.min(np.unique(y, return_counts=True)[1]))
    if smallest < k * 2:
        raise UserError(
            f"--cv {k}: the smallest class has {smallest} rows; need at least {2 * k} "
            f"(2 per fold) for stratified {k}-fold with a validation part"
        )
    out = []
    splitter = RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=seed)
    for i, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        fit, val = train_test_split(train, test_size=val_fraction, stratify=y[train], random_state=seed * 1000 + i)
        out.append(Fold(i // k, i % k, np.sort(fit), np.sort(val), np.sort(test)))
    return out


def paired(a, b, n_train: int, n_test: int, alpha: float = 0.05) -> dict:
    """Mean of a - b over folds with the corrected resampled t interval."""
    from scipy import stats

    d = np.asarray(a, dtype="float64") - np.asarray(b, dtype="float64")
    j = len(d)
    mean = float(d.mean())
    if j < 2:
        return {
            "diff": mean,
            "low": float("nan"),
            "high": float("nan"),
            "p": float("nan"),
            "verdict": "one fold: no interval",
        }
    var = (1.0 / j + n_test / n_train) * float(d.var(ddof=1))
    se = np.sqrt(var)
    t = stats.t.ppf(1 - alpha / 2, j - 1)
    low, high = mean - t * se, mean + t * se
    p = float(2 * stats.t.sf(abs(mean) / se, j - 1)) if se > 0 else (0.0 if mean else 1.0)
    verdict = "better" if low > 0 else "worse" if high < 0 else "not distinguishable"
    return {"diff": mean, "low": float(low), "high": float(high), "p": p, "verdict": verdict}


def summary(scores: dict, references, n_train: int, n_test: int, metric: str) -> dict:
    """{"models": {name: {mean, std, folds}}, "paired": [{model, reference, diff, low, high,
    p, verdict}]} for one metric; `scores` is {model: [score per fold]}."""
    models = {
        m: {
            "mean": float(np.mean(v)),
            "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "folds": [float(x) for x in v],
        }
        for m, v in scores.items()
    }
    rows = []
    refs = [r for r in references if r in scores]
    for m in scores:
        for r in refs:
            if r != m and not (m in refs and refs.index(m) > refs.index(r)):  # each pair once
                rows.append(
                    {"model": m, "reference": r, "metric": metric, **paired(scores[m], scores[r], n_train, n_test)}
                )
    return {"metric": metric, "models": models, "paired": rows}


def markdown(s: dict, fmt: str = "{:+.4f}") -> str:
    """The summary as two markdown tables."""
    lines = [f"| model | {s['metric']} mean | std over folds |", "|---|---|---|"]
    lines += [f"| {m} | {v['mean']:.4f} | {v['std']:.4f} |" for m, v in s["models"].items()]
    lines += [
        "",
        f"| model | reference | paired difference in {s['metric']} | 95% interval (corrected resampled t) | verdict |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['reference']} | {fmt.format(r['diff'])} | "
        f"[{fmt.format(r['low'])}, {fmt.format(r['high'])}] | {r['verdict']} |"
        for r in s["paired"]
    ]
    return "\n".join(lines)


def fold_plot(scores: dict, path, metric: str, title: str = ""):
    """One line per fold across the models: parallel lines mean a consistent difference."""
    from keras_cases import plots

    return plots.per_fold(scores, path, metric, title)
