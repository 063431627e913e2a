"""The recipe and the network: an airbench-style conv net with a fixed whitening first
layer, SGD-Nesterov with a one-cycle schedule, flip test-time augmentation. `RECIPES` names
the presets `--recipe` picks from (the CNN `small`, the vision transformer `vit`, whose
network is in keras_cases/cifar/vit.py)."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from keras_cases import runtime


@dataclass
class Recipe:
    widths: tuple = (32, 64, 128)
    batch_size: int = 256
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.2
    warmup: float = 0.15  # fraction of the steps spent warming up
    augment: bool = True
    whiten: bool = True
    batchnorm: bool = True
    schedule: str = "cosine"  # or "constant"; airbench94: "triangular"
    optimizer: str = "nesterov"  # or "adamw"
    tta: int = 1  # 0: none, 1 (True): flip, 2: flip + 1-pixel translations (airbench94)
    mixed_precision: bool = False
    translate: int = 4  # pixels of the random (reflect-padded) crop augmentation
    cutout: int = 0  # side of the cutout square (airbench96: 12); 0: no cutout
    arch: str = "cnn"  # or "vit" (keras_cases/cifar/vit.py), "airbench" (keras_cases/cifar/airbench94.py)
    dirac: bool = False  # airbench: identity-initialised block convs
    lookahead: bool = False  # airbench: lookahead / EMA of the weights (AirbenchSGD)
    bias_lr: float = 1.0  # airbench: learning-rate multiplier of the batch-norm biases
    # the ViT's fields
    dim: int = 96  # token width
    depth: int = 4  # transformer blocks
    heads: int = 4  # attention heads (dim / heads per head)
    patch: int = 4  # patch side in pixels
    mlp_ratio: int = 2  # hidden units of each block's MLP, per token width
    erase: float = 0.0  # probability of random erasing (keras.layers.RandomErasing) per image


# --recipe NAME: the presets; flags the user types override their fields (case.recipe_from)
RECIPES = {
    "small": Recipe(),
    # AdamW (peak lr = lr / 100 = 2e-3, weight decay 0.05, see compile_model) as transformers
    # need; no whitening / batch-norm (the ViT has neither); random erasing on half the images
    "vit": Recipe(arch="vit", optimizer="adamw", whiten=False, batchnorm=False, erase=0.5),
    # airbench94's hyperparameters in Keras terms (keras_cases/cifar/airbench94.py): its lr 11.5
    # and weight decay 0.0153 "per 1024 examples" are SGD lr 11.5 / (1 + 1 / (1 - 0.85)) = 1.5 at
    # batch 1024 on the mean loss, and L2 0.0153 / 11.5 through the momentum
    "airbench94": Recipe(
        arch="airbench",
        widths=(64, 256, 256),
        batch_size=1024,
        lr=1.5,
        momentum=0.85,
        weight_decay=0.0153 / 11.5,
        label_smoothing=0.2,
        schedule="triangular",
        warmup=0.23,  # the triangle's peak
        optimizer="airbench",
        translate=2,
        tta=2,
        dirac=True,
        lookahead=True,
        bias_lr=64.0,
    ),
}


def image_patches(x: np.ndarray, size: int) -> np.ndarray:
    """Every size x size patch of the images `x` (n, h, w, c), one row each, flattened in
    (i, j, c) order: the layout of a Keras Conv2D kernel (kh, kw, c_in, c_out)."""
    h, w = x.shape[1:3]
    patches = np.stack(
        [x[:, i : i + h - size + 1, j : j + w - size + 1] for i in range(size) for j in range(size)], axis=3
    )  # (n, h', w', size*size, c)
    return patches.reshape(-1, size * size * x.shape[-1])


def whitening_filters(x: np.ndarray, size: int = 2, eps: float = 5e-4, n: int = 5000):
    """Kernel (size, size, 3, 2 * size*size*3) and bias that whiten the image patches of
    `x` (uint8): the eigenvectors of the patch covariance scaled by 1/sqrt(eigenvalue), each
    with both signs (so a ReLU-like activation after it keeps the information)."""
    x = x[:n].astype("float64") / 255.0
    patches = image_patches(x, size)
    mean = patches.mean(0)
    cov = np.cov(patches - mean, rowvar=False)
    vals, vecs = np.linalg.eigh(cov)
    filt = vecs / np.sqrt(vals + eps)  # columns: whitening directions
    filt = np.concatenate([filt, -filt], axis=1)
    kernel = filt.reshape(size, size, x.shape[-1], -1)
    bias = -(mean @ filt)
    return kernel.astype("float32"), bias.astype("float32")


def build_model(r: Recipe, input_shape=(32, 32, 3), n_classes: int = 10, x_whiten=None) -> keras.Model:
    """The airbench-style network (or, for `r.arch == "vit"`, the vision transformer of
    keras_cases/cifar/vit.py); `x_whiten` (uint8 training images) sets the fixed first
    layer when `r.whiten` is on."""
    if r.arch == "vit":
        from keras_cases.cifar.vit import build_vit

        return build_vit(r, input_shape, n_classes)
    if r.arch == "airbench":
        from keras_cases.cifar.airbench94 import build_airbench

        return build_airbench(r, input_shape, n_classes)
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    channels = 2 * 2 * 2 * input_shape[-1]
    x = layers.Conv2D(channels, 2, padding="valid", name="whiten", trainable=not r.whiten)(x)
    x = layers.Activation("gelu", name="whiten_gelu")(x)
    for b, width in enumerate(r.widths, start=1):
        for c in (1, 2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=not r.batchnorm, name=f"block{b}_conv{c}")(x)
            if c == 1:
                x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
            if r.batchnorm:
                x = layers.BatchNormalization(momentum=0.9, name=f"block{b}_bn{c}")(x)
            x = layers.Activation("gelu", name=f"block{b}_gelu{c}")(x)
    x = layers.GlobalMaxPooling2D(name="pool")(x)
    outputs = layers.Dense(n_classes, name="logits", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name="cifar_net")
    return model


def min_image_size(r: Recipe) -> int:
    """The smallest image side `build_model` takes: the 2x2 whitening convolution ("valid")
    takes one pixel off, then each block's 2x2 max-pool halves the side (rounding down), and
    the last feature map must keep at least one pixel. A ViT needs one patch."""
    if r.arch == "vit":
        return r.patch
    side = 1
    for _ in r.widths:
        side *= 2  # undo one max-pool
    return side + 1  # undo the whitening convolution


def initialise(model: keras.Model, r: Recipe, seed: int, x_whiten=None) -> None:
    runtime.init_weights(model, seed)
    if r.arch == "airbench":
        from keras_cases.cifar.airbench94 import initialise_airbench

        return initialise_airbench(model, r, x_whiten)
    if r.whiten and x_whiten is not None:
        model.get_layer("whiten").set_weights(list(whitening_filters(x_whiten)))


def compile_model(model: keras.Model, r: Recipe, total_steps: int) -> None:
    warm = max(1, int(r.warmup * total_steps))
    loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=r.label_smoothing)
    if r.optimizer == "airbench":
        from keras_cases.cifar.airbench94 import airbench_optimizer

        opt = airbench_optimizer(r, total_steps)
        return model.compile(opt, loss, metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    if r.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            0.0, max(1, total_steps - warm), alpha=0.0, warmup_target=r.lr, warmup_steps=warm
        )
    else:
        lr = r.lr
    if r.optimizer == "nesterov":
        opt = keras.optimizers.SGD(lr, momentum=r.momentum, nesterov=True, weight_decay=r.weight_decay or None)
    else:  # AdamW at its usual scale: the SGD learning rate / 100
        lr_adam = (
            keras.optimizers.schedules.CosineDecay(
                0.0, max(1, total_steps - warm), warmup_target=r.lr / 100, warmup_steps=warm
            )
            if r.schedule == "cosine"
            else r.lr / 100
        )
        opt = keras.optimizers.AdamW(lr_adam, weight_decay=r.weight_decay * 100 if r.weight_decay else 0.0)
    model.compile(opt, loss, metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])


def predict_logits(model, x, tta: int, batch_size: int = 1000) -> np.ndarray:
    """Logits, with test-time augmentation `tta`: 0 none; 1 (True) the mean over the image
    and its mirror; 2 (airbench94) half that, half its mean over the image shifted one pixel
    up-left and one down-right (reflect-padded), each with its mirror too."""

    def mirrored(images):
        out = model.predict(images, batch_size=batch_size, verbose=0)
        return out if not tta else (out + model.predict(images[:, :, ::-1], batch_size=batch_size, verbose=0)) / 2

    logits = mirrored(x)
    if tta >= 2:
        h, w = x.shape[1:3]
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
        shifted = (mirrored(padded[:, :h, :w]) + mirrored(padded[:, 2 : h + 2, 2 : w + 2])) / 2
        logits = (logits + shifted) / 2
    return logits


def accuracy(model, x, y, tta: int) -> float:
    return float(np.mean(np.argmax(predict_logits(model, x, tta), axis=1) == y))


def set_precision(on: bool) -> None:
    keras.mixed_precision.set_global_policy(
        ("mixed_bfloat16" if runtime.backend() == "tensorflow" or not has_gpu() else "mixed_float16")
        if on
        else "float32"
    )


def amx_bf16() -> bool:
    """The CPU has AMX-BF16 (Intel Xeon since Sapphire Rapids): TensorFlow's oneDNN runs
    bfloat16 convolutions there about 5x as fast as float32
    (benchmarks/results/linux-x86_64-2cpu-convprofile.md). Read from /proc/cpuinfo: False
    where there is none (macOS, Windows)."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " amx_bf16" in line for line in f)
    except OSError:
        return False


def precision_hint(choice: str, r: Recipe) -> str:
    """A line for a budgeted run that left mixed precision to `auto` (off on a CPU) on
    TensorFlow where AMX-BF16 would make it faster; '' otherwise."""
    if choice != "auto" or r.mixed_precision or runtime.backend() != "tensorflow" or not amx_bf16():
        return ""
    return (
        "this CPU has AMX-BF16: on TensorFlow --mixed-precision on (bfloat16) trains faster here "
        "(airbench94's steps 1.6x, the small recipe's 1.1x: benchmarks/results/linux-x86_64-2cpu-airbench94.md)"
    )


def has_gpu() -> bool:
    return any(d.split(":")[0] in ("gpu", "cuda") for d in runtime.devices())
