"""What the studies share: restarting a compiled model, training and scoring a classifier,
and how a claim over seeds is worded."""

from __future__ import annotations

import keras
import numpy as np

from keras_cases import evaluation, runtime
from keras_cases.backbones import compile_classifier, eval_batch, train_seconds  # noqa: F401  (used by the studies)
from keras_cases.callbacks import EpochClock, resumable, tensorboard
from keras_cases.data import batches, images, resumable_epochs
from keras_cases.evaluation import mean_std

HIDDEN = 256  # hidden units of the dense autoencoders (studies ae and reuse)
MNIST_PIXELS = 28 * 28  # the largest code size PCA can have on MNIST (studies ae and reuse)


def pm(values, fmt="{:.4f}") -> str:
    """'mean ± std' over seeds; one seed: the value alone."""
    return evaluation.pm(values, fmt) if len(values) > 1 else fmt.format(mean_std(values)[0])


def verdict(diffs, claim: str) -> str:
    """Whether a claim about a difference (positive = the claim) holds over the seeds."""
    m, sd = mean_std(diffs)
    if len(diffs) < 2:
        return f"{claim}: {'yes' if m > 0 else 'no'}, one seed only"
    if m - 2 * sd / np.sqrt(len(diffs)) > 0:
        return f"{claim}: yes, on every seed" if min(diffs) > 0 else f"{claim}: yes, on average"
    return f"{claim}: not shown at this scale" if m > 0 else f"{claim}: no"


def unit(x) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1] (the reconstruction target)."""
    return np.asarray(x, "float32") / 255.0


def moved(before, after) -> int:
    """How many of the weight arrays differ (frozen ones must not)."""
    return sum(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(before, after))


def restart(model, seed: int, weights: dict | None = None) -> None:
    """Start a compiled model again: weights drawn from `seed` (runtime.init_weights), then
    `weights` ({sub-model or layer: its weights}) put in, and a fresh optimizer state. The
    compiled train and test functions stay: compiling costs seconds per model on XLA's CPU
    backend, more than a small model's whole training here."""
    runtime.init_weights(model, seed)
    for part, w in (weights or {}).items():
        part.set_weights(w)
    opt = model.optimizer
    if opt is not None and opt.built:
        for v in opt.variables:
            if not v.path.endswith("learning_rate"):
                v.assign(np.zeros(v.shape, v.dtype))


def train_classifier(model, x, y, d, args, seed, epochs, augmented=False, name="classifier", patience=None):
    """Fit a compiled classifier (already `restart`ed) on (x, y); validation and test on d.
    `patience`: stop once validation accuracy has not improved for that many epochs and
    keep the weights of its best epoch (None: train every epoch, keep the last)."""
    data = (
        resumable_epochs(images.augmented_batches(x, y, args.batch_size, seed))
        if augmented
        else batches(x, y, args.batch_size, seed)
    )
    clock = EpochClock()
    stop = (
        []
        if patience is None
        else [keras.callbacks.EarlyStopping("val_accuracy", mode="max", patience=patience, restore_best_weights=True)]
    )
    hist = model.fit(
        data,
        validation_data=(d.x_val, d.y_val),
        validation_batch_size=eval_batch(len(d.x_val)),
        epochs=epochs,
        verbose=args.verbose,
        callbacks=resumable(name, [*stop, clock, *tensorboard(name)], data),
        shuffle=False,
    ).history
    test = float(model.evaluate(d.x_test, d.y_test, verbose=0, batch_size=eval_batch(len(d.x_val)))[1])
    return hist, {
        "test_accuracy": test,
        "val_accuracy": max(hist["val_accuracy"]) if stop else hist["val_accuracy"][-1],
        "best_epoch": int(np.argmax(hist["val_accuracy"])) + 1 if stop else len(hist["val_accuracy"]),
        "epochs": len(hist["val_accuracy"]),
        "seconds": train_seconds(clock),
        "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
    }


def save_classifier(model, run, metrics, saved, class_names, test_accuracy, description: str) -> None:
    """The run's model.keras: one study's classifier, with its test accuracy and class names
    in metrics and a line for the report's list of saved files."""
    metrics["test_accuracy"] = test_accuracy  # the saved model's
    metrics["class_names"] = list(class_names)
    runtime.save_model(model, run.path("model.keras"))
    saved["model.keras"] = description
