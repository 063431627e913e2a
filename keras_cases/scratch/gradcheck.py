"""Gradient checking: hand-written backward passes against centered finite differences.

    numerical df/dw_i = (f(w + h e_i) - f(w - h e_i)) / 2h          (float64, h = 1e-5)
    relative error    = max_i |a_i - n_i| / max(|a_i|, |n_i|, 1e-8)  (CS231n)

The 1e-8 floor stops gradients that are zero up to round-off from counting as 100%
errors. In float64 centered differences carry an absolute error of ~1e-11 (round-off
eps*|f|/h plus truncation h^2 f'''/6), so a correct backward pass scores ~1e-10 to 1e-8
on the parameters (pass: < 1e-7 for smooth activations; ReLU's kink can cost more
when a perturbation crosses it). Finite differences are taken w.r.t. the parameters,
as CS231n does: gradients w.r.t. the *input* of a deep or recurrent net can be 1e-8
small (the vanishing early-step gradients of BPTT), below what differences resolve.
Against another exact autodiff (Keras', see keras_check) everything is compared,
input gradients included, at ~1e-15.

`cases()` is the shared list of checks: one small network per layer type, activation
and loss, a deep network, batch norm, a convolution and the RNN over 20 steps. The same
cases are checked against Keras on every backend by `keras_check`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_cases.scratch.conv import Conv2D
from keras_cases.scratch.layers import BatchNorm, Dense, Flatten, Linear, Network, ReLU, Sigmoid, Softmax, Tanh, mlp
from keras_cases.scratch.losses import MSE, BinaryCrossEntropy, CategoricalCrossEntropy
from keras_cases.scratch.rnn import SimpleRNN

FLOOR = 1e-8


def rel_error(a, n, floor=FLOOR) -> float:
    a, n = np.asarray(a, dtype="float64"), np.asarray(n, dtype="float64")
    return float(np.max(np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)))


def numerical_grad(f, w, h=1e-5):
    """Centered differences of the scalar f() w.r.t. every entry of w (perturbed in place)."""
    grad = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        saved = w[i]
        w[i] = saved + h
        f_plus = f()
        w[i] = saved - h
        f_minus = f()
        w[i] = saved
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


@dataclass
class Case:
    net: Network
    loss: object
    x: np.ndarray
    y: np.ndarray

    def analytic(self):
        """Loss and [d/dx, d/dparams...] from the hand-written backward passes."""
        value, dx, grads = self.net.loss_and_grads(self.x, self.y, self.loss)
        return value, [dx, *grads]

    def numerical(self, h=1e-5):
        """Finite-difference gradients w.r.t. the parameters."""
        f = lambda: self.loss.forward(self.net.forward(self.x), self.y)  # noqa: E731
        return [numerical_grad(f, w, h) for w in self.net.params()]


def check(case: Case) -> float:
    """Max relative error of the hand-written parameter gradients vs finite differences."""
    _, (dx, *analytic) = case.analytic()
    return max(rel_error(a, n) for a, n in zip(analytic, case.numerical(), strict=True))


def check_all(seed=0) -> dict[str, float]:
    return {name: check(case) for name, case in cases(seed).items()}


# --- the cases ----------------------------------------------------------------------
def randomize_biases(net, rng, scale=0.1):
    """Non-zero biases and gammas != 1, so their gradients are tested at a generic point."""
    for layer in net.layers:
        for name, p in layer.params.items():
            if name in ("bias", "beta"):
                p[...] = rng.normal(0, scale, p.shape)
            elif name == "gamma":
                p[...] = 1 + rng.normal(0, scale, p.shape)
    return net


def one_hot(labels, k):
    return np.eye(k)[labels]


def cases(seed=0, batch=5, steps=20) -> dict[str, Case]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, 4))

    def dense(act, n_out=3):
        return Network([Dense(4, n_out, rng=rng), act])

    binary = rng.integers(0, 2, size=(batch, 1)).astype("float64")
    classes = one_hot(rng.integers(0, 3, size=batch), 3)
    real = rng.normal(size=(batch, 3))
    deep = [4, 8, 8, 8, 8, 3]
    mixed = Network(
        [
            Dense(4, 8, rng=rng),
            Tanh(),
            Dense(8, 8, rng=rng),
            Sigmoid(),
            Dense(8, 8, rng=rng),
            Linear(),
            Dense(8, 3, rng=rng),
            Softmax(),
        ]
    )
    # no bias before batch norm: the mean subtraction cancels it (its gradient is 0)
    bn = Network([Dense(4, 6, use_bias=False, rng=rng), BatchNorm(6), Tanh(), Dense(6, 1, rng=rng), Sigmoid()])
    images = rng.normal(size=(batch, 6, 6, 2))
    conv = Network([Conv2D(2, 3, 3, rng=rng), Tanh(), Flatten(), Dense(48, 3, rng=rng), Softmax()])
    seq = rng.normal(size=(batch, steps, 3))
    rnn_all = Network([SimpleRNN(3, 4, return_sequences=True, rng=rng)])
    rnn_last = Network([SimpleRNN(3, 4, return_sequences=False, rng=rng), Dense(4, 1, rng=rng), Sigmoid()])
    all_cases = {
        "dense + linear / mse": Case(dense(Linear()), MSE(), x, real),
        "dense + sigmoid / bce": Case(dense(Sigmoid(), 1), BinaryCrossEntropy(), x, binary),
        "dense + tanh / mse": Case(dense(Tanh()), MSE(), x, real),
        "dense + relu / mse": Case(dense(ReLU()), MSE(), x, real),
        "dense + softmax / cce": Case(dense(Softmax()), CategoricalCrossEntropy(), x, classes),
        "dense + softmax / mse": Case(dense(Softmax()), MSE(), x, classes),
        "dense + sigmoid / mse (1/2 scale)": Case(dense(Sigmoid()), MSE(0.5), x, real),
        "deep mlp tanh-sigmoid-linear / cce": Case(mixed, CategoricalCrossEntropy(), x, classes),
        "deep mlp relu (he_normal) / cce": Case(
            mlp(deep, "relu", "softmax", "he_normal", seed=seed), CategoricalCrossEntropy(), x, classes
        ),
        "batchnorm (dense-bn-tanh-dense) / bce": Case(bn, BinaryCrossEntropy(), x, binary),
        "conv2d 3x3 (conv-tanh-dense) / cce": Case(conv, CategoricalCrossEntropy(), images, classes),
        f"rnn bptt {steps} steps, all states / mse": Case(rnn_all, MSE(), seq, rng.normal(size=(batch, steps, 4))),
        f"rnn bptt {steps} steps, last state-dense / bce": Case(rnn_last, BinaryCrossEntropy(), seq, binary),
    }
    for case in all_cases.values():
        randomize_biases(case.net, rng)
    return all_cases
