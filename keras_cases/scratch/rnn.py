"""A vanilla (tanh) RNN with backpropagation through time, as keras.layers.SimpleRNN.

    h_t = tanh(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias),  h_0 = 0

BPTT walks the sequence backwards: the gradient reaching h_t is what the loss sends
to h_t directly plus what h_{t+1} sends back through the recurrent kernel. Its norm
can grow or shrink geometrically with the number of steps; clip it with
`optimizers.clip_by_global_norm` before the update.
"""

from __future__ import annotations

import numpy as np

from keras_cases.scratch.layers import INITIALIZERS, Layer


class SimpleRNN(Layer):
    def __init__(self, n_in, units, return_sequences=True, init="glorot_uniform", rng=None):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(0)
        self.params = {
            "kernel": INITIALIZERS[init]((n_in, units), rng),
            "recurrent_kernel": INITIALIZERS[init]((units, units), rng),
            "bias": np.zeros(units),
        }
        self.return_sequences = return_sequences

    def forward(self, x, training=True):
        """x: (batch, time, features) -> states (batch, time, units), or the last state."""
        self.x = x
        n, steps, _ = x.shape
        h = np.zeros((n, steps + 1, self.params["bias"].size))  # h[:, 0] is h_0 = 0
        for t in range(steps):
            h[:, t + 1] = self.step(x[:, t], h[:, t])
        self.h = h
        return h[:, 1:] if self.return_sequences else h[:, -1]

    def step(self, x_t, h_prev):
        p = self.params
        return np.tanh(x_t @ p["kernel"] + h_prev @ p["recurrent_kernel"] + p["bias"])

    def backward(self, dout):
        p, x, h = self.params, self.x, self.h
        steps = x.shape[1]
        d_states = dout if self.return_sequences else self.last_only(dout, steps)
        grads = {k: np.zeros_like(v) for k, v in p.items()}
        dx = np.zeros_like(x)
        dh_next = np.zeros_like(h[:, 0])
        for t in reversed(range(steps)):
            dz = (d_states[:, t] + dh_next) * (1.0 - h[:, t + 1] ** 2)  # through the tanh
            grads["kernel"] += x[:, t].T @ dz
            grads["recurrent_kernel"] += h[:, t].T @ dz
            grads["bias"] += dz.sum(axis=0)
            dx[:, t] = dz @ p["kernel"].T
            dh_next = dz @ p["recurrent_kernel"].T
        self.grads = grads
        return dx

    @staticmethod
    def last_only(dout, steps):
        """The gradient w.r.t. all states when only the last one reaches the loss."""
        d = np.zeros((dout.shape[0], steps, dout.shape[1]))
        d[:, -1] = dout
        return d
