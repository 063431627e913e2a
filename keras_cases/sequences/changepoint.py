"""Study 1, change-point detection: a stacked LSTM and a residual stack of dilated causal
Conv1D layers label every step from the past alone, against the Bayes-optimal ceiling and
on longer sequences with later changes than any seen in training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_cases import plots, runtime
from keras_cases.evaluation import mean_std, pm
from keras_cases.runs import markdown_table
from keras_cases.sequences.data import ChangePoints, bayes_posterior, changepoint_data, data_rng
from keras_cases.sequences.figures import plot_detection, plot_examples
from keras_cases.sequences.models import CHANGEPOINT_MODELS, compile_once, fit, leak, receptive_field

SHOWN = (  # the columns of the report's table (metrics.json has every score)
    "val_accuracy",
    "test_accuracy",
    "test_delay",
    "test_false_alarm",
    "extrapolate_accuracy",
    "extrapolate_detection",
    "extrapolate_false_alarm",
    "epochs",
)


def changepoint_scores(p: np.ndarray, d: ChangePoints) -> dict:
    """Per-step accuracy at 0.5; detection (a change flagged at the last step), median
    delay to the first alarm at or after T, and the false-alarm rate per pre-change step."""
    alarm = p > 0.5
    has = d.has_change
    rows = np.flatnonzero(has)
    delays = []
    for i in rows:
        hits = np.flatnonzero(alarm[i, d.change[i] :])
        if len(hits):
            delays.append(hits[0])
    return {
        "accuracy": float(np.mean(alarm == (d.y > 0.5))),
        "detection": float(alarm[has, -1].mean()),
        "delay": float(np.median(delays)) if delays else float("nan"),
        "false_alarm": float(alarm[d.y < 0.5].mean()),
    }


def around_change(p: np.ndarray, change: np.ndarray, before=20, after=40):
    """Mean and std over sequences of p[T + k] for k = -before .. after (where in range)."""
    k = np.arange(-before, after + 1)
    mean, std = np.full(len(k), np.nan), np.full(len(k), np.nan)
    for j, kk in enumerate(k):
        t = change + kk
        ok = (change >= 0) & (t >= 0) & (t < p.shape[1])
        if ok.any():
            v = p[np.flatnonzero(ok), t[ok]]
            mean[j], std[j] = v.mean(), v.std()
    return k, mean, std


@dataclass
class Sets:
    """The study's data: train, validation and test sequences of one length, and the
    extrapolation set (half as long again, every change in `window`)."""

    train: ChangePoints
    val: ChangePoints
    test: ChangePoints
    extrapolate: ChangePoints
    window: tuple[int, int]

    @property
    def scored(self) -> dict:
        return {"val": self.val, "test": self.test, "extrapolate": self.extrapolate}

    @property
    def titles(self) -> list[str]:
        length, ext_len = self.test.x.shape[1], self.extrapolate.x.shape[1]
        w = self.window
        return [f"test (length {length})", f"extrapolation (length {ext_len}, change in [{w[0]}, {w[1]}))"]


def changepoint_sets(args) -> Sets:
    """Generated once from distinct streams of --data-seed, the same for every training seed."""
    rng = lambda split: data_rng(args.data_seed, "changepoint", split)  # noqa: E731
    length, n, n_eval = args.length, args.n_changepoint, max(args.n_changepoint // 4, 64)
    window = (int(1.2 * length), int(1.4 * length))
    tr = changepoint_data(n, rng("train"), length)
    va = changepoint_data(n_eval, rng("val"), length)
    te = changepoint_data(n_eval, rng("test"), length)
    ex = changepoint_data(n_eval, rng("extrapolate"), length + length // 2, change_range=window)
    return Sets(tr, va, te, ex, window)


@dataclass
class Detector:
    """One detector trained on every seed: its scores per seed and, from the first seed,
    its detection curves, test predictions and causality check."""

    params: int
    scores: list
    curves: dict
    test: np.ndarray
    leak: float


def train_detector(name, build, sets: Sets, args, seeds, run, history, saved) -> Detector:
    """Train one detector for every seed (compiled once, re-drawn per seed) and score it on
    validation, test and extrapolation; the first seed's model is saved."""
    model = build()
    params = model.count_params()
    fresh = compile_once(model, args.lr)
    scores, first = [], {}
    for s in seeds:
        print(f"--- changepoint {name} ({params:,} parameters), seed {s}", flush=True)
        key = f"changepoint_{name}_seed{s}"
        h = history[key] = fit(model, fresh, sets.train.x, sets.train.y, (sets.val.x, sets.val.y), args, s, key)
        p = {k: np.asarray(model.predict(d.x, verbose=0, batch_size=256)) for k, d in sets.scored.items()}
        r = {f"{k}_{m}": v for k, d in sets.scored.items() for m, v in changepoint_scores(p[k], d).items()}
        r["epochs"] = len(h["loss"])
        scores.append(r)
        if s == seeds[0]:
            curves = (
                around_change(p["test"], sets.test.change),
                around_change(p["extrapolate"], sets.extrapolate.change),
            )
            first = dict(
                curves=dict(zip(sets.titles, curves)), test=p["test"], leak=leak(model, sets.test.x, args.length // 2)
            )
            runtime.save_model(model, run.path(f"changepoint_{name}.keras"))
            saved[f"changepoint_{name}"] = (run.path(f"changepoint_{name}.keras"), r["val_accuracy"])
    return Detector(params, scores, **first)


def changepoint_table(detectors: dict, bayes: dict, metrics: dict) -> str:
    """Mean and std over seeds of every score into `metrics`; the shown ones as a table,
    with the Bayes-optimal detector as the last row."""
    rows = []
    for name, det in detectors.items():
        metrics[f"changepoint_{name}_params"] = det.params
        metrics[f"changepoint_{name}_causal_leak"] = det.leak
        row = {"model": name, "parameters": f"{det.params:,}"}
        for k in det.scores[0]:
            v = [r[k] for r in det.scores]
            metrics[f"changepoint_{name}_{k}"], metrics[f"changepoint_{name}_{k}_std"] = mean_std(v)
            if k in SHOWN:
                row[k.replace("extrapolate", "extrap.").replace("_", " ")] = pm(
                    v, "{:.1f}" if k in ("test_delay", "epochs") else "{:.4f}"
                )
        rows.append(row)
    rows.append(
        {
            "model": "Bayes-optimal (knows the generator)",
            "parameters": "-",
            "test accuracy": f"{bayes['accuracy']:.4f}",
            "test delay": f"{bayes['delay']:.1f}",
            "test false alarm": f"{bayes['false_alarm']:.4f}",
        }
    )
    return markdown_table(rows, list(rows[0]))


def study_changepoint(args, seeds, run, metrics, history, saved) -> str:
    """Both detectors on every seed against the Bayes-optimal ceiling: metrics, plots, and
    the report section."""
    sets = changepoint_sets(args)
    tr, va, te, ex = sets.train, sets.val, sets.test, sets.extrapolate
    metrics.update(
        changepoint_n_train=len(tr.y),
        changepoint_n_val=len(va.y),
        changepoint_n_test=len(te.y),
        changepoint_n_extrapolate=len(ex.y),
        changepoint_label_rate=float(te.y.mean()),
        changepoint_change_fraction=float(te.has_change.mean()),
    )
    bayes = changepoint_scores(bayes_posterior(te.x, change_range=(1, args.length)), te)
    metrics.update({f"changepoint_bayes_test_{k}": v for k, v in bayes.items()})
    detectors = {
        name: train_detector(name, build, sets, args, seeds, run, history, saved)
        for name, build in CHANGEPOINT_MODELS.items()
    }
    table = changepoint_table(detectors, bayes, metrics)
    plot_detection({n: d.curves for n, d in detectors.items()}, run.path("changepoint_detection.png"), sets.titles)
    plot_examples(te, {n: d.test for n, d in detectors.items()}, run.path("changepoint_examples.png"))
    plots.learning_curves(
        {n: history[f"changepoint_{n}_seed{seeds[0]}"] for n in detectors},
        run.path("changepoint_curves.png"),
        metrics=("loss", "accuracy"),
    )
    print(table, flush=True)
    return changepoint_text(sets, metrics, detectors, table, seeds[0])


def changepoint_text(sets: Sets, metrics: dict, detectors: dict, table: str, seed: int) -> str:
    tr, va, te, ex = sets.train, sets.val, sets.test, sets.extrapolate
    length, ext_len, window = te.x.shape[1], ex.x.shape[1], sets.window
    rate = metrics["changepoint_label_rate"]
    params = {n: d.params for n, d in detectors.items()}
    leaks = {n: d.leak for n, d in detectors.items()}
    return f"""{len(tr.y):,} training, {len(va.y):,} validation and {len(te.y):,} test sequences of
length {length} (10 dimensions; {100 * metrics["changepoint_change_fraction"]:.0f}% of the test sequences
change; {100 * rate:.1f}% of the test steps are labelled 1, so always answering 0 scores
{1 - rate:.4f}). Both models are causal: step t sees steps <= t only (redrawing the inputs after
step {length // 2} moved the outputs up to it by at most {max(leaks.values()):.1e}).

- **lstm**: 2 stacked LSTM layers of 32 units, a sigmoid per step: {params["lstm"]:,} parameters.
- **cnn**: 6 causal Conv1D layers (28 filters, kernel 3, dilations 1, 2, 4, ..., 32, residual
  connections; receptive field {receptive_field()} steps), a sigmoid per step: {params["cnn"]:,} parameters.
- **Bayes-optimal**: the exact posterior P(change so far | x[0..t]) under the generator (shift
  means and shifted dimensions integrated out), thresholded at 0.5: the ceiling for any causal
  detector, computed once on the test set.

Accuracy is per step at threshold 0.5. Delay: median steps from the change to the first alarm.
False alarm: share of pre-change steps flagged. Extrapolation: {len(ex.y):,} sequences of length
{ext_len}, the change (in 80% of them) in [{window[0]}, {window[1]}), later than any change seen in
training; detection = share of changed sequences flagged at the last step.

{table}

![detection probability around the change](changepoint_detection.png)

![example test sequences](changepoint_examples.png)

![learning curves, seed {seed}](changepoint_curves.png)"""
