"""Recurrent cells written with keras.ops (so they run on every backend), the hidden-state
probe, and the spectral-radius callback.

- `GatedLSTMCell(units, open_gate=None)`  Keras' LSTMCell, step for step (same weights, same
  layout: kernel (in, 4u), recurrent_kernel (u, 4u), bias (4u), gates i, f, c, o), except
  that one gate, "input", "forget" or "output", can be held open at 1.
- `GatedGRUCell(units, open_gate=None)`  Keras' GRUCell (reset_after=True, bias (2, 3u),
  gates z, r, h); "reset" holds the reset gate open at 1.
- `HiddenProbeCell(cell)`  wraps any cell so that the step's input carries an extra
  `units` features, eps_t, added to the hidden state h_t before it goes on to the next
  step and to the output. With eps = 0 the network is unchanged, and dL/d eps_t is dL/d h_t,
  through every later step: the gradient w.r.t. a hidden state, with nothing but
  `runtime.value_and_grad` (eps is a Keras variable).
- `SpectralRadius`  logs the spectral radius (largest |eigenvalue|) of the recurrent
  matrix at the start and after every epoch: the whole u x u matrix of a SimpleRNN, the
  candidate block (the one that writes new content) of an LSTM or GRU.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_cases import runtime

LSTM_GATES = ("input", "forget", "output")
GRU_GATES = ("reset",)


class _Cell(keras.layers.Layer):
    """kernel_initializer: Keras' glorot_uniform by default; "zeros" where the weights are
    drawn afterwards anyway (runtime.init_weights)."""

    def __init__(self, units, open_gate=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units, self.open_gate = int(units), open_gate
        self.init = keras.initializers.get(kernel_initializer)
        self.output_size = self.units

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "open_gate": self.open_gate,
            "kernel_initializer": keras.initializers.serialize(self.init),
        }


def _check_gate(open_gate, allowed, cell):
    if open_gate not in (None, *allowed):
        raise ValueError(f"{cell}: open_gate must be one of {allowed} or None, not {open_gate!r}")


@keras.saving.register_keras_serializable(package="keras_cases")
class GatedLSTMCell(_Cell):
    def __init__(self, units, open_gate=None, **kwargs):
        _check_gate(open_gate, LSTM_GATES, "GatedLSTMCell")
        super().__init__(units, open_gate, **kwargs)
        self.state_size = [self.units, self.units]

    def build(self, input_shape):
        u = self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], 4 * u), name="kernel", initializer=self.init)
        self.recurrent_kernel = self.add_weight(shape=(u, 4 * u), name="recurrent_kernel", initializer=self.init)
        self.bias = self.add_weight(shape=(4 * u,), name="bias", initializer="zeros")

    def call(self, inputs, states, training=False):
        h_tm1, c_tm1 = states[0], states[1]
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_tm1, self.recurrent_kernel) + self.bias
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        one = ops.ones_like(z_i)
        i = one if self.open_gate == "input" else ops.sigmoid(z_i)
        f = one if self.open_gate == "forget" else ops.sigmoid(z_f)
        o = one if self.open_gate == "output" else ops.sigmoid(z_o)
        c = f * c_tm1 + i * ops.tanh(z_c)
        h = o * ops.tanh(c)
        return h, [h, c]


@keras.saving.register_keras_serializable(package="keras_cases")
class GatedGRUCell(_Cell):
    def __init__(self, units, open_gate=None, **kwargs):
        _check_gate(open_gate, GRU_GATES, "GatedGRUCell")
        super().__init__(units, open_gate, **kwargs)
        self.state_size = [self.units]

    def build(self, input_shape):
        u = self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], 3 * u), name="kernel", initializer=self.init)
        self.recurrent_kernel = self.add_weight(shape=(u, 3 * u), name="recurrent_kernel", initializer=self.init)
        self.bias = self.add_weight(shape=(2, 3 * u), name="bias", initializer="zeros")

    def call(self, inputs, states, training=False):
        h_tm1 = states[0]
        x_z, x_r, x_h = ops.split(ops.matmul(inputs, self.kernel) + self.bias[0], 3, axis=-1)
        r_z, r_r, r_h = ops.split(ops.matmul(h_tm1, self.recurrent_kernel) + self.bias[1], 3, axis=-1)
        z = ops.sigmoid(x_z + r_z)
        r = ops.ones_like(z) if self.open_gate == "reset" else ops.sigmoid(x_r + r_r)
        hh = ops.tanh(x_h + r * r_h)
        h = z * h_tm1 + (1.0 - z) * hh
        return h, [h]


class HiddenProbeCell(keras.layers.Layer):
    """`cell` with an additive perturbation eps_t on its hidden state (the last `units`
    input features); the other states (an LSTM's carry) pass through untouched."""

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.units = cell.units
        size = cell.state_size
        self.state_size = list(size) if isinstance(size, (list, tuple)) else [size]
        self.output_size = self.units

    def build(self, input_shape):
        self.cell.build((*input_shape[:-1], input_shape[-1] - self.units))

    def call(self, inputs, states, training=False):
        x, eps = inputs[:, : -self.units], inputs[:, -self.units :]
        out, new = self.cell.call(x, list(states), training=training)
        h = out + eps
        return h, [h, *list(new)[1:]]


def recurrent_radius(layer) -> float:
    """Spectral radius of `layer`'s recurrent matrix (candidate block for LSTM / GRU)."""
    cell = getattr(layer, "cell", layer)
    cell = getattr(cell, "cell", cell)  # a HiddenProbeCell's inner cell
    w = np.asarray(ops.convert_to_numpy(cell.recurrent_kernel), "float64")
    u = w.shape[0]
    if w.shape[1] == 4 * u:  # LSTM: i, f, c, o
        w = w[:, 2 * u : 3 * u]
    elif w.shape[1] == 3 * u:  # GRU: z, r, h
        w = w[:, 2 * u :]
    return float(np.max(np.abs(np.linalg.eigvals(w))))


class SpectralRadius(keras.callbacks.Callback):
    """Log `recurrent_radius` (of the layer named `layer`) before training and after every
    epoch; `self.values[0]` is the initial one, `self.values[k]` after epoch k."""

    def __init__(self, layer="rnn"):
        super().__init__()
        self.layer = layer
        self.values = []

    def _radius(self):
        return recurrent_radius(self.model.get_layer(self.layer))

    def on_train_begin(self, logs=None):
        self.values = [self._radius()]

    def on_epoch_end(self, epoch, logs=None):
        self.values.append(self._radius())
        if logs is not None:
            logs["recurrent_radius"] = self.values[-1]

    def resume_state(self) -> dict:  # a resumed fit (callbacks.Resumable) keeps the earlier values
        return {"values": list(self.values)}

    def resume_from(self, state: dict) -> None:
        self.values = list(state["values"])


def hidden_state_gradients(probe, x, y, batch_size=None) -> np.ndarray:
    """Per-timestep mean over examples of ||dL/dh_t||, where L is the cross-entropy of the
    model's *last* output step and `probe` takes [x, eps] (see HiddenProbeCell) and
    returns (n, out_steps, classes) probabilities. Returns a float64 array (steps,)."""
    steps = x.shape[1]
    units = probe.get_layer("rnn").cell.units
    n = len(x)
    eps = keras.Variable(np.zeros((n, steps, units), "float32"), trainable=True, name="eps")
    target = ops.convert_to_tensor(np.asarray(y)[:, -1])

    def loss():
        p = probe([ops.convert_to_tensor(x), eps.value], training=False)[:, -1]
        return ops.sum(keras.losses.sparse_categorical_crossentropy(target, p))

    _, (g,) = runtime.value_and_grad(loss, [eps])
    return np.linalg.norm(g.astype("float64"), axis=-1).mean(0)
