"""Sequences: change-point detection and summarise-and-query memory.

Two studies on seeded synthetic sequences (synthetic by design: the truth is known
exactly), each a table and plots, every number a mean ± std over seeds:

changepoint  10-dimensional N(0, 1) sequences of length 100. In 80% of them a change at
             T ~ U{1..99} shifts 5 random dimensions by means drawn from U[-1, 1] (one
             per dimension); the label is 1 at and after T, 0 before (and everywhere when
             there is no change). Two *causal* detectors at about the same parameter count
             label every step from the past alone: a stacked LSTM and a residual stack of
             dilated causal Conv1D layers (padding="causal", dilations 1, 2, 4, ..., 32: a
             receptive field of 127 steps, the whole sequence). Per-step accuracy, detection
             delay, false alarms, the detection probability against time relative to the
             change, an extrapolation test (length 150, the change in [120, 140), later than
             any change seen in training), and the Bayes-optimal detector (the exact
             posterior under the generator) as the ceiling.
query        digit sequences (0..9) of length 5..20, stored as tokens 1..10 with 0 as the
             padding token (never a digit; Embedding(mask_zero=True) hides it), are
             summarised by a masked GRU into one fixed vector; a query network reads
             (summary, q) and answers task A "did q appear?" or task B "did q immediately
             followed by q+1 appear?" (q in 0..8). Queries are balanced (half positive), and
             the label rate (majority baseline) is reported beside the accuracy.

Protocol: train, validation and test sets are generated once from distinct data seeds
(`--data-seed`), the same for every training seed; early stopping and the choice of
weights use the validation set; the test set is scored once per trained model. Weights
are drawn from NumPy (runtime.init_weights) and batches shuffled in NumPy (data.batches),
so one seed gives the same run on every backend up to float round-off.

    python -m keras_cases.sequences                      # both studies, 3 seeds
    python -m keras_cases.sequences --studies query --seeds 5
    python -m keras_cases.sequences --quick
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from keras_cases import UserError, cli, plots, runtime
from keras_cases.callbacks import resumable, tensorboard
from keras_cases.data import batches
from keras_cases.evaluation import mean_std, pm  # noqa: F401  (re-exported for tests and notebooks)
from keras_cases.runs import command, markdown_table

CASE = "sequences"
STUDIES = ("changepoint", "query")
TASKS = {"a": "did q appear?", "b": "did q immediately followed by q+1 appear?"}
SPLITS = {"train": 1, "val": 2, "test": 3, "extrapolate": 4}  # data seed offsets: distinct streams
PAD = 0  # the padding token; digit d is the token d + 1
MIN_LEN = 5  # shortest digit sequence
N_TOKENS = 11


def data_rng(data_seed: int, study: str, split: str, task: int = 0) -> np.random.Generator:
    """One independent NumPy stream per (data seed, study, split, task)."""
    return np.random.default_rng([data_seed, STUDIES.index(study), SPLITS[split], task])


# --- change-point data ----------------------------------------------------------------
@dataclass
class ChangePoints:
    x: np.ndarray  # (n, length, dims) float32
    y: np.ndarray  # (n, length) float32: 1 at and after the change
    change: np.ndarray  # (n,) int: the change time T, -1 for no change
    shift: np.ndarray  # (n, dims) float32: the mean shift (zero in unshifted dimensions)

    @property
    def has_change(self) -> np.ndarray:
        return self.change >= 0


def changepoint_data(
    n: int, rng: np.random.Generator, length=100, dims=10, n_shifted=5, p_change=0.8, change_range=None
) -> ChangePoints:
    """`n` sequences of N(0, 1) noise; with probability `p_change` a change at
    T ~ U{change_range[0] .. change_range[1] - 1} (default 1 .. length - 1) adds, from T on,
    a mean drawn from U[-1, 1] to `n_shifted` dimensions chosen at random."""
    lo, hi = change_range or (1, length)
    if not 0 <= lo < hi <= length:
        raise UserError(f"change range [{lo}, {hi}) does not fit in sequences of length {length}")
    x = rng.standard_normal((n, length, dims)).astype("float32")
    has = rng.random(n) < p_change
    change = np.where(has, rng.integers(lo, hi, n), -1)
    chosen = np.argsort(rng.random((n, dims)), axis=1)[:, :n_shifted]  # n_shifted distinct dims
    mask = np.zeros((n, dims), bool)
    np.put_along_axis(mask, chosen, True, axis=1)
    shift = (rng.uniform(-1, 1, (n, dims)) * mask * has[:, None]).astype("float32")
    after = has[:, None] & (np.arange(length)[None, :] >= change[:, None])
    x += after[:, :, None] * shift[:, None, :]
    return ChangePoints(x, after.astype("float32"), change, shift)


def bayes_posterior(x: np.ndarray, n_shifted=5, p_change=0.8, change_range=(1, 100)) -> np.ndarray:
    """P(change at or before t | x[0..t]) under the true generator: the Bayes-optimal causal
    detector, a ceiling for the learned ones (thresholded at 0.5 it maximises the expected
    per-step accuracy).

    For a change at T <= t, each shifted dimension's mean mu ~ U[-1, 1] integrates out in
    closed form, r_d = 1/2 * int_{-1}^{1} exp(mu S_d - k mu^2 / 2) dmu with S_d the sum of
    x[T..t, d] and k = t - T + 1, and the shifted set (n_shifted of the dims, uniform) sums out
    as the elementary symmetric polynomial e_{n_shifted}(r) / C(dims, n_shifted)."""
    from math import comb

    from scipy.special import ndtr

    n, length, dims = x.shape
    lo, hi = change_range
    prior = p_change / (hi - lo)
    csum = np.concatenate([np.zeros((n, 1, dims)), np.cumsum(x, 1, dtype="float64")], 1)
    post = np.zeros((n, length))
    for t in range(length):
        starts = np.arange(lo, min(t, hi - 1) + 1)
        if not len(starts):
            continue
        S = csum[:, t + 1, None, :] - csum[:, starts]  # (n, changes so far, dims)
        k = (t + 1 - starts)[None, :, None].astype("float64")
        m, sk = S / k, np.sqrt(k)
        mass = np.maximum(ndtr(sk * (1 - m)) - ndtr(sk * (-1 - m)), 1e-300)
        log_r = S * m / 2 + 0.5 * np.log(2 * np.pi / k) - np.log(2) + np.log(mass)
        top = log_r.max(-1, keepdims=True)  # scale out the largest factor against overflow
        r = np.exp(log_r - top)
        e = [np.ones(r.shape[:2])] + [np.zeros(r.shape[:2]) for _ in range(n_shifted)]
        for d in range(dims):
            for j in range(n_shifted, 0, -1):
                e[j] = e[j] + r[..., d] * e[j - 1]
        log_joint = n_shifted * top[..., 0] + np.log(e[n_shifted]) - np.log(comb(dims, n_shifted)) + np.log(prior)
        peak = log_joint.max(1)
        log_changed = peak + np.log(np.exp(log_joint - peak[:, None]).sum(1))
        post[:, t] = 1 / (1 + np.exp(np.log(1 - prior * len(starts)) - log_changed))
    return post


# --- summarise-and-query data ------------------------------------------------------------
@dataclass
class Queries:
    tokens: np.ndarray  # (n, max_len) int32: digit d as d + 1, PAD after the end
    query: np.ndarray  # (n, 1) int32: the digit asked about
    y: np.ndarray  # (n,) float32: the answer
    lengths: np.ndarray  # (n,) int

    @property
    def inputs(self) -> dict:
        return {"tokens": self.tokens, "query": self.query}


def digits_of(tokens: np.ndarray, length: int) -> list[int]:
    return [int(t) - 1 for t in tokens[:length]]


def answer(digits, q: int, task: str) -> bool:
    """The ground truth, spelled out: the reference the generator is tested against."""
    if task == "a":
        return q in digits
    return any(a == q and b == q + 1 for a, b in zip(digits, digits[1:]))


def _present(d: np.ndarray, valid: np.ndarray, task: str) -> np.ndarray:
    """(n, 10) for task a: which digits occur; (n, 9) for task b: which q have q, q+1 adjacent."""
    if task == "a":
        return np.stack([((d == k) & valid).any(1) for k in range(10)], 1)
    pair = valid[:, 1:] & (d[:, 1:] == d[:, :-1] + 1)
    return np.stack([(pair & (d[:, :-1] == k)).any(1) for k in range(9)], 1)


def query_data(n: int, rng: np.random.Generator, task: str, min_len=MIN_LEN, max_len=20, p_positive=0.5) -> Queries:
    """Random digit sequences and one query each, positive with probability `p_positive`.

    Task a: a positive query is a digit that occurs, a negative one a digit that does not.
    Task b: a positive sequence gets q, q+1 written at a random position (q uniform on
    0..8); a negative query is a q whose pair does not occur (mostly q itself does occur,
    just not followed by q+1). A sequence where the wanted answer is impossible (all ten
    digits present, for a negative of task a) is drawn again.
    """
    if task not in TASKS:
        raise UserError(f"unknown query task {task!r}; choose from {', '.join(TASKS)}")
    if not 2 <= min_len <= max_len:
        raise UserError(f"sequence lengths {min_len}..{max_len}: need 2 <= min <= max")
    lengths = rng.integers(min_len, max_len + 1, n)
    valid = np.arange(max_len)[None, :] < lengths[:, None]
    d = rng.integers(0, 10, (n, max_len))
    positive = rng.random(n) < p_positive
    n_q = 10 if task == "a" else 9
    if task == "b":  # plant the pair in positive sequences
        rows = np.flatnonzero(positive)
        at = rng.integers(0, lengths[rows] - 1)
        q_plant = rng.integers(0, 9, len(rows))
        d[rows, at], d[rows, at + 1] = q_plant, q_plant + 1
    present = _present(d, valid, task)
    while True:  # redraw the few sequences that cannot give the wanted answer
        candidates = np.where(positive[:, None], present, ~present)
        bad = ~candidates.any(1)
        if not bad.any():
            break
        d[bad] = rng.integers(0, 10, (int(bad.sum()), max_len))
        present[bad] = _present(d[bad], valid[bad], task)
    score = np.where(candidates, rng.random((n, n_q)), -1.0)
    q = score.argmax(1)
    y = present[np.arange(n), q]
    tokens = np.where(valid, d + 1, PAD).astype("int32")
    return Queries(tokens, q[:, None].astype("int32"), y.astype("float32"), lengths)


class _Columns:
    """Named arrays indexed together: lets data.batches shuffle a two-input model's data."""

    def __init__(self, **arrays):
        self.arrays = arrays

    def __len__(self):
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, j):
        return {k: v[j] for k, v in self.arrays.items()}


# --- models ---------------------------------------------------------------------------------
# Every weight is drawn again from NumPy by runtime.init_weights (the same numbers on every
# backend), so the layers are created with zeros: Keras' random initialisers would be compiled
# once per weight shape on JAX (seconds of CPU) only to be overwritten.
_ZEROS = {"kernel_initializer": "zeros", "bias_initializer": "zeros"}
_RNN_ZEROS = {**_ZEROS, "recurrent_initializer": "zeros"}


def _initialised(model: keras.Model, seed: int) -> keras.Model:
    runtime.init_weights(model, seed)
    return model


def build_lstm(dims=10, units=32, depth=2, seed=0) -> keras.Model:
    """Stacked LSTM, one sigmoid per step: causal by construction (it reads left to right)."""
    inputs = keras.Input((None, dims), name="x")
    h = inputs
    for i in range(depth):
        h = layers.LSTM(units, return_sequences=True, name=f"lstm{i}", **_RNN_ZEROS)(h)
    out = layers.Dense(1, activation="sigmoid", name="p_change", **_ZEROS)(h)
    return _initialised(keras.Model(inputs, layers.Reshape((-1,), name="per_step")(out), name="lstm"), seed)


def build_cnn(dims=10, filters=28, kernel_size=3, dilations=(1, 2, 4, 8, 16, 32), seed=0) -> keras.Model:
    """A stack of causal dilated convolutions (padding="causal": step t sees only steps
    <= t), each after the first added to its input (residual), one sigmoid per step.
    Receptive field 1 + (kernel_size - 1) * sum(dilations) = 127 steps."""
    inputs = keras.Input((None, dims), name="x")
    h = inputs
    for i, rate in enumerate(dilations):
        c = layers.Conv1D(
            filters,
            kernel_size,
            padding="causal",
            dilation_rate=rate,
            activation="relu",
            name=f"conv{i}_d{rate}",
            **_ZEROS,
        )(h)
        h = layers.Add(name=f"residual{i}")([h, c]) if i else c
    out = layers.Dense(1, activation="sigmoid", name="p_change", **_ZEROS)(h)
    return _initialised(keras.Model(inputs, layers.Reshape((-1,), name="per_step")(out), name="cnn"), seed)


def receptive_field(kernel_size=3, dilations=(1, 2, 4, 8, 16, 32)) -> int:
    return 1 + (kernel_size - 1) * int(sum(dilations))


CHANGEPOINT_MODELS = {"lstm": build_lstm, "cnn": build_cnn}


def build_query_model(units=64, embed=16, hidden=64, seed=0) -> keras.Model:
    """tokens -> Embedding(mask_zero) -> GRU -> summary (one vector); (summary, q) -> MLP -> p.
    Any padded length works: the mask hides the padding from the GRU."""
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    query = keras.Input((1,), dtype="int32", name="query")
    e = layers.Embedding(N_TOKENS, embed, mask_zero=True, embeddings_initializer="zeros", name="embed")(tokens)
    summary = layers.GRU(units, name="summary", **_RNN_ZEROS)(e)
    q = layers.Embedding(10, embed, embeddings_initializer="zeros", name="embed_query")(query)
    h = layers.Concatenate(name="summary_and_q")([summary, layers.Flatten(name="q")(q)])
    h = layers.Dense(hidden, activation="relu", name="query_net", **_ZEROS)(h)
    out = layers.Dense(1, activation="sigmoid", name="answer", **_ZEROS)(h)
    return _initialised(keras.Model([tokens, query], out, name="query"), seed)


def leak(model, x: np.ndarray, t: int, seed=0) -> float:
    """Largest change in the outputs at steps <= t when the inputs after t are redrawn:
    zero (up to round-off) for a causal model."""
    x2 = x.copy()
    x2[:, t + 1 :] = np.random.default_rng(seed).standard_normal(x2[:, t + 1 :].shape)
    p1 = np.asarray(model.predict(x, verbose=0))
    p2 = np.asarray(model.predict(x2, verbose=0))
    return float(np.max(np.abs(p1[:, : t + 1] - p2[:, : t + 1])))


# --- training ----------------------------------------------------------------------------------
def compile_once(model, lr) -> list:
    """Compile `model` and return its optimizer's fresh state. One compiled model serves every
    seed (`fit` re-draws the weights and restores this state), so the backend compiles its
    training step once per architecture, not once per seed."""
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    model.optimizer.build(model.trainable_variables)
    return [np.array(ops.convert_to_numpy(v)) for v in model.optimizer.variables]


def fit(model, fresh_optimizer, x, y, val, args, seed, name=None):
    """Weights drawn for `seed`, Adam restarted, binary cross-entropy; early stopping on
    validation loss with the best weights restored. Returns the Keras history dict. `name`
    (unique in the run; default <model>_seed<seed>) names its checkpoint for --resume.

    Batches are shuffled by data.batches (NumPy) alone: fit's own `shuffle` would also
    reorder them with Python's `random`, whose state depends on every fit before this one."""
    runtime.set_seed(seed)
    runtime.init_weights(model, seed)
    for v, v0 in zip(model.optimizer.variables, fresh_optimizer):
        v.assign(v0)
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=args.patience, min_delta=1e-3, restore_best_weights=True
    )
    data, name = batches(x, y, args.batch_size, seed), name or f"{model.name}_seed{seed}"
    return model.fit(
        data,
        validation_data=val,
        epochs=args.epochs,
        shuffle=False,
        verbose=args.verbose,
        callbacks=resumable(name, [stop, *tensorboard(name)], data),
    ).history


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


def plot_detection(curves: dict, path, titles):
    """One panel per data set: mean detection probability ± std against time relative to
    the change, one band per model. (A local figure: plots.py has no band plot.)"""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(titles), figsize=(5.5 * len(titles), 3.8), squeeze=False)
    for ax, title in zip(axes[0], titles):
        for i, (name, per_set) in enumerate(curves.items()):
            k, m, s = per_set[title]
            ax.plot(k, m, color=f"C{i}", label=name)
            ax.fill_between(k, np.clip(m - s, 0, 1), np.clip(m + s, 0, 1), color=f"C{i}", alpha=0.2)
        ax.axvline(0, color="k", ls=":", lw=1)
        ax.axhline(0.5, color="grey", ls="--", lw=0.8)
        ax.set(
            xlabel="steps relative to the change (0 = first shifted step)",
            ylabel="P(change so far)",
            ylim=(-0.02, 1.02),
            title=title,
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    return plots._save(fig, path)


def plot_examples(d: ChangePoints, preds: dict, path):
    """Three test sequences, each model's detection probability over time against the label:
    a small and a large shift (changes in the middle third), and a sequence without a change."""
    import matplotlib.pyplot as plt

    length = d.y.shape[1]
    mid = np.flatnonzero((d.change >= length // 3) & (d.change < 2 * length // 3))
    mid = mid if len(mid) >= 2 else np.flatnonzero(d.has_change)
    size = np.abs(d.shift).sum(1)
    order = mid[np.argsort(size[mid], kind="stable")]
    picks = [order[len(order) // 4], order[-1 - len(order) // 10]]
    picks += list(np.flatnonzero(~d.has_change)[:1])
    fig, axes = plt.subplots(len(picks), 1, figsize=(8, 2.2 * len(picks)), sharex=True, squeeze=False)
    for ax, i in zip(axes[:, 0], picks):
        ax.step(np.arange(length), d.y[i], where="post", color="k", lw=1, label="label")
        for j, (name, p) in enumerate(preds.items()):
            ax.plot(p[i], color=f"C{j}", label=name)
        title = (
            f"change at {d.change[i]}, |shift| summed over the 5 dims = {size[i]:.2f}"
            if d.change[i] >= 0
            else "no change"
        )
        ax.set(ylabel="P(change)", ylim=(-0.05, 1.05), title=title)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, ncol=3)
    axes[-1, 0].set_xlabel("time step")
    return plots._save(fig, path)


# --- the studies -----------------------------------------------------------------------------------
def study_changepoint(args, seeds, run, metrics, history, saved):
    rng = lambda split: data_rng(args.data_seed, "changepoint", split)  # noqa: E731
    length, n, n_eval = args.length, args.n_changepoint, max(args.n_changepoint // 4, 64)
    window = (int(1.2 * length), int(1.4 * length))
    tr = changepoint_data(n, rng("train"), length)
    va = changepoint_data(n_eval, rng("val"), length)
    te = changepoint_data(n_eval, rng("test"), length)
    ext_len = length + length // 2
    ex = changepoint_data(n_eval, rng("extrapolate"), ext_len, change_range=window)
    metrics.update(
        changepoint_n_train=len(tr.y),
        changepoint_n_val=len(va.y),
        changepoint_n_test=len(te.y),
        changepoint_n_extrapolate=len(ex.y),
        changepoint_label_rate=float(te.y.mean()),
        changepoint_change_fraction=float(te.has_change.mean()),
    )
    bayes = changepoint_scores(bayes_posterior(te.x, change_range=(1, length)), te)
    metrics.update({f"changepoint_bayes_test_{k}": v for k, v in bayes.items()})
    titles = [f"test (length {length})", f"extrapolation (length {ext_len}, change in [{window[0]}, {window[1]}))"]
    res, curves, preds, params, leaks = {}, {}, {}, {}, {}
    for name, build in CHANGEPOINT_MODELS.items():
        model = build()
        params[name] = model.count_params()
        fresh = compile_once(model, args.lr)
        res[name] = []
        for s in seeds:
            print(f"--- changepoint {name} ({params[name]:,} parameters), seed {s}", flush=True)
            key = f"changepoint_{name}_seed{s}"
            h = history[key] = fit(model, fresh, tr.x, tr.y, (va.x, va.y), args, s, key)
            p = {
                k: np.asarray(model.predict(d.x, verbose=0, batch_size=256))
                for k, d in (("val", va), ("test", te), ("extrapolate", ex))
            }
            r = {
                f"{k}_{m}": v
                for k, d in (("val", va), ("test", te), ("extrapolate", ex))
                for m, v in changepoint_scores(p[k], d).items()
            }
            r["epochs"] = len(h["loss"])
            res[name].append(r)
            if s == seeds[0]:
                curves[name] = dict(
                    zip(titles, (around_change(p["test"], te.change), around_change(p["extrapolate"], ex.change)))
                )
                preds[name] = p["test"]
                leaks[name] = leak(model, te.x, length // 2)
                runtime.save_model(model, run.path(f"changepoint_{name}.keras"))
                saved[f"changepoint_{name}"] = (run.path(f"changepoint_{name}.keras"), r["val_accuracy"])
    shown = [
        "val_accuracy",
        "test_accuracy",
        "test_delay",
        "test_false_alarm",
        "extrapolate_accuracy",
        "extrapolate_detection",
        "extrapolate_false_alarm",
        "epochs",
    ]
    rows = []
    for name, rs in res.items():
        metrics[f"changepoint_{name}_params"] = params[name]
        metrics[f"changepoint_{name}_causal_leak"] = leaks[name]
        row = {"model": name, "parameters": f"{params[name]:,}"}
        for k in rs[0]:
            v = [r[k] for r in rs]
            metrics[f"changepoint_{name}_{k}"], metrics[f"changepoint_{name}_{k}_std"] = mean_std(v)
            if k in shown:
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
    plot_detection(curves, run.path("changepoint_detection.png"), titles)
    plot_examples(te, preds, run.path("changepoint_examples.png"))
    plots.learning_curves(
        {n: history[f"changepoint_{n}_seed{seeds[0]}"] for n in res},
        run.path("changepoint_curves.png"),
        metrics=("loss", "accuracy"),
    )
    table = markdown_table(rows, list(rows[0]))
    print(table, flush=True)
    rate = metrics["changepoint_label_rate"]
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

![learning curves, seed {seeds[0]}](changepoint_curves.png)"""


def study_query(args, seeds, run, metrics, history, saved):
    rows, by_length = [], {}
    n = args.n_query
    model = build_query_model()  # one architecture: compiled once, re-drawn for every task and seed
    fresh = compile_once(model, args.lr)
    for task in TASKS:
        rng = lambda split: data_rng(args.data_seed, "query", split, list(TASKS).index(task))  # noqa: E731
        tr, va, te = (
            query_data(k, rng(split), task, max_len=args.max_len)
            for split, k in (("train", n), ("val", max(n // 4, 64)), ("test", max(n // 4, 64)))
        )
        rate = float(te.y.mean())
        metrics.update(
            {
                f"query_{task}_n_train": len(tr.y),
                f"query_{task}_n_test": len(te.y),
                f"query_{task}_label_rate": rate,
                f"query_{task}_majority": max(rate, 1 - rate),
            }
        )
        res = []
        for s in seeds:
            print(f"--- query task {task} ({model.count_params():,} parameters), seed {s}", flush=True)
            name = f"query_{task}_seed{s}"
            history[name] = fit(model, fresh, _Columns(**tr.inputs), tr.y, (va.inputs, va.y), args, s, name)
            acc = lambda d: (
                (np.asarray(model.predict(d.inputs, verbose=0, batch_size=512)).ravel() > 0.5) == (d.y > 0.5)
            )  # noqa: E731
            hit = acc(te)
            res.append(
                {
                    "val_accuracy": float(acc(va).mean()),
                    "test_accuracy": float(hit.mean()),
                    "epochs": len(history[name]["loss"]),
                    "by_length": [
                        float(hit[te.lengths == L].mean()) if (te.lengths == L).any() else np.nan
                        for L in range(MIN_LEN, args.max_len + 1)
                    ],
                }
            )
            if s == seeds[0]:
                metrics["query_params"] = model.count_params()
                runtime.save_model(model, run.path(f"query_{task}.keras"))
                saved[f"query_{task}"] = (run.path(f"query_{task}.keras"), res[-1]["val_accuracy"])
        for k in ("val_accuracy", "test_accuracy", "epochs"):
            metrics[f"query_{task}_{k}"], metrics[f"query_{task}_{k}_std"] = mean_std([r[k] for r in res])
        by_length[f"task {task}"] = (
            np.arange(MIN_LEN, args.max_len + 1),
            *np.array([mean_std(v) for v in zip(*[r["by_length"] for r in res])]).T,
        )
        rows.append(
            {
                "task": f"{task}: {TASKS[task]}",
                "test label rate": f"{rate:.3f}",
                "majority baseline": f"{max(rate, 1 - rate):.4f}",
                "val accuracy": pm([r["val_accuracy"] for r in res]),
                "test accuracy": pm([r["test_accuracy"] for r in res]),
                "epochs": pm([r["epochs"] for r in res], "{:.1f}"),
            }
        )
    plots.lines_with_errors(
        by_length,
        run.path("query_by_length.png"),
        "sequence length (digits)",
        "test accuracy",
        "query accuracy by sequence length",
    )
    plots.learning_curves(
        {f"task {t}": history[f"query_{t}_seed{seeds[0]}"] for t in TASKS},
        run.path("query_curves.png"),
        metrics=("loss", "accuracy"),
    )
    table = markdown_table(rows, list(rows[0]))
    print(table, flush=True)
    return f"""Digit sequences of length {MIN_LEN}..{args.max_len} (uniform), digits stored as tokens 1..10 and
padded with token {PAD} after the end, so padding never looks like a digit; Embedding(mask_zero=True)
masks it, and a GRU(64) reads the digits alone into one summary vector. The query network embeds q,
concatenates it with the summary and answers through Dense(64) -> sigmoid ({metrics["query_params"]:,}
parameters; one model per task). {n:,} training, {max(n // 4, 64):,} validation and {max(n // 4, 64):,} test
queries per task, half of them positive by construction.

{table}

![accuracy by length](query_by_length.png)

![learning curves, seed {seeds[0]}](query_curves.png)"""


# --- the command ----------------------------------------------------------------------------------
def make_parser():
    p = cli.parser("python -m keras_cases.sequences", __doc__.split("\n\n")[0], epochs=40, batch_size=64, threads=1)
    g = p.add_argument_group("sequences")
    g.add_argument("--studies", default="changepoint,query", help="comma-separated: changepoint, query")
    g.add_argument(
        "--n-changepoint",
        type=cli.positive_int,
        default=8000,
        help="training sequences for change-point detection (validation and test: a quarter each)",
    )
    g.add_argument("--length", type=cli.positive_int, default=100, help="change-point training sequence length")
    g.add_argument(
        "--n-query",
        type=cli.positive_int,
        default=8000,
        help="training queries per task (validation and test: a quarter each)",
    )
    g.add_argument("--max-len", type=cli.positive_int, default=20, help=f"longest digit sequence (shortest: {MIN_LEN})")
    g.add_argument("--lr", type=cli.positive_float, default=3e-3, help="Adam learning rate")
    g.add_argument("--patience", type=cli.positive_int, default=4, help="early-stopping patience (epochs)")
    g.add_argument(
        "--data-seed",
        type=cli.seed,
        default=0,
        help="seed of the fixed train / validation / test sets (the same for every --seeds)",
    )
    g.set_defaults(seeds=3)
    return p


def parse_studies(text: str) -> list[str]:
    return cli.parse_list(text, "--studies", STUDIES, "study")


MAX_STEPS = 1000  # the longest sequences: the exact Bayes detector's cost grows with length squared
MAX_DATA_GB = 2.0  # the largest training set of a study held in memory


def check_args(args) -> None:
    """Refuse out-of-range task flags before anything runs."""
    if not 0 < args.lr < 1:
        raise UserError(f"--lr {args.lr} must be in (0, 1)")
    if args.length < 10:
        raise UserError(f"--length {args.length} is too short: at least 10 steps")
    if args.max_len < MIN_LEN:
        raise UserError(f"--max-len {args.max_len} is too short: sequences have {MIN_LEN} digits or more")
    for flag, v in (("--length", args.length), ("--max-len", args.max_len)):
        if v > MAX_STEPS:
            raise UserError(f"{flag} {v:,} is too long: at most {MAX_STEPS:,} steps")
    for flag, n, gb in (
        ("--n-changepoint", args.n_changepoint, args.n_changepoint * args.length * 10 * 4 / 1e9),
        ("--n-query", args.n_query, args.n_query * args.max_len * 8 / 1e9),
    ):
        if gb > MAX_DATA_GB:
            raise UserError(
                f"{flag} {n:,}: the training set would take {gb:,.1f} GB of memory, over the {MAX_DATA_GB:g} GB limit"
            )


@command
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = make_parser().parse_args(argv)
    studies = parse_studies(args.studies)
    check_args(args)
    if args.quick:  # the small preset, for the flags the user did not type
        args.epochs = args.epochs if cli.given(argv, "--epochs") else min(args.epochs, 2)
        args.patience = args.patience if cli.given(argv, "--patience") else min(args.patience, 1)
        args.n_changepoint, args.n_query = min(args.n_changepoint, 128), min(args.n_query, 256)
        args.length = min(args.length, 40)
        if not cli.given(argv, "--seeds"):
            args.seeds = 1
    t0 = time.time()
    run, info, seeds = cli.start(CASE, args, f"studies {', '.join(studies)}")
    metrics = {
        **info,
        "case": CASE,
        "seed": args.seed,
        "seeds": args.seeds,
        "data_seed": args.data_seed,
        "studies": ",".join(studies),
        "dataset": "synthetic sequences (seeded): " + ", ".join(studies),
    }
    sections, history, saved = [], {}, {}
    if "changepoint" in studies:
        sections.append(("Change-point detection", study_changepoint(args, seeds, run, metrics, history, saved)))
    if "query" in studies:
        sections.append(("Summarise and query", study_query(args, seeds, run, metrics, history, saved)))

    # the headline model: the change-point detector best on validation, else query task a
    cp = {k: v for k, v in saved.items() if k.startswith("changepoint")}
    best = max(cp, key=lambda k: cp[k][1]) if cp else "query_a"
    shutil.copyfile(saved[best][0], run.path("model.keras"))
    metrics["model"] = best
    metrics["n_train"] = sum(v for k, v in metrics.items() if k.endswith("_n_train"))
    metrics["n_test"] = sum(v for k, v in metrics.items() if k.endswith("_n_test"))
    run.write_history(history)
    run.write_json("config.json", vars(args))
    metrics["seconds"] = round(time.time() - t0, 2)
    run.write_json("metrics.json", metrics)
    body = "\n\n".join(f"## {title}\n\n{text}" for title, text in sections)
    run.write_text(
        "report.md",
        f"""# Sequences

- studies: {", ".join(studies)}; training seeds {seeds} (mean ± std over seeds), data seed {args.data_seed}
  (train / validation / test generated once from distinct streams; early stopping on validation
  loss, patience {args.patience}, at most {args.epochs} epochs; test scored once per model)
- backend: {info["backend"]} (Keras {info["keras_version"]}); {metrics["seconds"]} s
- `model.keras`: {best} (seed {seeds[0]}); every model of seed {seeds[0]} is saved as `<study>_<model>.keras`

{body}
""",
    )
    print(f"wrote {run.dir}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
