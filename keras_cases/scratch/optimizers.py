"""Optimizers with the exact update rules and defaults of keras.optimizers.

`step(params, grads)` updates the parameter arrays in place (so a Network sees the new
weights); state is kept per parameter index. Read against keras/src/optimizers/*.py:

- SGD:      m = momentum*m - lr*g;  w += m  (Nesterov: w += momentum*m - lr*g)
- RMSprop:  v = rho*v + (1-rho)*g^2;  w -= lr*g / sqrt(v + eps)   (eps INSIDE the root;
            defaults lr 1e-3, rho 0.9, eps 1e-7; centered subtracts the squared mean
            gradient inside the root; momentum accumulates the increments)
- Adam:     m += (1-b1)(g-m);  v += (1-b2)(g^2-v);
            w -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)   (eps OUTSIDE the root
            and not bias-corrected; defaults lr 1e-3, b1 0.9, b2 0.999, eps 1e-7)
"""

from __future__ import annotations

import numpy as np


class Optimizer:
    def __init__(self, learning_rate):
        self.learning_rate = learning_rate
        self.iterations = 0
        self.slots: dict[str, dict[int, np.ndarray]] = {}

    def slot(self, name, i, like):
        """State array `name` for parameter i, zeros the first time it is asked for."""
        arrays = self.slots.setdefault(name, {})
        if i not in arrays:
            arrays[i] = np.zeros_like(like)
        return arrays[i]

    def step(self, params, grads):
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            self.update(i, p, g)
        self.iterations += 1

    def update(self, i, p, g):
        raise NotImplementedError


class SGD(Optimizer):
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate)
        self.momentum, self.nesterov = momentum, nesterov

    def update(self, i, p, g):
        lr = self.learning_rate
        if self.momentum == 0:
            p -= lr * g
            return
        m = self.slot("momentum", i, p)
        m[...] = self.momentum * m - lr * g
        p += self.momentum * m - lr * g if self.nesterov else m


class RMSprop(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
        super().__init__(learning_rate)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def update(self, i, p, g):
        v = self.slot("velocity", i, p)
        v[...] = self.rho * v + (1 - self.rho) * g**2
        denominator = v + self.epsilon
        if self.centered:
            a = self.slot("average_gradient", i, p)
            a[...] = self.rho * a + (1 - self.rho) * g
            denominator = v - a**2 + self.epsilon
        increment = self.learning_rate * g / np.sqrt(denominator)
        if self.momentum > 0:
            m = self.slot("momentum", i, p)
            m[...] = self.momentum * m + increment
            increment = m
        p -= increment


class Adam(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False):
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def update(self, i, p, g):
        t = self.iterations + 1
        alpha = self.learning_rate * np.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        m, v = self.slot("m", i, p), self.slot("v", i, p)
        m += (g - m) * (1 - self.beta_1)
        v += (g**2 - v) * (1 - self.beta_2)
        if self.amsgrad:
            v_hat = self.slot("v_hat", i, p)
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        p -= m * alpha / (np.sqrt(v) + self.epsilon)


def global_norm(grads) -> float:
    return float(np.sqrt(sum(np.sum(g**2) for g in grads)))


def clip_by_global_norm(grads, max_norm):
    """Scale all gradients by max_norm / max(norm, max_norm), like Keras' global_clipnorm."""
    scale = max_norm / max(global_norm(grads), max_norm)
    return [g * scale for g in grads]


# The optimizers the case study compares; learning rates are per-optimizer defaults
# for full-batch training on the toy data (Keras' own default lr is 0.01 / 0.001).
def make(name: str, learning_rate: float | None = None) -> Optimizer:
    lr = learning_rate if learning_rate is not None else DEFAULT_LR[name]
    return {
        "gd": lambda: SGD(lr),
        "momentum": lambda: SGD(lr, momentum=0.9),
        "nesterov": lambda: SGD(lr, momentum=0.9, nesterov=True),
        "rmsprop": lambda: RMSprop(lr),
        "adam": lambda: Adam(lr),
    }[name]()


DEFAULT_LR = {"gd": 0.5, "momentum": 0.05, "nesterov": 0.05, "rmsprop": 0.01, "adam": 0.01}
