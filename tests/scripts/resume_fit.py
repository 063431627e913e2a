"""Train a small dropout MLP with EarlyStopping and ReduceLROnPlateau three ways on the
active backend: uninterrupted; stopped after epoch 3 (KeyboardInterrupt from the
checkpoint callback); resumed from that checkpoint. Prints a JSON line with the largest
weight difference and the epochs each way trained."""

import json
import os
import shutil
import sys

import keras
import numpy as np

from keras_cases import callbacks
from keras_cases.data import batches

EPOCHS = 9
rng = np.random.default_rng(0)
x = rng.normal(size=(600, 8)).astype("float32")
y = (x[:, 0] + 0.5 * x[:, 1] ** 2 + rng.normal(0, 0.5, 600) > 0.5).astype("float32")


def make():
    keras.utils.set_random_seed(0)
    i = keras.Input((8,))
    h = keras.layers.Dropout(0.3)(keras.layers.Dense(32, activation="relu")(i))
    model = keras.Model(i, keras.layers.Dense(1, activation="sigmoid")(h))
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    return model


def guards():
    return [
        keras.callbacks.EarlyStopping("loss", patience=3, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau("loss", factor=0.5, patience=1),
    ]


def fit(model):
    data = batches(x, y, 64, 0)
    return model.fit(data, epochs=EPOCHS, verbose=0, callbacks=callbacks.resumable("mlp", guards(), data))


root = sys.argv[1]
model = make()
callbacks.checkpoint_to(None)  # no run directory: a plain History, nothing written
whole = fit(model)
reference = model.get_weights()

shutil.rmtree(root, ignore_errors=True)
callbacks.checkpoint_to(root)
os.environ[callbacks.STOP_AFTER_ENV] = "3"
try:
    fit(make())
    stopped = False
except KeyboardInterrupt:
    stopped = True
del os.environ[callbacks.STOP_AFTER_ENV]
saved = json.load(open(os.path.join(root, "mlp", "state.json")))["epoch"]

callbacks.checkpoint_to(root)
model = make()
resumed = fit(model)
diff = max(float(np.max(np.abs(a - b))) for a, b in zip(reference, model.get_weights()))
callbacks.checkpoint_to(root)
restored = make()
again = fit(restored)  # a finished fit is restored, not retrained
diff_restored = max(float(np.max(np.abs(a - b))) for a, b in zip(reference, restored.get_weights()))
print(
    json.dumps(
        {
            "stopped": stopped,
            "saved_epoch": saved,
            "diff": diff,
            "diff_restored": diff_restored,
            "whole_loss": whole.history["loss"],
            "resumed_loss": resumed.history["loss"],
            "again_loss": again.history["loss"],
            "lr": resumed.history.get("learning_rate"),
        }
    )
)
