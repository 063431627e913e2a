"""The networks, each mapping the scaled lookback window to the next `horizon` steps at once,
and their training:

- `lstm`, `conv1d`, `transformer`: an LSTM, a causal Conv1D stack, a small patch Transformer;
- the linear family, the field's answer to "a linear model on the lag window is hard to beat":
  `dlinear` (Zeng et al. 2023: a moving-average trend / remainder decomposition of the window,
  one linear head on each), `nbeats` (Oreshkin et al. 2020, the generic model: residual MLP
  blocks, each subtracts its backcast from its input and adds its forecast to the sum),
  `lstm_skip`, `transformer_skip` and `nbeats_skip` (the network plus a linear map of the whole
  window; the linear map is Ridge's solution, frozen, and the network learns the rest)."""

from __future__ import annotations

import time

import keras
import numpy as np
from keras import layers, ops

from keras_cases import UserError, runtime
from keras_cases.callbacks import resumable, tensorboard
from keras_cases.data import batches
from keras_cases.evaluation import summarize
from keras_cases.forecast.baselines import fit_ridge
from keras_cases.layers import PositionEmbedding

MODELS = ("lstm", "conv1d", "transformer", "dlinear", "nbeats", "lstm_skip", "transformer_skip", "nbeats_skip")
MA_KERNEL = 25  # DLinear's moving-average window (the paper's default)
NBEATS = {"blocks": 3, "layers": 2, "width": 256}


def moving_average(x, kernel: int):
    """The trend of DLinear: a centred moving average over time of every channel, the window
    padded at each end by repeating its first / last step (so the trend has the window's length)."""
    front, back = (kernel - 1) // 2, kernel // 2
    padded = ops.concatenate(
        [ops.repeat(x[:, :1, :], front, axis=1), x, ops.repeat(x[:, -1:, :], back, axis=1)], axis=1
    )
    return layers.AveragePooling1D(kernel, strides=1, name="moving_average")(padded)


def dlinear(inputs, horizon: int, kernel: int = MA_KERNEL):
    """trend = moving average, remainder = window - trend; one linear head on each (over all
    steps and channels, flattened), their forecasts added."""
    trend = moving_average(inputs, kernel)
    remainder = layers.Subtract(name="remainder")([inputs, trend])
    heads = [
        layers.Dense(horizon, name=f"{part}_head")(layers.Flatten(name=f"{part}_flat")(x))
        for part, x in (("trend", trend), ("remainder", remainder))
    ]
    return layers.Add(name="forecast")(heads)


def nbeats(inputs, horizon: int, blocks: int, depth: int, width: int, name: str = "forecast"):
    """Generic N-BEATS on the flattened window: block i reads the residual r_i (r_0 = the
    window), r_{i+1} = r_i - backcast_i, and the forecast is the sum of every block's forecast
    (the last block's backcast would feed nothing, so it has none)."""
    residual = layers.Flatten(name="flat")(inputs)
    forecasts = []
    for i in range(blocks):
        h = residual
        for j in range(depth):
            h = layers.Dense(width, activation="relu", name=f"block{i}_fc{j}")(h)
        forecasts.append(layers.Dense(horizon, name=f"block{i}_forecast")(h))
        if i < blocks - 1:
            backcast = layers.Dense(residual.shape[-1], name=f"block{i}_backcast")(h)
            residual = layers.Subtract(name=f"block{i}_residual")([residual, backcast])
    return layers.Add(name=name)(forecasts)


def network(kind: str, inputs, horizon: int, width: int, name: str):
    """The forecast of one network (lstm, conv1d, transformer, nbeats) from the window; its
    last layer is called `name`."""
    if kind == "nbeats":
        return nbeats(inputs, horizon, NBEATS["blocks"], NBEATS["layers"], NBEATS["width"], name)
    if kind == "lstm":
        x = layers.LSTM(width, name="lstm")(inputs)
    elif kind == "conv1d":
        x = inputs
        for i, filters in enumerate((width, width, 2 * width)):
            x = layers.Conv1D(filters, 5, padding="causal", activation="relu", name=f"conv{i}")(x)
            x = layers.MaxPooling1D(4 if x.shape[1] >= 64 else 2, name=f"pool{i}")(x)
        x = layers.Flatten()(x)
    elif kind == "transformer":
        lookback = inputs.shape[1]
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
    return layers.Dense(horizon, name=name)(x)


def build_model(kind: str, lookback: int, n_features: int, horizon: int, width: int = 32) -> keras.Model:
    inputs = keras.Input((lookback, n_features), name="window")
    if kind == "dlinear":
        out = dlinear(inputs, horizon, MA_KERNEL)
    elif kind.endswith("_skip") and kind in MODELS:  # the network's forecast + a linear map of the window
        branch = network(kind.removesuffix("_skip"), inputs, horizon, width, "network_forecast")
        linear = layers.Dense(horizon, name="linear_skip")(layers.Flatten(name="flat_window")(inputs))
        out = layers.Add(name="forecast")([branch, linear])
    else:
        out = network(kind, inputs, horizon, width, "forecast")
    return keras.Model(inputs, out, name=kind)


_RIDGE = {}  # the last training windows' Ridge solution


def start_at_ridge(model, x_tr, y_tr) -> bool:
    """A `*_skip` model starts as Ridge: its linear skip holds Ridge's solution on the training
    windows and is frozen there, and the network branch's output layer(s) start at 0, so
    training fits the network to what Ridge misses. False (nothing done) for other models."""
    if "linear_skip" not in [layer.name for layer in model.layers]:
        return False
    key = (id(x_tr), x_tr.shape, id(y_tr))  # the same training windows: Ridge is fit once per run
    if key not in _RIDGE:
        _RIDGE.clear()
        _RIDGE[key] = fit_ridge(x_tr, y_tr)
    ridge = _RIDGE[key]
    skip = model.get_layer("linear_skip")
    skip.set_weights([ridge.coef_.T.astype("float32"), ridge.intercept_.astype("float32")])
    skip.trainable = False
    for layer in model.layers:  # the branch's output layer(s): N-BEATS has one per block
        if layer.name.endswith("_forecast") and layer.weights:
            layer.set_weights([np.zeros(w.shape, "float32") for w in layer.get_weights()])
    return True


def train(kind, data, args, seed):
    """Fit one network on scaled windows; early stopping on validation loss."""
    x_tr, y_tr, x_val, y_val = data
    model = build_model(kind, x_tr.shape[1], x_tr.shape[2], y_tr.shape[1])
    runtime.init_weights(model, seed)
    start_at_ridge(model, x_tr, y_tr)
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
    seeds), each seed's test MASE (overall and per series), and the first seed's (history,
    forecasts, per-series scores), and every seed's forecasts; the first seed's model is saved."""
    per_seed, test_mase, series_mase, every = [], [], [], []
    for seed in seeds:
        t1 = time.time()
        print(f"--- {kind} (seed {seed})", flush=True)
        model, hist = train(kind, (*pooled.train, *pooled.val), args, seed)
        forecasts = pooled.per_series(lambda x: model.predict(x, verbose=0, batch_size=256))
        mean, each = pooled.scores(forecasts)
        every.append(forecasts)
        per_seed.append({**mean, "epochs": len(hist["loss"]), "train_seconds": round(time.time() - t1, 1)})
        test_mase.append(mean["test_mase"])
        series_mase.append([e["test_mase"] for e in each])
        if seed == seeds[0]:  # the first seed's model, forecasts and curves are kept
            first = (hist, forecasts, each)
            runtime.save_model(model, run.path(f"{kind}.keras"))
    mean, std = summarize(per_seed)
    out = {**mean, **({f"{k}_std": v for k, v in std.items()} if len(seeds) > 1 else {})}
    result = {**out, "test_mase_per_seed": test_mase, "series_test_mase_per_seed": series_mase}
    return result, first, every


def seed_ensemble(every: list, pooled) -> tuple[dict, list, list]:
    """The forecasts of every seed's model averaged (one forecaster, no seed spread): its
    scores, forecasts and per-series scores. Whether it replaces the single network is
    decided on validation, like every other choice."""
    forecasts = [{p: np.mean([f[i][p] for f in every], axis=0) for p in ("val", "test")} for i in range(len(every[0]))]
    mean, each = pooled.scores(forecasts)
    ones = {"test_mase_per_seed": [mean["test_mase"]], "series_test_mase_per_seed": [[e["test_mase"] for e in each]]}
    return {**mean, "ensemble_of": len(every), **ones}, forecasts, each
