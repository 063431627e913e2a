"""The Keras models of studies (c)-(e): an MLP with optional dropout, a small CNN with an
optional L2 penalty, and how each is trained and scored. Weights are drawn from NumPy
(runtime.init_weights) and batches shuffled in NumPy, so one seed is one run on every
backend (dropout masks aside: they come from each backend's own random stream)."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from keras_cases import runtime
from keras_cases.callbacks import resumable, tensorboard
from keras_cases.data import arrays, batches


def build_mlp(shape, n_classes, dropout=0.0, hidden=(256, 256), seed=0):
    inputs = keras.Input(shape, name="image")
    x = layers.Flatten()(inputs)
    for i, units in enumerate(hidden):
        x = layers.Dense(units, activation="relu", name=f"dense{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, seed=seed + i, name=f"dropout{i}")(x)
    return keras.Model(
        inputs, layers.Dense(n_classes, activation="softmax", name="class")(x), name=f"mlp_dropout{dropout:g}"
    )


def build_cnn(shape, n_classes, l2=0.0):
    """conv 16 - pool - conv 32 - pool - conv 64 - pool - dense 128 on uint8 images
    (h, w, channels), with an L2 penalty of factor `l2` on every kernel."""
    reg = keras.regularizers.L2(l2) if l2 else None
    inputs = keras.Input(shape, name="image")
    x = layers.Rescaling(1 / 255)(inputs)
    for i, filters in enumerate((16, 32, 64)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_regularizer=reg, name=f"conv{i}")(x)
        x = layers.MaxPooling2D(name=f"pool{i}")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu", kernel_regularizer=reg, name="dense")(x)
    out = layers.Dense(n_classes, activation="softmax", kernel_regularizer=reg, name="class")(x)
    return keras.Model(inputs, out, name=f"cnn_l2_{l2:g}")


def fit_classifier(model, d, args, seed, epochs, early_stopping=False, lr=1e-3):
    """Train on d's training split (validation watched), return (model, history, results)."""
    runtime.init_weights(model, seed)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cbs = (
        [keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience, restore_best_weights=True)]
        if early_stopping
        else []
    )
    name = f"{model.name}{'_early' if early_stopping else ''}_seed{seed}"
    data = batches(d.x_train, d.y_train, args.batch_size, seed)
    hist = model.fit(
        data,
        validation_data=(d.x_val, d.y_val),
        epochs=epochs,
        verbose=args.verbose,
        callbacks=resumable(name, cbs + tensorboard(name), data),
    ).history
    acc = lambda x, y: float(model.evaluate(x, y, verbose=0, batch_size=512)[1])  # noqa: E731
    kernels = [w for w in model.trainable_weights if len(w.shape) >= 2]
    res = {
        "train_accuracy": acc(d.x_train, d.y_train),
        "val_accuracy": acc(d.x_val, d.y_val),
        "test_accuracy": acc(d.x_test, d.y_test),
        "epochs_run": len(hist["loss"]),
        "best_val_epoch": int(np.argmin(hist["val_loss"])) + 1,
        "weight_norm": float(np.sqrt(sum(np.sum(np.square(keras.ops.convert_to_numpy(w))) for w in kernels))),
    }
    res["gap"] = res["train_accuracy"] - res["test_accuracy"]
    return model, hist, res


def load_images(name, quick):
    d = arrays.load(name)
    if quick:
        d = d.subset(1000, 300, 500)
    return d


class MLPRuns:
    """The MLPs of studies (c) and (e), each trained once: (e)'s fixed-epoch baseline is (c)'s
    MLP without dropout. Histories go into `history`; seed 0's models are saved."""

    def __init__(self, d, args, run, seeds, history):
        self.d, self.args, self.run, self.seeds, self.history = d, args, run, seeds, history
        self.results = {}

    def __call__(self, seed, dropout, early) -> dict:
        key = (seed, dropout, early)
        if key not in self.results:
            name = f"mlp_dropout{dropout:g}{'_early' if early else ''}_seed{seed}"
            print(f"--- {name}", flush=True)
            d, args = self.d, self.args
            model, self.history[name], res = fit_classifier(
                build_mlp(d.shape, d.n_classes, dropout, seed=seed), d, args, seed, args.epochs, early_stopping=early
            )
            if seed == self.seeds[0]:
                runtime.save_model(model, self.run.path(f"{model.name}{'_early' if early else ''}.keras"))
            self.results[key] = res
        return self.results[key]
