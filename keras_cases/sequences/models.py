"""The models of both studies: two causal change-point detectors at about the same parameter
count, the summarise-and-query network, and the one training loop they share."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from keras_cases import runtime
from keras_cases.callbacks import resumable, tensorboard
from keras_cases.data import batches
from keras_cases.sequences.data import N_TOKENS

# Every weight is drawn again from NumPy by runtime.init_weights (the same numbers on every
# backend), so the layers are created with zeros: Keras' random initialisers would be compiled
# once per weight shape on JAX (seconds of CPU) only to be overwritten.
_ZEROS = {"kernel_initializer": "zeros", "bias_initializer": "zeros"}
_RNN_ZEROS = {**_ZEROS, "recurrent_initializer": "zeros"}


def _initialised(model: keras.Model, seed: int) -> keras.Model:
    runtime.init_weights(model, seed)
    return model


def build_lstm(dims=10, units=32, depth=2, seed=0) -> keras.Model:
    """Stacked LSTM, one sigmoid per step: causal by construction (it reads left to right)."""
    inputs = keras.Input((None, dims), name="x")
    h = inputs
    for i in range(depth):
        h = layers.LSTM(units, return_sequences=True, name=f"lstm{i}", **_RNN_ZEROS)(h)
    out = layers.Dense(1, activation="sigmoid", name="p_change", **_ZEROS)(h)
    return _initialised(keras.Model(inputs, layers.Reshape((-1,), name="per_step")(out), name="lstm"), seed)


def build_cnn(dims=10, filters=28, kernel_size=3, dilations=(1, 2, 4, 8, 16, 32), seed=0) -> keras.Model:
    """A stack of causal dilated convolutions (padding="causal": step t sees only steps
    <= t), each after the first added to its input (residual), one sigmoid per step.
    Receptive field 1 + (kernel_size - 1) * sum(dilations) = 127 steps."""
    inputs = keras.Input((None, dims), name="x")
    h = inputs
    for i, rate in enumerate(dilations):
        c = layers.Conv1D(
            filters,
            kernel_size,
            padding="causal",
            dilation_rate=rate,
            activation="relu",
            name=f"conv{i}_d{rate}",
            **_ZEROS,
        )(h)
        h = layers.Add(name=f"residual{i}")([h, c]) if i else c
    out = layers.Dense(1, activation="sigmoid", name="p_change", **_ZEROS)(h)
    return _initialised(keras.Model(inputs, layers.Reshape((-1,), name="per_step")(out), name="cnn"), seed)


def receptive_field(kernel_size=3, dilations=(1, 2, 4, 8, 16, 32)) -> int:
    return 1 + (kernel_size - 1) * int(sum(dilations))


CHANGEPOINT_MODELS = {"lstm": build_lstm, "cnn": build_cnn}


def build_query_model(units=64, embed=16, hidden=64, seed=0) -> keras.Model:
    """tokens -> Embedding(mask_zero) -> GRU -> summary (one vector); (summary, q) -> MLP -> p.
    Any padded length works: the mask hides the padding from the GRU."""
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    query = keras.Input((1,), dtype="int32", name="query")
    e = layers.Embedding(N_TOKENS, embed, mask_zero=True, embeddings_initializer="zeros", name="embed")(tokens)
    summary = layers.GRU(units, name="summary", **_RNN_ZEROS)(e)
    q = layers.Embedding(10, embed, embeddings_initializer="zeros", name="embed_query")(query)
    h = layers.Concatenate(name="summary_and_q")([summary, layers.Flatten(name="q")(q)])
    h = layers.Dense(hidden, activation="relu", name="query_net", **_ZEROS)(h)
    out = layers.Dense(1, activation="sigmoid", name="answer", **_ZEROS)(h)
    return _initialised(keras.Model([tokens, query], out, name="query"), seed)


def leak(model, x: np.ndarray, t: int, seed=0) -> float:
    """Largest change in the outputs at steps <= t when the inputs after t are redrawn:
    zero (up to round-off) for a causal model."""
    x2 = x.copy()
    x2[:, t + 1 :] = np.random.default_rng(seed).standard_normal(x2[:, t + 1 :].shape)
    p1 = np.asarray(model.predict(x, verbose=0))
    p2 = np.asarray(model.predict(x2, verbose=0))
    return float(np.max(np.abs(p1[:, : t + 1] - p2[:, : t + 1])))


# --- training ----------------------------------------------------------------------------------
def compile_once(model, lr) -> list:
    """Compile `model` and return its optimizer's fresh state. One compiled model serves every
    seed (`fit` re-draws the weights and restores this state), so the backend compiles its
    training step once per architecture, not once per seed."""
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    model.optimizer.build(model.trainable_variables)
    return [np.array(ops.convert_to_numpy(v)) for v in model.optimizer.variables]


def fit(model, fresh_optimizer, x, y, val, args, seed, name=None):
    """Weights drawn for `seed`, Adam restarted, binary cross-entropy; early stopping on
    validation loss with the best weights restored. Returns the Keras history dict. `name`
    (unique in the run; default <model>_seed<seed>) names its checkpoint for --resume.

    Batches are shuffled by data.batches (NumPy) alone: fit's own `shuffle` would also
    reorder them with Python's `random`, whose state depends on every fit before this one."""
    runtime.set_seed(seed)
    runtime.init_weights(model, seed)
    for v, v0 in zip(model.optimizer.variables, fresh_optimizer):
        v.assign(v0)
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=args.patience, min_delta=1e-3, restore_best_weights=True
    )
    data, name = batches(x, y, args.batch_size, seed), name or f"{model.name}_seed{seed}"
    return model.fit(
        data,
        validation_data=val,
        epochs=args.epochs,
        shuffle=False,
        verbose=args.verbose,
        callbacks=resumable(name, [stop, *tensorboard(name)], data),
    ).history
