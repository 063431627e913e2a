"""The seeded synthetic sequences of both studies (no Keras import): change points with the
exact Bayes posterior, and digit sequences with queries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_cases import UserError

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


class Columns:
    """Named arrays indexed together: lets data.batches shuffle a two-input model's data."""

    def __init__(self, **arrays):
        self.arrays = arrays

    def __len__(self):
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, j):
        return {k: v[j] for k, v in self.arrays.items()}
