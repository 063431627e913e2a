"""Training: the data, the model (raw pixels -> augmentation -> resize -> preprocessing ->
backbone -> head), the two stages of one seed and their test scores."""

from __future__ import annotations

import time

import keras
import numpy as np
from keras import layers

from keras_cases import UserError, runtime
from keras_cases.callbacks import resumable, tensorboard
from keras_cases.data import batches, images
from keras_cases.evaluation import class_weights
from keras_cases.transfer.bases import build_base, set_stage

STAGES = ("frozen", "fine-tuned")


def load_data(args):
    if args.images:
        d = images.load_folder(args.images, size=args.image_size)
        if args.quick:
            d = images.per_class(d, 10)
    elif args.data == "cifar10":
        d = images.cifar10_per_class(args.per_class)
    else:
        raise UserError(f"--data {args.data!r}: use cifar10, or --images DIR for your own images")
    counts = np.bincount(d.y_train, minlength=d.n_classes)
    if counts.min() == 0:
        raise UserError(f"class {d.class_names[int(counts.argmin())]!r} has no training images")
    return d


def build_model(base, pre, image_size: int, backbone_size: int, n_classes: int, seed: int, dropout=0.2):
    """Raw pixels -> augmentation -> resize -> preprocessing -> base(training=False) -> head."""
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    x = images.augmentation(flip=True, translate=0.1, seed=seed)(inputs)
    if image_size != backbone_size:
        x = layers.Resizing(backbone_size, backbone_size, name="resize")(x)
    for layer in pre:
        x = layer(x)
    x = base(x, training=False)  # batch norm in inference mode, in both stages
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    head = layers.Dense(n_classes, activation="softmax", name="class")
    out = head(x)
    runtime.init_weights(head, seed)  # NumPy-drawn: the same head on every backend
    return keras.Model(inputs, out, name="transfer_classifier")


def trainable_count(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def fit_stage(model, d, args, seed, lr, epochs, sw, name="stage"):
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t = time.time()  # shuffle=False: the batches are shuffled in NumPy (see keras_cases.backbones)
    data = batches(d.x_train, d.y_train, args.batch_size, seed, sample_weight=sw)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience, restore_best_weights=True)
    hist = model.fit(
        data,
        validation_data=(d.x_val, d.y_val),
        epochs=epochs,
        verbose=args.verbose,
        shuffle=False,
        callbacks=resumable(name, [*tensorboard(name), stop], data),  # name: <stage>_seed<seed>
    ).history
    return hist, time.time() - t


def score(model, d) -> dict:
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

    p = model.predict(d.x_test, verbose=0, batch_size=256)
    pred = p.argmax(1)
    labels = list(range(d.n_classes))
    return {
        "test_accuracy": float(accuracy_score(d.y_test, pred)),
        "macro_f1": float(f1_score(d.y_test, pred, average="macro", labels=labels, zero_division=0)),
        "report": classification_report(
            d.y_test, pred, labels=labels, target_names=list(d.class_names), output_dict=True, zero_division=0
        ),
        "confusion": confusion_matrix(d.y_test, pred, labels=labels),
    }


def run_seed(d, args, seed):
    """Both stages for one seed: (model, {stage: results}, {stage: history})."""
    runtime.set_seed(seed)
    base, pre, bsize, pattern, what = build_base(args)
    model = build_model(base, pre, d.x_train.shape[1], bsize, d.n_classes, seed)
    sw = class_weights(d.y_train, d.n_classes)
    results, hists = {}, {}
    for stage in STAGES:
        unfrozen = set_stage(model, base, stage, pattern, args.unfreeze_blocks)
        lr = args.lr if stage == "frozen" else args.lr * args.fine_tune_lr_factor
        epochs = args.epochs if stage == "frozen" else args.fine_tune_epochs
        print(
            f"--- seed {seed}, {stage}: {trainable_count(model):,} trainable parameters"
            + (f" (blocks {', '.join(unfrozen)} + head)" if unfrozen else " (head)")
            + f", lr {lr:g}",
            flush=True,
        )
        before = snapshot(base)
        hists[stage], secs = fit_stage(model, d, args, seed, lr, epochs, sw, f"{stage}_seed{seed}")
        results[stage] = {
            **score(model, d),
            "seconds": secs,
            "epochs_run": len(hists[stage]["loss"]),
            "trainable_params": trainable_count(model),
            "lr": lr,
            "unfrozen_blocks": unfrozen,
            "best_val_accuracy": float(hists[stage]["val_accuracy"][int(np.argmin(hists[stage]["val_loss"]))]),
            "backbone_weights_changed": changed(before, snapshot(base)),
            "backbone_weight_arrays": len(before),
        }
    return model, results, hists, what, bsize


def snapshot(base) -> dict:
    return {w.path: np.array(keras.ops.convert_to_numpy(w)) for w in base.weights}


def changed(before: dict, after: dict) -> list[str]:
    """The backbone weights a stage moved (none for the head stage: the backbone is frozen
    and its batch norm runs in inference mode; for fine-tuning, the unfrozen kernels only)."""
    return sorted(k for k in before if not np.array_equal(before[k], after[k]))
