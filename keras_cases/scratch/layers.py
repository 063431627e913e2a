"""Layers with closed-form backward passes, and a Network that stacks them.

Every layer has `forward(x)` (which caches what the backward pass needs), `backward(dout)`
(which returns d loss / d input and stores d loss / d parameter in `self.grads`), and
`params` / `grads` dicts whose keys are Keras' weight names (kernel, bias, gamma, beta),
so a scratch network maps one to one onto a Keras model.

Weights have Keras' layout: a Dense kernel is (n_in, n_out) and `y = x @ kernel + bias`.
"""

from __future__ import annotations

import numpy as np


# --- initializers (Keras' VarianceScaling definitions) ------------------------------
def fans(shape) -> tuple[int, int]:
    """fan_in, fan_out of a kernel shape; a conv kernel's receptive field counts in both."""
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def truncated_normal(std, shape, rng):
    """Normal draws, those beyond two standard deviations drawn again."""
    z = rng.standard_normal(shape)
    while np.any(bad := np.abs(z) > 2):
        z[bad] = rng.standard_normal(int(bad.sum()))
    return std * z


# Keras divides the truncated normal's std by 0.8796..., the std of a unit normal cut at +-2.
TRUNCATION = 0.87962566103423978


def glorot_uniform(shape, rng):
    fan_in, fan_out = fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def glorot_normal(shape, rng):
    fan_in, fan_out = fans(shape)
    return truncated_normal(np.sqrt(2.0 / (fan_in + fan_out)) / TRUNCATION, shape, rng)


def he_uniform(shape, rng):
    limit = np.sqrt(6.0 / fans(shape)[0])
    return rng.uniform(-limit, limit, size=shape)


def he_normal(shape, rng):
    return truncated_normal(np.sqrt(2.0 / fans(shape)[0]) / TRUNCATION, shape, rng)


INITIALIZERS = {f.__name__: f for f in (glorot_uniform, glorot_normal, he_uniform, he_normal)}


# --- the layer interface ------------------------------------------------------------
class Layer:
    """A differentiable function with (possibly no) parameters."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x, training=True):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def __call__(self, x, training=True):
        return self.forward(x, training)

    def __repr__(self):
        shapes = ", ".join(f"{k}{v.shape}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"


class Dense(Layer):
    def __init__(self, n_in, n_out, init="glorot_uniform", use_bias=True, rng=None):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(0)
        self.params["kernel"] = INITIALIZERS[init]((n_in, n_out), rng)
        if use_bias:
            self.params["bias"] = np.zeros(n_out)

    def forward(self, x, training=True):
        self.x = x
        out = x @ self.params["kernel"]
        return out + self.params["bias"] if "bias" in self.params else out

    def backward(self, dout):
        self.grads["kernel"] = self.x.T @ dout
        if "bias" in self.params:
            self.grads["bias"] = dout.sum(axis=0)
        return dout @ self.params["kernel"].T


# --- activations --------------------------------------------------------------------
class Linear(Layer):
    name = "linear"

    def forward(self, x, training=True):
        return x

    def backward(self, dout):
        return dout


class Sigmoid(Layer):
    name = "sigmoid"

    def forward(self, x, training=True):
        self.y = np.exp(-np.logaddexp(0.0, -x))  # 1 / (1 + e^-x) without overflow
        return self.y

    def backward(self, dout):
        return dout * self.y * (1.0 - self.y)


class Tanh(Layer):
    name = "tanh"

    def forward(self, x, training=True):
        self.y = np.tanh(x)
        return self.y

    def backward(self, dout):
        return dout * (1.0 - self.y**2)


class ReLU(Layer):
    name = "relu"

    def forward(self, x, training=True):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


class Softmax(Layer):
    """Softmax over the last axis. Backward: the Jacobian diag(y) - y y^T applied to dout."""

    name = "softmax"

    def forward(self, x, training=True):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        self.y = e / e.sum(axis=-1, keepdims=True)
        return self.y

    def backward(self, dout):
        return self.y * (dout - np.sum(dout * self.y, axis=-1, keepdims=True))


ACTIVATIONS = {cls.name: cls for cls in (Linear, Sigmoid, Tanh, ReLU, Softmax)}


def activation(name: str) -> Layer:
    return ACTIVATIONS[name]()


# --- normalisation and reshaping ------------------------------------------------------
class BatchNorm(Layer):
    """Batch normalisation over the batch axis, as keras.layers.BatchNormalization.

    Training: normalise with the batch mean and (biased) variance and update the moving
    averages; inference: use the moving averages. Keras' defaults: epsilon 1e-3,
    momentum 0.99.
    """

    def __init__(self, n, epsilon=1e-3, momentum=0.99):
        super().__init__()
        self.params = {"gamma": np.ones(n), "beta": np.zeros(n)}
        self.moving_mean, self.moving_variance = np.zeros(n), np.ones(n)
        self.epsilon, self.momentum = epsilon, momentum

    def forward(self, x, training=True):
        if training:
            mean, var = x.mean(axis=0), x.var(axis=0)
            self.moving_mean = self.momentum * self.moving_mean + (1 - self.momentum) * mean
            self.moving_variance = self.momentum * self.moving_variance + (1 - self.momentum) * var
        else:
            mean, var = self.moving_mean, self.moving_variance
        self.inv_std = 1.0 / np.sqrt(var + self.epsilon)
        self.x_hat = (x - mean) * self.inv_std
        return self.params["gamma"] * self.x_hat + self.params["beta"]

    def backward(self, dout):
        """Training-mode backward (the mean and variance depend on the batch too)."""
        self.grads["gamma"] = np.sum(dout * self.x_hat, axis=0)
        self.grads["beta"] = dout.sum(axis=0)
        n = dout.shape[0]
        dx_hat = dout * self.params["gamma"]
        return self.inv_std / n * (n * dx_hat - dx_hat.sum(axis=0) - self.x_hat * np.sum(dx_hat * self.x_hat, axis=0))


class Flatten(Layer):
    def forward(self, x, training=True):
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dout):
        return dout.reshape(self.shape)


# --- the network ----------------------------------------------------------------------
class Network:
    """A stack of layers: forward left to right, backward right to left."""

    def __init__(self, layers):
        self.layers = list(layers)

    def forward(self, x, training=True):
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    __call__ = forward

    def predict(self, x):
        return self.forward(x, training=False)

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def params(self) -> list[np.ndarray]:
        """Parameter arrays in Keras' order (kernel, bias per layer); updated in place."""
        return [p for layer in self.layers for p in layer.params.values()]

    def grads(self) -> list[np.ndarray]:
        return [layer.grads[k] for layer in self.layers for k in layer.params]

    def loss_and_grads(self, x, y, loss):
        """Loss value, d loss / d input, and the parameter gradients (same order as params)."""
        value = loss.forward(self.forward(x), y)
        dx = self.backward(loss.backward())
        return value, dx, self.grads()

    def get_weights(self):
        return [p.copy() for p in self.params()]

    def set_weights(self, weights):
        for p, w in zip(self.params(), weights, strict=True):
            p[...] = w

    def __repr__(self):
        return "Network([" + ", ".join(map(repr, self.layers)) + "])"


def mlp(sizes, hidden="tanh", output="sigmoid", init="glorot_uniform", use_bias=True, seed=0):
    """The architecture [n0, n1, ..., nL]: Dense + `hidden` activation between the sizes,
    Dense + `output` activation at the end. [2, 1] is a single neuron."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layers += [Dense(n_in, n_out, init, use_bias, rng), activation(output if last else hidden)]
    return Network(layers)
