"""Parameter counts in closed form, and the widest network of each family within a budget
(see the formulas in keras_cases/architecture/case.py's docstring). NumPy only: no Keras."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from keras_cases import UserError

DEPTHS = (1, 2, 3, 4, 5)
SHAPES = ("uniform", "decreasing", "increasing")


@dataclass(frozen=True)
class Spec:
    """One network: family, its sizes (MLP widths, CNN channels, GRU units), training."""

    family: str  # "linear", "mlp", "cnn" or "gru"
    sizes: tuple = ()
    activation: str = "relu"  # the MLP's hidden activation (CNN: relu, GRU: tanh)
    optimizer: str = "adam"

    @property
    def label(self) -> str:
        if self.family == "linear":
            name = "linear softmax"
        elif self.family == "mlp":
            name = f"MLP {'-'.join(map(str, self.sizes))} {self.activation}"
        else:
            name = f"{self.family.upper()} {self.sizes[0]}" + (" ch" if self.family == "cnn" else " units")
        return name + ("" if self.optimizer == "adam" else f" {self.optimizer}")


def largest_root(a: float, b: float, c: float, budget: int) -> float:
    """The largest real s with a s^2 + b s + c <= budget."""
    if a == 0:
        return (budget - c) / b
    return (-b + math.sqrt(b * b + 4 * a * (budget - c))) / (2 * a)


def shape_ratios(shape: str, depth: int) -> list[float]:
    halving = [0.5**i for i in range(depth)]
    return {"uniform": [1.0] * depth, "decreasing": halving, "increasing": halving[::-1]}[shape]


def mlp_params(d: int, widths, k: int) -> int:
    sizes = [d, *widths, k]
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:]))


def mlp_widths(budget: int, d: int, k: int, depth: int, shape: str = "uniform") -> tuple:
    """Hidden widths of the widest MLP of `depth` layers within `budget` (module docstring)."""
    r = shape_ratios(shape, depth)
    a = sum(r[i - 1] * r[i] for i in range(1, depth))
    b = d * r[0] + sum(r) + k * r[-1]
    w = largest_root(a, b, k, budget)
    widths = tuple(int(np.floor(ri * w + 1e-9)) for ri in r)
    if min(widths) < 1:
        raise UserError(f"budget {budget:,} is too small for a {shape} MLP of depth {depth} on {d} inputs")
    return widths


def cnn_layout(shape) -> tuple[int, int, int]:
    """(kernel size, conv blocks, positions left): 5-wide kernels on a signal, 3x3 on an
    image; up to 3 blocks of two 'same' convolutions and a 2x max-pool."""
    kernel = 5 if len(shape) == 1 else 3
    blocks, side = 0, min(shape)
    while blocks < 3 and side // 2 >= 2:
        side //= 2
        blocks += 1
    left = int(np.prod([n // 2**blocks for n in shape]))
    return kernel, blocks, left


def cnn_params(shape, k: int, channels: int) -> int:
    """(2B-1) K c^2 + (K + 2B + S k) c + k for B blocks, K = kernel taps, S positions left."""
    kernel, blocks, left = cnn_layout(shape)
    taps = kernel ** len(shape)
    c = channels
    return (2 * blocks - 1) * taps * c * c + (taps + 2 * blocks + left * k) * c + k


def cnn_channels(budget: int, shape, k: int) -> int:
    kernel, blocks, left = cnn_layout(shape)
    taps = kernel ** len(shape)
    c = int(np.floor(largest_root((2 * blocks - 1) * taps, taps + 2 * blocks + left * k, k, budget) + 1e-9))
    if c < 1:
        raise UserError(f"budget {budget:,} is too small for a CNN on inputs of shape {shape}")
    return c


def as_sequence(shape) -> tuple[int, int]:
    """A signal is (length, 1) steps; an image is read row by row, (height, width)."""
    return (shape[0], 1) if len(shape) == 1 else (shape[0], int(np.prod(shape[1:])))


def gru_params(shape, k: int, units: int) -> int:
    """3 u^2 + (3 F + 6 + k) u + k: Keras' GRU (reset_after, two bias rows) and a softmax."""
    f = as_sequence(shape)[1]
    return 3 * units * units + (3 * f + 6 + k) * units + k


def gru_units(budget: int, shape, k: int) -> int:
    f = as_sequence(shape)[1]
    u = int(np.floor(largest_root(3, 3 * f + 6 + k, k, budget) + 1e-9))
    if u < 1:
        raise UserError(f"budget {budget:,} is too small for a GRU on inputs of shape {shape}")
    return u


def count_params(spec: Spec, shape, k: int) -> int:
    """The parameter count of `build_model(spec, shape, k)`, without building it."""
    d = int(np.prod(shape))
    if spec.family in ("linear", "mlp"):
        return mlp_params(d, spec.sizes, k)
    if spec.family == "cnn":
        return cnn_params(shape, k, spec.sizes[0])
    return gru_params(shape, k, spec.sizes[0])


def for_budget(
    family: str, budget: int, shape, k: int, depth: int = 3, mlp_shape="uniform", activation="relu", optimizer="adam"
) -> Spec:
    """The largest network of a family within `budget` parameters."""
    if family == "mlp":
        sizes = mlp_widths(budget, int(np.prod(shape)), k, depth, mlp_shape)
    elif family == "cnn":
        sizes = (cnn_channels(budget, shape, k),)
    elif family == "gru":
        sizes = (gru_units(budget, shape, k),)
    else:
        raise ValueError(f"unknown family {family!r}")
    return Spec(family, sizes, activation, optimizer)
