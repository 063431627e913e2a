"""The networks: an LSTM, a causal Conv1D stack and a small patch Transformer, each mapping
the scaled lookback window to the next `horizon` steps at once, and their training."""

from __future__ import annotations

import time

import keras
from keras import layers

from keras_cases import UserError, runtime
from keras_cases.callbacks import resumable, tensorboard
from keras_cases.data import batches
from keras_cases.evaluation import summarize
from keras_cases.layers import PositionEmbedding

MODELS = ("lstm", "conv1d", "transformer")


def build_model(kind: str, lookback: int, n_features: int, horizon: int, width: int = 32) -> keras.Model:
    inputs = keras.Input((lookback, n_features), name="window")
    if kind == "lstm":
        x = layers.LSTM(width, name="lstm")(inputs)
    elif kind == "conv1d":
        x = inputs
        for i, filters in enumerate((width, width, 2 * width)):
            x = layers.Conv1D(filters, 5, padding="causal", activation="relu", name=f"conv{i}")(x)
            x = layers.MaxPooling1D(4 if x.shape[1] >= 64 else 2, name=f"pool{i}")(x)
        x = layers.Flatten()(x)
    elif kind == "transformer":
        patch = next(p for p in (12, 8, 6, 4, 3, 2, 1) if lookback % p == 0 and lookback // p >= 4)
        x = layers.Conv1D(width, patch, strides=patch, name="patches")(inputs)  # tokens
        x = PositionEmbedding(name="positions")(x)
        for i in range(2):
            a = layers.MultiHeadAttention(4, width // 4, name=f"attention{i}")(x, x)
            x = layers.LayerNormalization(name=f"norm{i}a")(x + a)
            f = layers.Dense(2 * width, activation="relu", name=f"ffn{i}a")(x)
            x = layers.LayerNormalization(name=f"norm{i}b")(x + layers.Dense(width, name=f"ffn{i}b")(f))
        x = layers.Flatten()(x)
    else:
        raise UserError(f"unknown model {kind!r}: choose {', '.join(MODELS)} or all")
    x = layers.Dense(2 * width, activation="relu", name="head")(x)
    out = layers.Dense(horizon, name="forecast")(x)
    return keras.Model(inputs, out, name=kind)


def train(kind, data, args, seed):
    """Fit one network on scaled windows; early stopping on validation loss."""
    x_tr, y_tr, x_val, y_val = data
    model = build_model(kind, x_tr.shape[1], x_tr.shape[2], y_tr.shape[1])
    runtime.init_weights(model, seed)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), loss="mse", metrics=["mae"])
    batch, name = batches(x_tr, y_tr, args.batch_size, seed), f"{kind}_seed{seed}"
    stop = keras.callbacks.EarlyStopping(patience=args.patience, restore_best_weights=True)
    hist = model.fit(
        batch,
        validation_data=(x_val, y_val),
        epochs=args.epochs,
        verbose=args.verbose,
        callbacks=resumable(name, [stop, *tensorboard(name)], batch),
    )
    return model, hist.history


def train_networks(kind: str, pooled, args, seeds, run) -> tuple[dict, tuple]:
    """`kind` trained once per seed on the pooled windows: its scores' mean (and std over
    seeds), and the first seed's (history, forecasts, per-series scores); that model is saved."""
    per_seed = []
    for seed in seeds:
        t1 = time.time()
        print(f"--- {kind} (seed {seed})", flush=True)
        model, hist = train(kind, (*pooled.train, *pooled.val), args, seed)
        forecasts = pooled.per_series(lambda x: model.predict(x, verbose=0, batch_size=256))
        mean, each = pooled.scores(forecasts)
        per_seed.append({**mean, "epochs": len(hist["loss"]), "train_seconds": round(time.time() - t1, 1)})
        if seed == seeds[0]:  # the first seed's model, forecasts and curves are kept
            first = (hist, forecasts, each)
            runtime.save_model(model, run.path(f"{kind}.keras"))
    mean, std = summarize(per_seed)
    return {**mean, **({f"{k}_std": v for k, v in std.items()} if len(seeds) > 1 else {})}, first
