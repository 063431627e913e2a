"""The rotation-pretrained conv backbone: built, pretrained and saved by the representation
case (study `rotation`), loaded or pretrained on the fly by the transfer case.

A small conv net (conv 3x3 stride 2 + batch norm + ReLU per block) on raw uint8 pixels
learns which of 0/90/180/270 degrees an unlabelled image was turned by (Gidaris et al.,
2018). Batches are shuffled and mirrored in NumPy and fit runs with shuffle=False, so a
seed gives the same batches on every backend (Keras would otherwise also reorder a
PyDataset's batches with Python's global `random`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from keras_cases import runtime
from keras_cases.callbacks import EpochClock, resumable, tensorboard
from keras_cases.data import resumable_epochs

WIDTHS = (32, 64, 128)  # conv blocks of the rotation backbone
BACKBONE_FILE = "rotation_backbone.keras"  # what a representation run saves


def eval_batch(n_val: int) -> int:
    """One batch size for validation and test: the whole validation set (up to 5,000), so
    each model compiles one evaluation step on JAX when the test set is a multiple of it."""
    return min(n_val, 5000)


def train_seconds(clock: EpochClock) -> float:
    """Training time without compilation: the median epoch time x the number of epochs."""
    seconds = clock.epoch_seconds
    return float(np.median(seconds[1:] if len(seconds) > 1 else seconds) * len(seconds))


def rotations(x: np.ndarray):
    """Every image turned by 0, 90, 180 and 270 degrees (counter-clockwise), labels 0..3."""
    return (np.concatenate([np.rot90(x, r, axes=(1, 2)) for r in range(4)]), np.repeat(np.arange(4), len(x)))


def rotation_batches(x, batch_size: int, seed: int):
    """Batches of batch_size // 4 images, each in all four rotations (labels 0..3); images
    are shuffled and randomly mirrored in NumPy, the same on every backend."""

    per = max(1, batch_size // 4)

    class _Rotations(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.order = np.random.default_rng([seed, 0]).permutation(len(x))

        def __len__(self):
            return -(-len(x) // per)

        def __getitem__(self, i):
            xb = x[self.order[i * per : (i + 1) * per]]
            flip = np.random.default_rng([seed, self.epoch, i]).random(len(xb)) < 0.5
            xb = np.where(flip[:, None, None, None], xb[:, :, ::-1], xb)
            return rotations(xb)

        def on_epoch_end(self):
            self.epoch += 1
            self.order = np.random.default_rng([seed, self.epoch]).permutation(len(x))

    return resumable_epochs(_Rotations())


def conv_block(x, width: int, i: int):
    """Conv 3x3 stride 2 (no bias) -> batch norm -> ReLU: halves the resolution. Strided
    convolutions instead of max pooling: XLA's CPU max-pool gradient is ~10x slower.
    Batch-norm momentum 0.9, not Keras' 0.99: a classifier trained on 1,000 labels takes
    ~150 steps, after which 0.99 still leaves a fifth of the initial moving statistics
    (mean 0, variance 1) in place, and a from-scratch net scores chance in inference mode."""
    x = layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False, name=f"block{i}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"block{i}_bn")(x)
    return layers.ReLU(name=f"block{i}_relu")(x)


def build_backbone(widths=WIDTHS, size: int = 32, name: str = "rotation_backbone"):
    """Raw pixels (size, size, 3) -> Rescaling -> one conv block per width -> a feature map."""
    inputs = keras.Input((size, size, 3), name="pixels")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    for i, w in enumerate(widths, 1):
        x = conv_block(x, w, i)
    return keras.Model(inputs, x, name=name)


def backbone_params(widths=WIDTHS, channels: int = 3) -> int:
    """Conv kernels 9 c_in c_out (no bias) + 4 c_out per batch norm (gamma, beta and the
    two moving statistics)."""
    total, c_in = 0, channels
    for w in widths:
        total += 9 * c_in * w + 4 * w
        c_in = w
    return total


def build_conv_classifier(backbone, n_classes: int, name: str):
    """The backbone + global average pooling + a softmax layer."""
    inputs = keras.Input(backbone.input_shape[1:], name="pixels")
    x = layers.GlobalAveragePooling2D(name="pool")(backbone(inputs))
    return keras.Model(inputs, layers.Dense(n_classes, activation="softmax", name="class")(x), name=name)


def compile_classifier(model, lr=1e-3):
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def pretrain_rotation(x_unlabelled, x_val, seed, *, batch_size: int, epochs: int, verbose=2, widths=WIDTHS):
    """Train a backbone to predict rotations; returns (backbone, rotation model, history, seconds)."""
    backbone = build_backbone(widths, x_unlabelled.shape[1])
    model = compile_classifier(build_conv_classifier(backbone, 4, "rotation_net"), lr=2e-3)
    runtime.init_weights(model, seed)
    clock = EpochClock()
    data = rotation_batches(x_unlabelled, batch_size, seed)
    hist = model.fit(
        data,
        validation_data=rotations(x_val),
        validation_batch_size=eval_batch(4 * len(x_val)),
        epochs=epochs,
        callbacks=resumable(f"rotation_pretext_seed{seed}", [clock, *tensorboard("rotation_pretext")], data),
        shuffle=False,
        verbose=verbose,
    ).history
    return backbone, model, hist, train_seconds(clock)
