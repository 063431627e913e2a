"""The case's Keras models: one recurrent layer (Keras' own, or this case's keras.ops cell)
on the copy task and on the series task, with NumPy-drawn weights and gate biases."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from keras_cases import runtime
from keras_cases.rnn.cells import GatedGRUCell, GatedLSTMCell, HiddenProbeCell
from keras_cases.rnn.tasks import SERIES_CLASSES, CopyTask

KINDS = ("simple_rnn", "lstm", "gru")
LABELS = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}

# Every weight is drawn by init_model (from NumPy, the same on every backend), so the
# layers are built with "zeros" placeholders: Keras' random initialisers would only be
# overwritten, and on JAX each one compiles (seconds per model on a busy machine).
ZEROS = {"kernel_initializer": "zeros", "bias_initializer": "zeros"}
RECURRENT = {**ZEROS, "recurrent_initializer": "zeros"}


def make_cell(kind, units, open_gate=None, custom=False):
    """Keras' own cell, or this case's keras.ops cell (custom=True or a gate held open)."""
    if kind == "lstm" and (custom or open_gate):
        return GatedLSTMCell(units, open_gate, kernel_initializer="zeros")
    if kind == "gru" and (custom or open_gate):
        return GatedGRUCell(units, open_gate, kernel_initializer="zeros")
    return {"simple_rnn": layers.SimpleRNNCell, "lstm": layers.LSTMCell, "gru": layers.GRUCell}[kind](
        units, **RECURRENT
    )


def rnn_layer(kind, units, open_gate=None, custom=False, return_sequences=True, unroll=False):
    """unroll=True: a Python loop over the time steps instead of a symbolic loop (scan /
    while_loop); for the --quick run's few short sequences, run eagerly, where it saves
    compiling the loop."""
    opts = {"return_sequences": return_sequences, "unroll": unroll, "name": "rnn"}
    if custom or open_gate:
        return layers.RNN(make_cell(kind, units, open_gate, True), **opts)
    cls = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}[kind]
    return cls(units, **opts, **RECURRENT)


def build_copy_model(task: CopyTask, kind, units, open_gate=None, custom=False, probe=False, unroll=False):
    """One-hot tokens -> recurrent layer (every step) -> the S steps after the delimiter ->
    softmax over the K symbols. probe=True adds a second input, eps (steps, units), added
    to every hidden state (cells.HiddenProbeCell); the weights are the same list."""
    tokens = keras.Input((task.steps, task.n_tokens), name="tokens")
    if probe:
        eps = keras.Input((task.steps, units), name="eps")
        cell = HiddenProbeCell(make_cell(kind, units, open_gate, custom))
        # unrolled: differentiated eagerly (runtime.value_and_grad), a Python loop of small
        # ops is quicker than compiling a scan forward and backward for each probe
        seq = layers.RNN(cell, return_sequences=True, unroll=True, name="rnn")(
            layers.Concatenate(name="with_eps")([tokens, eps])
        )
        inputs = [tokens, eps]
    else:
        seq = rnn_layer(kind, units, open_gate, custom, unroll=unroll)(tokens)
        inputs = tokens
    h = layers.Cropping1D((task.steps - task.n_symbols, 0), name="after_delimiter")(seq)
    out = layers.Dense(task.alphabet, activation="softmax", name="symbol", **ZEROS)(h)
    return keras.Model(inputs, out, name=f"copy{task.delay}_{kind}{'_' + open_gate if open_gate else ''}")


def build_series_model(steps, kind, units, open_gate=None, custom=False, unroll=False):
    x = keras.Input((steps, 1), name="series")
    h = rnn_layer(kind, units, open_gate, custom, return_sequences=False, unroll=unroll)(x)
    out = layers.Dense(len(SERIES_CLASSES), activation="softmax", name="kind", **ZEROS)(h)
    return keras.Model(x, out, name=f"series_{kind}{'_' + open_gate if open_gate else ''}")


def init_model(model, seed: int, gate_init: str, t_max: int) -> None:
    """runtime.init_weights (NumPy, same on every backend), then the gate biases of the
    layer named "rnn": chrono (forget / update gate bias log U(1, t_max - 1), LSTM input
    gate its negative) or Keras' defaults (LSTM forget gate 1, GRU 0)."""
    runtime.init_weights(model, seed)
    layer = model.get_layer("rnn")
    w = layer.get_weights()  # kernel, recurrent_kernel, bias
    u = w[1].shape[0]
    chrono = np.log(np.random.default_rng([seed, 1]).uniform(1.0, max(t_max - 1.0, 1.0 + 1e-6), u))
    bias = w[2]
    if bias.shape == (4 * u,):  # LSTM: i, f, c, o
        bias[u : 2 * u] = chrono if gate_init == "chrono" else 1.0
        if gate_init == "chrono":
            bias[:u] = -chrono
    elif bias.shape == (2, 3 * u) and gate_init == "chrono":  # GRU: z, r, h (input bias row)
        bias[0, :u] = chrono
    layer.set_weights(w)


def unused_params(model, open_gate) -> int:
    """Weights of a gate held open: they never reach the output (zero gradient)."""
    if not open_gate:
        return 0
    kernel = model.get_layer("rnn").cell.kernel
    u = kernel.shape[1] // 4
    return (kernel.shape[0] + u + 1) * u
