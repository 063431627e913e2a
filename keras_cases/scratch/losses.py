"""Losses with closed-form gradients, reduced like Keras' (mean over the batch).

`forward(pred, target)` returns the loss as a float and caches; `backward()` returns
d loss / d pred. Probabilities are clipped to [EPSILON, 1 - EPSILON] as Keras does
(keras.config.epsilon()), and a clipped prediction gets zero gradient, as in Keras.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-7


class Loss:
    def __call__(self, pred, target):
        return self.forward(pred, target)


class BinaryCrossEntropy(Loss):
    """-mean(y log p + (1 - y) log(1 - p)); p is a sigmoid output."""

    name = "binary_crossentropy"

    def forward(self, pred, target):
        self.p, self.y = np.clip(pred, EPSILON, 1 - EPSILON), target
        self.inside = self.p == pred
        return float(-np.mean(target * np.log(self.p) + (1 - target) * np.log(1 - self.p)))

    def backward(self):
        grad = (self.p - self.y) / (self.p * (1 - self.p)) / self.p.size
        return grad * self.inside


class CategoricalCrossEntropy(Loss):
    """-mean over examples of sum_k y_k log p_k; p is a softmax output, y one-hot.

    (Keras first divides p by its sum; for a softmax output that sum is 1. After a
    softmax, the gradient w.r.t. the logits is (p - y) / n either way.)
    """

    name = "categorical_crossentropy"

    def forward(self, pred, target):
        self.p, self.y = np.clip(pred, EPSILON, 1 - EPSILON), target
        self.inside = self.p == pred
        self.n = pred.size // pred.shape[-1]
        return float(-np.sum(target * np.log(self.p)) / self.n)

    def backward(self):
        return -self.y / self.p / self.n * self.inside


class MSE(Loss):
    """scale * mean((p - y)^2); scale=0.5 is the textbook 1/2 (y - y_hat)^2."""

    name = "mean_squared_error"

    def __init__(self, scale=1.0):
        self.scale = scale

    def forward(self, pred, target):
        self.diff = pred - target
        return float(self.scale * np.mean(self.diff**2))

    def backward(self):
        return 2.0 * self.scale * self.diff / self.diff.size


LOSSES = {"bce": BinaryCrossEntropy, "cce": CategoricalCrossEntropy, "mse": MSE}
