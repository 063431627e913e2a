"""Seeded synthetic sequence tasks, in NumPy (no Keras import).

The copy task (Hochreiter & Schmidhuber 1997; the layout of Arjovsky et al. 2016)
--------------------------------------------------------------------------------
Tokens: 0 is blank, 1..K are the symbols, K+1 is the delimiter. With S symbols and a
delay T the input has T + 2S steps:

    step    0 .. S-1     S .. S+T-2     S+T-1        S+T .. S+T+S-1
    input   symbols      blanks         delimiter    blanks
    target  -            -              -            the S symbols, in order

so every symbol has to be held for exactly S + T steps. The model is read (and scored,
per token) only on the S steps after the delimiter; guessing gives 1/K.

Three kinds of series (a 3-class sequence task)
-----------------------------------------------
0 trend        a straight line with a random slope (either sign) and Gaussian noise
1 sine         a sine with random amplitude, period and phase, and Gaussian noise
2 random walk  cumulative sums of Gaussian steps
Each series is standardized on its own (zero mean, unit std), so the class is in the
shape, not the scale. Classes are exactly balanced (n // 3 each, the remainder spread
over the first classes) and shuffled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLANK = 0
SERIES_CLASSES = ("trend", "sine", "random walk")


@dataclass(frozen=True)
class CopyTask:
    """The copy task's sizes: `delay` T, `n_symbols` S, `alphabet` K."""

    delay: int
    n_symbols: int = 4
    alphabet: int = 8

    @property
    def steps(self) -> int:
        return self.delay + 2 * self.n_symbols

    @property
    def delimiter(self) -> int:  # the delimiter token
        return self.alphabet + 1

    @property
    def delimiter_step(self) -> int:
        return self.n_symbols + self.delay - 1

    @property
    def n_tokens(self) -> int:  # blank, K symbols, delimiter
        return self.alphabet + 2

    def tokens(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(x, y): x (n, steps) int tokens; y (n, S) the symbols to reproduce, as 0..K-1."""
        if self.delay < 1 or self.n_symbols < 1 or self.alphabet < 2:
            raise ValueError(f"bad copy task {self}")
        rng = np.random.default_rng(seed)
        symbols = rng.integers(1, self.alphabet + 1, size=(n, self.n_symbols))
        x = np.full((n, self.steps), BLANK, dtype="int32")
        x[:, : self.n_symbols] = symbols
        x[:, self.delimiter_step] = self.delimiter
        return x, (symbols - 1).astype("int32")

    def one_hot(self, x: np.ndarray) -> np.ndarray:
        return np.eye(self.n_tokens, dtype="float32")[x]

    def data(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(x one-hot (n, steps, K+2) float32, y (n, S) int32)."""
        x, y = self.tokens(n, seed)
        return self.one_hot(x), y


def series(n: int, steps: int, seed: int, noise: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, steps, 1) float32, y (n,) int32 in 0..2): trend / sine / random walk."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 3).astype("int32")
    t = np.arange(steps, dtype="float64")
    x = np.empty((n, steps))
    for i, c in enumerate(y):
        if c == 0:
            slope = rng.uniform(0.5, 3.0) / steps * rng.choice((-1, 1))  # rises 0.5..3 overall
            x[i] = slope * t + noise * rng.normal(size=steps)
        elif c == 1:
            period = rng.uniform(6, 30)
            amp = rng.uniform(0.5, 1.5)
            x[i] = amp * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi)) + noise * rng.normal(size=steps)
        else:
            x[i] = np.cumsum(rng.normal(0, 0.3, size=steps))
    x = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-8)
    return x[..., None].astype("float32"), y


# --- fixed train / validation / test sets ----------------------------------------------
@dataclass(frozen=True)
class Sizes:
    n_symbols: int = 3  # symbols to copy
    alphabet: int = 8  # distinct symbols (chance: 1 / alphabet)
    units: int = 64  # hidden units of every recurrent layer
    n_train: int = 4000
    n_val: int = 1024
    n_test: int = 2048
    series_steps: int = 50
    series_train: int = 3072
    series_val: int = 768
    series_test: int = 1536
    probe_examples: int = 256  # validation sequences the gradient norms are averaged over


@dataclass
class Split:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def split_seeds(data_seed: int, task_id: int) -> tuple[list[int], list[int], list[int]]:
    """Three distinct generator seeds (train, validation, test) for one task: the sets
    stay fixed whatever seed the models are trained with."""
    return [data_seed, task_id, 0], [data_seed, task_id, 1], [data_seed, task_id, 2]


def load_copy(task: CopyTask, sizes: Sizes, data_seed: int) -> Split:
    s = split_seeds(data_seed, task.delay)
    return Split(
        f"copy{task.delay}",
        *task.data(sizes.n_train, s[0]),
        *task.data(sizes.n_val, s[1]),
        *task.data(sizes.n_test, s[2]),
    )


def load_series(sizes: Sizes, data_seed: int) -> Split:
    s = split_seeds(data_seed, 0)
    n = (sizes.series_train, sizes.series_val, sizes.series_test)
    return Split(
        "series",
        *series(n[0], sizes.series_steps, s[0]),
        *series(n[1], sizes.series_steps, s[1]),
        *series(n[2], sizes.series_steps, s[2]),
    )
