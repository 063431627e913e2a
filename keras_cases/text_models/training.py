"""Training and scoring the text networks.

On JAX every new input shape is a new XLA compile, so training batches, validation and
prediction each keep one shape (`pad_rows`, `score`, `ValidationScorer`).
"""

from __future__ import annotations

import time

import keras
import numpy as np

from keras_cases import runtime
from keras_cases.callbacks import ThresholdTuner, resumable, tensorboard
from keras_cases.data import batches
from keras_cases.evaluation import binary_metrics, choose_threshold, class_weights

EVAL_BATCH = 256


def pad_rows(x, multiple: int) -> np.ndarray:
    """Append all-padding rows (empty texts) up to a multiple of `multiple` rows."""
    extra = -len(x) % multiple
    return np.concatenate([x, np.zeros((extra, *x.shape[1:]), x.dtype)]) if extra else x


def score(model, x) -> np.ndarray:
    """Model scores, predicted in batches of one fixed shape (the last one padded with
    empty texts and cut off again): on JAX every new input shape is a new XLA compile."""
    p = model.predict(pad_rows(x, EVAL_BATCH), batch_size=EVAL_BATCH, verbose=0)
    return np.asarray(p, dtype="float64").ravel()[: len(x)]


class ValidationScorer(ThresholdTuner):
    """The ThresholdTuner, also the validation pass: once per epoch it scores the validation
    texts (`score`, one input shape) and logs `val_loss`, `val_pr_auc` (scikit-learn's
    average precision, the number models are compared by), `val_threshold` and
    `val_objective`. Put EarlyStopping after it; `train` re-chooses the threshold once the
    best weights are restored. (Keras' own validation pass would score the same texts a
    second time, and cost one more XLA compile on JAX.)"""

    def _choose(self):
        p = score(self.model, self.x_val)
        self.threshold, self.value = choose_threshold(self.y_val, p, self.objective)
        return p

    def on_epoch_end(self, epoch, logs=None):
        from sklearn.metrics import average_precision_score

        p = self._choose()
        if logs is not None:
            q = np.clip(p, 1e-7, 1 - 1e-7)
            logs["val_loss"] = float(-np.mean(self.y_val * np.log(q) + (1 - self.y_val) * np.log(1 - q)))
            logs["val_pr_auc"] = float(average_precision_score(self.y_val, p))
            logs["val_threshold"] = self.threshold
            logs["val_objective"] = self.value

    def on_train_end(self, logs=None):
        pass  # EarlyStopping restores the best weights after this; `train` re-chooses then


def train(
    model,
    x_tr,
    y_tr,
    x_val,
    y_val,
    *,
    epochs,
    batch_size,
    seed,
    verbose,
    objective,
    patience=3,
    weighted=True,
    extra_callbacks=(),
):
    """Seeded NumPy weights and batches, class weights, early stopping on validation PR-AUC
    (best weights restored), then the decision threshold chosen on validation.
    Returns (history dict, threshold, seconds). Call `runtime.set_seed(seed)` before
    building the model too: its Dropout layers draw their seeds when they are created.

    The training set is topped up to whole batches with empty texts of weight 0, so every
    step has one batch shape (one XLA compile on JAX, not two).
    """
    runtime.set_seed(seed)
    runtime.init_weights(model, seed)
    w = class_weights(y_tr) if weighted else np.ones(len(y_tr), "float32")
    x_tr, y_tr, w = (pad_rows(a, batch_size) for a in (x_tr, y_tr, w))
    scorer = ValidationScorer(x_val, y_val, objective)
    stop = keras.callbacks.EarlyStopping("val_pr_auc", mode="max", patience=patience, restore_best_weights=True)
    t0 = time.time()
    data, name = batches(x_tr, y_tr, batch_size, seed, w), f"{model.name}_seed{seed}"
    hist = model.fit(
        data,
        epochs=epochs,
        verbose=verbose,
        callbacks=resumable(name, [scorer, stop, *extra_callbacks, *tensorboard(name)], data),
    )
    scorer._choose()  # on the restored best weights
    return hist.history, scorer.threshold, time.time() - t0


def evaluate(y_val, p_val, y_test, p_test, threshold) -> dict:
    """Test metrics at the validation-chosen threshold, plus validation PR-AUC (the
    number the best model is chosen by)."""
    from sklearn.metrics import average_precision_score

    return {**binary_metrics(y_test, p_test, threshold), "val_pr_auc": float(average_precision_score(y_val, p_val))}
