"""The networks (one functional model per family), their training with early stopping on
validation accuracy, and `Study`: every (network, seed) trained once."""

from __future__ import annotations

import re
import time

import keras
import numpy as np

from keras_cases import runtime
from keras_cases.architecture.sizes import Spec, as_sequence, cnn_layout, count_params
from keras_cases.callbacks import resumable, tensorboard
from keras_cases.data import batches
from keras_cases.data.arrays import ArrayData
from keras_cases.evaluation import mean_std

OPTIMIZERS = {  # Adam's 3e-3 (not Keras' 1e-3) measured better here; momentum SGD has SGD's step
    "sgd": ("SGD, lr 0.1", lambda: keras.optimizers.SGD(0.1)),
    "momentum": ("SGD, lr 0.01, momentum 0.9", lambda: keras.optimizers.SGD(0.01, momentum=0.9)),
    "rmsprop": ("RMSProp, lr 1e-3", lambda: keras.optimizers.RMSprop(1e-3)),
    "adam": ("Adam, lr 3e-3", lambda: keras.optimizers.Adam(3e-3)),
    "adamw": ("AdamW, lr 3e-3, weight decay 0.01", lambda: keras.optimizers.AdamW(3e-3, weight_decay=0.01)),
}


def build_model(spec: Spec, shape, k: int, dropout: float = 0.0) -> keras.Model:
    """The network for `spec` on examples of `shape` (a signal or an image), k classes."""
    shape = tuple(shape)
    inputs = keras.Input(shape, name="x")
    if spec.family in ("linear", "mlp"):
        x = keras.layers.Flatten()(inputs)
        for n in spec.sizes:
            x = keras.layers.Dense(n, activation=spec.activation)(x)
            if dropout:
                x = keras.layers.Dropout(dropout)(x)
    elif spec.family == "cnn":
        kernel, blocks, _ = cnn_layout(shape)
        conv, pool = (
            (keras.layers.Conv1D, keras.layers.MaxPooling1D)
            if len(shape) == 1
            else (keras.layers.Conv2D, keras.layers.MaxPooling2D)
        )
        x = keras.layers.Reshape(shape + (1,))(inputs)
        for _ in range(blocks):
            x = conv(spec.sizes[0], kernel, padding="same", activation="relu")(x)
            x = conv(spec.sizes[0], kernel, padding="same", activation="relu")(x)
            x = pool(2)(x)
        x = keras.layers.Flatten()(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    elif spec.family == "gru":
        x = keras.layers.Reshape(as_sequence(shape))(inputs)
        x = keras.layers.GRU(spec.sizes[0])(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    else:
        raise ValueError(f"unknown family {spec.family!r}")
    outputs = keras.layers.Dense(k, activation="softmax", name="class")(x)
    return keras.Model(inputs, outputs, name=spec.family)


def compile_model(model, optimizer="adam"):
    opt = OPTIMIZERS[optimizer][1]() if isinstance(optimizer, str) else optimizer
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# --- training -----------------------------------------------------------------------
def train(spec: Spec, data: ArrayData, seed: int, *, epochs, batch_size, patience, verbose) -> dict:
    """Fit one seed with early stopping on validation accuracy; best weights restored."""
    keras.utils.clear_session()
    runtime.set_seed(seed)
    model = compile_model(build_model(spec, data.shape, data.n_classes), spec.optimizer)
    runtime.init_weights(model, seed)
    stop = keras.callbacks.EarlyStopping("val_accuracy", mode="max", patience=patience, restore_best_weights=True)
    name = f"{re.sub(r'[^A-Za-z0-9._-]+', '_', spec.label)}_seed{seed}"  # unique in a run: the label has the sizes
    batch = batches(data.x_train, data.y_train, batch_size, seed)
    t0 = time.perf_counter()
    h = model.fit(
        batch,
        epochs=epochs,
        validation_data=(data.x_val, data.y_val),
        validation_batch_size=1024,
        callbacks=resumable(name, [stop, *tensorboard(name)], batch),
        verbose=verbose,
    ).history
    seconds = time.perf_counter() - t0
    best = int(np.argmax(h["val_accuracy"]))
    return {
        "val_accuracy": float(h["val_accuracy"][best]),
        "val_loss": float(h["val_loss"][best]),
        "epochs": len(h["loss"]),
        "seconds": seconds,
        "weights": model.get_weights(),
        "history": h,
    }


class Study:
    """Trains each (network, seed) once, however many experiments ask for it."""

    def __init__(self, data: ArrayData, seeds, **fit):
        self.data, self.seeds, self.fit, self.cells = data, list(seeds), fit, {}

    def cell(self, spec: Spec) -> dict:
        if spec not in self.cells:
            runs = []
            for s in self.seeds:
                r = train(spec, self.data, s, **self.fit)
                print(
                    f"  {spec.label:<36} seed {s}: val acc {r['val_accuracy']:.4f} "
                    f"({r['epochs']} epochs, {r['seconds']:.1f} s)",
                    flush=True,
                )
                runs.append(r)
            val_acc, val_std = mean_std([r["val_accuracy"] for r in runs])
            self.cells[spec] = {
                "model": spec.label,
                "spec": spec,
                "runs": runs,
                "params": count_params(spec, self.data.shape, self.data.n_classes),
                "val_acc": val_acc,
                "val_std": val_std,
                "epochs": float(np.mean([r["epochs"] for r in runs])),
                "seconds": float(np.mean([r["seconds"] for r in runs])),
            }
        return self.cells[spec]

    def test(self, spec: Spec) -> tuple[float, float]:
        """Test accuracy, mean and std over seeds: called only for the chosen models."""
        c, d = self.cells[spec], self.data
        model = build_model(spec, d.shape, d.n_classes)
        accs = []
        for r in c["runs"]:
            model.set_weights(r["weights"])
            pred = np.argmax(model.predict(d.x_test, batch_size=1024, verbose=0), axis=1)
            accs.append(float(np.mean(pred == d.y_test)))
        return mean_std(accs)
