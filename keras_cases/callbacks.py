"""Keras callbacks shared by the case studies."""

from __future__ import annotations

import keras
import numpy as np

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
