"""A 2-D convolution (stride 1, 'valid' padding, channels last), as keras.layers.Conv2D.

Like every deep-learning "convolution" it is a cross-correlation:

    out[n, i, j, o] = sum_{p, q, c} x[n, i+p, j+q, c] * kernel[p, q, c, o] + bias[o]

Forward and backward loop over the kh * kw kernel offsets only; each offset is one
matrix product over (batch, positions) x channels.
"""

from __future__ import annotations

import numpy as np

from keras_cases.scratch.layers import INITIALIZERS, Layer


class Conv2D(Layer):
    def __init__(self, in_channels, filters, kernel_size=3, init="glorot_uniform", rng=None):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(0)
        k = kernel_size
        self.params = {"kernel": INITIALIZERS[init]((k, k, in_channels, filters), rng), "bias": np.zeros(filters)}

    def out_size(self, x):
        kh, kw = self.params["kernel"].shape[:2]
        return x.shape[1] - kh + 1, x.shape[2] - kw + 1

    def forward(self, x, training=True):
        self.x = x
        kernel = self.params["kernel"]
        oh, ow = self.out_size(x)
        out = np.zeros((x.shape[0], oh, ow, kernel.shape[3]))
        for p in range(kernel.shape[0]):
            for q in range(kernel.shape[1]):
                out += x[:, p : p + oh, q : q + ow, :] @ kernel[p, q]
        return out + self.params["bias"]

    def backward(self, dout):
        x, kernel = self.x, self.params["kernel"]
        oh, ow = self.out_size(x)
        dx, dk = np.zeros_like(x), np.zeros_like(kernel)
        for p in range(kernel.shape[0]):
            for q in range(kernel.shape[1]):
                window = x[:, p : p + oh, q : q + ow, :]
                dk[p, q] = np.einsum("nijc,nijo->co", window, dout)
                dx[:, p : p + oh, q : q + ow, :] += dout @ kernel[p, q].T
        self.grads = {"kernel": dk, "bias": dout.sum(axis=(0, 1, 2))}
        return dx
