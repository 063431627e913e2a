"""Keras callbacks shared by the case studies."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np

from keras_cases import UserError
from keras_cases.evaluation import choose_threshold, parse_objective


class ThresholdTuner(keras.callbacks.Callback):
    """Choose the decision threshold on validation data at the end of every epoch.

    The objective is a string (see keras_cases.evaluation): ``recall>=0.8`` (best
    precision with recall at least 0.8), ``f1``/``fbeta:B``, or ``cost:fp=A,fn=B``.
    Each epoch's choice is written into the logs (so into the History and history.csv)
    as ``val_threshold`` and ``val_objective``. At the end of training it is chosen once
    more on the final weights (put this callback after EarlyStopping, which restores the
    best weights in its own on_train_end) and kept in ``self.threshold``.

    Only validation data is ever used: the test set chooses nothing.
    """

    def __init__(self, x_val, y_val, objective="recall>=0.8", batch_size=1024):
        super().__init__()
        self.x_val, self.y_val = x_val, np.asarray(y_val).ravel()
        self.objective = parse_objective(objective) if isinstance(objective, str) else objective
        self.batch_size = batch_size
        self.threshold = 0.5
        self.value = float("nan")

    def _choose(self):
        p = self.model.predict(self.x_val, batch_size=self.batch_size, verbose=0).ravel()
        self.threshold, self.value = choose_threshold(self.y_val, p, self.objective)

    def on_epoch_end(self, epoch, logs=None):
        self._choose()
        if logs is not None:
            logs["val_threshold"] = self.threshold
            logs["val_objective"] = self.value

    def on_train_end(self, logs=None):
        self._choose()


_TENSORBOARD_ROOT: Path | None = None


def log_tensorboard_to(root) -> None:
    """Make `tensorboard(name)` return a TensorBoard callback writing under `root/name`
    (called by `Run` when a case gets `--tensorboard`)."""
    global _TENSORBOARD_ROOT
    if root is not None and (importlib.util.find_spec("tensorflow") is None
                             or importlib.util.find_spec("tensorboard") is None):
        raise UserError("--tensorboard needs TensorFlow and TensorBoard installed (Keras writes the logs with "
                        "tf.summary on every backend): pip install 'keras-cases[tensorboard]'")
    _TENSORBOARD_ROOT = None if root is None else Path(root)


def tensorboard(name: str) -> list:
    """[] normally; with `--tensorboard`, [a TensorBoard callback logging to
    <run>/tensorboard/<name>] (one sub-folder per model, so `tensorboard --logdir
    <run>/tensorboard` compares them). Append it to a `fit` call's callbacks."""
    if _TENSORBOARD_ROOT is None:
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(_TENSORBOARD_ROOT / name.replace(" ", "_").replace("/", "_")),
                                        histogram_freq=0, write_graph=False, update_freq="epoch")]


def scalar_logger(name: str):
    """For training loops that are not `fit` (the GAN): a function (step, {name: value})
    writing TensorBoard scalars under <run>/tensorboard/<name> with `--tensorboard`, and
    doing nothing otherwise."""
    if _TENSORBOARD_ROOT is None:
        return lambda step, values: None
    from keras_cases import runtime

    return runtime.scalar_writer(_TENSORBOARD_ROOT / name)
