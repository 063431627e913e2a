"""airbench94 (Keller Jordan, 2024: 94% on CIFAR-10 in about 10 epochs) in Keras 3, its
ingredients one function or class each, so `--recipe airbench94` can switch each off:

- `build_airbench`  widths 64/256/256: a fixed 2x2 whitening convolution (fixed kernel and
                    bias) and a learnt bias after it, three blocks conv -> max-pool -> BN ->
                    GELU -> conv -> BN -> GELU, the batch norms without scale and with a bias
                    of their own (`ScaledBias`), a global max-pool, a bias-free dense layer,
                    logits scaled by 1/9;
- `airbench_whitening` the whitening of airbench's standardised pixels ((x - mean) / std per
                    channel, eps 5e-4, the patches' uncentred second moment), with the
                    standardisation folded into the fixed kernel and bias: the learnt bias
                    starts at 0 and its weight decay pulls it to the centred point, as
                    airbench's does;
- `dirac_init`      the first `c_in` filters of each block conv start as the identity map
                    of its input (an implicit residual);
- `ScaledBias`      x + s * theta: plain SGD on theta moves the bias s^2 times as fast, so
                    s = 8 gives the batch-norm biases airbench's 64x learning rate (Keras
                    has no per-variable learning rate: this reparametrisation is exactly
                    the same update for SGD with momentum, and its weight decay too: the
                    bias decays at the plain rate, as airbench's wd / lr_biases);
- `AirbenchSGD`     SGD-Nesterov with the weight decay added to the gradient (L2 through the
                    momentum, as PyTorch's SGD does) and airbench's lookahead: every 5
                    steps after the first 3 epochs (of 9.9) the weights move to an
                    exponential moving average of themselves, whose decay grows as
                    (progress)^3; the whitening bias frozen after the first 3 epochs; under
                    a wall-clock budget both follow the budget's clock (`set_progress`);
- `Triangular`      the learning rate: linear from 0.2x to the peak at 23% of the steps,
                    then linear down to 0.07x at the end;
- alternating flips (`data.augment.augmented_batches(flip="alternate")`) and a random
  2-pixel reflect-padded translation;
- flip + 1-pixel translate test-time augmentation is `model.predict_logits(tta=2)`.

Why an optimizer and not a callback for the lookahead: the average is updated inside the
compiled training step on every backend (a callback assigning weights mid-epoch forces a
state sync on JAX), and Keras' own `use_ema` is a different scheme (a constant-momentum
average of every step, copied back at fixed intervals, no warm-up of the decay).

Not carried over (each expected to change accuracy by well under 0.1 point): the
lookahead's averaging of the BN running statistics (they are not the optimizer's; with BN
momentum 0.6 they follow the last few batches, at most 4 steps from the average), its
copy-back at each epoch's end (airbench's per-epoch validation is of the average; ours of
the current weights), dropping the last partial batch, and airbench's BN epsilon 1e-12
(here 1e-5; the pre-BN variances are far larger). Its 50,000 training images are 45,000
here (5,000 are the validation set).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

LOGIT_SCALE = 1 / 9
BN_MOMENTUM = 0.6  # airbench's: the running statistics follow the last few batches
PAPER_BATCH = 1024  # the learning rate is given for batches of 1024 and scales linearly
PRESET_LR = 1.5  # RECIPES["airbench94"].lr: its weight_decay is the L2 at this rate


@keras.saving.register_keras_serializable("keras_cases")
class ScaledBias(layers.Layer):
    """Adds a per-channel bias `scale * theta` (theta trainable, zeros at first). With plain
    or momentum SGD the bias then learns `scale**2` times as fast as an ordinary one: the
    gradient of theta is scale x the bias's, and each step of theta moves the bias scale x."""

    def __init__(self, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def build(self, input_shape):
        self.theta = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="theta")

    def call(self, x):
        return x + ops.cast(self.scale * self.theta, x.dtype)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def build_airbench(r, input_shape=(32, 32, 3), n_classes: int = 10) -> keras.Model:
    """The airbench94 network (widths `r.widths`); `r.bias_lr` is the batch-norm biases'
    learning-rate multiplier (64 in the paper), `r.whiten` freezes the first kernel."""
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    channels = 2 * 2 * 2 * input_shape[-1]
    # whitening on: fixed kernel and fixed bias (the per-channel standardisation and centring
    # folded in, `airbench_whitening`); the learnt bias after it starts at 0, as airbench's
    x = layers.Conv2D(channels, 2, padding="valid", use_bias=bool(r.whiten), name="whiten", trainable=not r.whiten)(x)
    x = ScaledBias(name="whiten_bias")(x)
    x = layers.Activation("gelu", name="whiten_gelu")(x)
    for b, width in enumerate(r.widths, start=1):
        for c in (1, 2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"block{b}_conv{c}")(x)
            if c == 1:
                x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
            x = layers.BatchNormalization(
                momentum=BN_MOMENTUM, epsilon=1e-5, center=False, scale=False, name=f"block{b}_bn{c}"
            )(x)
            x = ScaledBias(np.sqrt(r.bias_lr), name=f"block{b}_bias{c}")(x)
            x = layers.Activation("gelu", name=f"block{b}_gelu{c}")(x)
    x = layers.GlobalMaxPooling2D(name="pool")(x)
    x = layers.Dense(n_classes, use_bias=False, name="dense")(x)
    outputs = layers.Rescaling(LOGIT_SCALE, name="logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="airbench94")


def dirac_init(kernel: np.ndarray) -> np.ndarray:
    """A (kh, kw, c_in, c_out) conv kernel whose first min(c_in, c_out) filters are the
    identity (filter i passes input channel i through its centre tap); the others are kept."""
    k = np.array(kernel, copy=True)
    kh, kw, c_in, c_out = k.shape
    n = min(c_in, c_out)
    k[:, :, :, :n] = 0
    k[kh // 2, kw // 2, np.arange(n), np.arange(n)] = 1
    return k


def airbench_whitening(x: np.ndarray, eps: float = 5e-4, n: int = 5000, size: int = 2):
    """airbench's whitening of `x` (uint8, NHWC), as a (kernel, bias) pair acting on x / 255:
    the images standardised per channel ((x / 255 - mean) / std, airbench's `normalize`), the
    2x2 patches' second moment (uncentred, as airbench's) eigen-decomposed, each eigenvector
    scaled by 1 / sqrt(eigenvalue + eps) with both signs; the standardisation is folded into
    the kernel (divided by std per input channel) and into the fixed bias (-mean / std)."""
    z = x[:n].astype("float64") / 255.0
    mean, std = z.mean((0, 1, 2)), z.std((0, 1, 2))
    z = (z - mean) / std
    from keras_cases.cifar.model import image_patches

    c = z.shape[-1]
    patches = image_patches(z, size)
    vals, vecs = np.linalg.eigh(patches.T @ patches / len(patches))
    filt = vecs[:, ::-1] / np.sqrt(vals[::-1] + eps)  # largest eigenvalue first, as airbench
    filt = np.concatenate([filt, -filt], axis=1).reshape(size, size, c, -1)
    kernel = filt / std[None, None, :, None]
    bias = -np.einsum("ijco,c->o", filt, mean / std)
    return kernel.astype("float32"), bias.astype("float32")


def initialise_airbench(model: keras.Model, r, x_whiten=None) -> None:
    """After `runtime.init_weights` (Keras' Glorot scale; PyTorch's default, airbench's, cost
    2.7 points on a short check): the whitening kernel and its fixed bias from the training
    images' patches (`airbench_whitening`, eps 5e-4 on standardised pixels), the learnt
    whitening bias at 0, dirac block convs."""
    if r.whiten and x_whiten is not None:
        model.get_layer("whiten").set_weights(list(airbench_whitening(x_whiten)))
    if r.dirac:
        for b in range(1, len(r.widths) + 1):
            for c in (1, 2):
                conv = model.get_layer(f"block{b}_conv{c}")
                conv.set_weights([dirac_init(conv.get_weights()[0])])


@keras.saving.register_keras_serializable("keras_cases")
class Triangular(keras.optimizers.schedules.LearningRateSchedule):
    """peak x (0.2 -> 1 linearly over the first `rise` of `total_steps`, then 1 -> 0.07)."""

    def __init__(self, peak: float, total_steps: int, rise: float = 0.23, start: float = 0.2, end: float = 0.07):
        self.peak, self.total_steps, self.rise, self.start, self.end = peak, total_steps, rise, start, end

    def __call__(self, step):
        f = ops.minimum(ops.cast(step, "float32") / float(self.total_steps), 1.0)
        up = self.start + (1 - self.start) * f / self.rise
        down = 1 + (self.end - 1) * (f - self.rise) / (1 - self.rise)
        return self.peak * ops.where(f < self.rise, up, down)

    def get_config(self):
        return {k: getattr(self, k) for k in ("peak", "total_steps", "rise", "start", "end")}


def triangular_lr(fraction: float, peak: float, warmup: float = 0.23, start: float = 0.2, end: float = 0.07) -> float:
    """The same shape at `fraction` of a wall-clock budget (for `TriangularBudget`), in Python floats."""
    f = min(max(fraction, 0.0), 1.0)
    if f < warmup:
        return peak * (start + (1 - start) * f / warmup)
    return peak * (1 + (end - 1) * (f - warmup) / (1 - warmup))


@keras.saving.register_keras_serializable("keras_cases")
class AirbenchSGD(keras.optimizers.SGD):
    """SGD-Nesterov whose `l2` x weights is added to each gradient (so the decay goes
    through the momentum), with airbench's lookahead when `lookahead_steps` > 0: from step
    `lookahead_start` on, every `lookahead_every` steps, slow <- rho slow + (1 - rho) w and
    w <- slow, rho = 0.95^every x (step / lookahead_steps)^3 (clipped at 1); the first such
    step only takes the snapshot. At the end of `fit` the weights are set to the average.

    The variables whose path contains one of `freeze` (airbench: the whitening bias) stop
    changing after step `freeze_after` (no gradient, no decay, as PyTorch's requires_grad =
    False). `set_progress(f)` (a wall-clock schedule, `training.TriangularBudget`) replaces
    the step count in all three by f x `lookahead_steps` (the equivalent step of a planned
    run), so the lookahead and the freeze follow the same clock as the learning rate."""

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.85,
        l2=0.0,
        lookahead_steps=0,
        lookahead_start=0,
        lookahead_every=5,
        nesterov=True,
        freeze=(),
        freeze_after=0,
        total_steps=None,
        **kwargs,
    ):
        super().__init__(learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)
        self.l2, self.lookahead_steps = float(l2), int(lookahead_steps)
        self.lookahead_start, self.lookahead_every = int(lookahead_start), int(lookahead_every)
        self.freeze, self.freeze_after = tuple(freeze), int(freeze_after)
        self.total_steps = int(total_steps or lookahead_steps)  # the planned run's steps
        self._pending_progress = -1.0

    def build(self, variables):
        super().build(variables)
        self._frozen = [any(f in v.path for f in self.freeze) for v in variables]
        # -1: progress by the step count; else the share of a wall-clock budget (set_progress)
        self._progress = self.add_variable(
            (), initializer=keras.initializers.Constant(self._pending_progress), name="progress"
        )
        if self.lookahead_steps:
            self._slow = [self.add_variable_from_reference(v, "slow") for v in variables]
            self._snapped = self.add_variable((), initializer="zeros", name="lookahead_snapped")

    def set_progress(self, fraction: float) -> None:
        """Follow `fraction` (0..1) of a wall-clock budget instead of the step count."""
        self._pending_progress = float(fraction)
        if self.built:
            self._progress.assign(float(fraction))

    def _equivalent_step(self, step):
        """The step of a planned run this step counts as (the step itself without set_progress)."""
        total = float(max(self.total_steps, 1))
        return ops.where(self._progress >= 0, self._progress * total, step)

    def _lookahead_on(self, step):
        every = float(self.lookahead_every)
        started = self._equivalent_step(step) >= float(self.lookahead_start)
        return ops.logical_and(started, ops.equal(ops.mod(step, every), 0.0))

    def update_step(self, gradient, variable, learning_rate):
        frozen = self._frozen[self._get_variable_index(variable)]
        if frozen:
            old = ops.copy(ops.convert_to_tensor(variable))
        if self.l2:
            gradient = gradient + ops.cast(self.l2, variable.dtype) * variable
        super().update_step(gradient, variable, learning_rate)
        if frozen:  # airbench trains it while epoch < 3: steps 1..freeze_after
            step = ops.cast(self.iterations + 1, "float32")
            keep = ops.cast(self._equivalent_step(step) > float(self.freeze_after), variable.dtype)
            self.assign(variable, variable + keep * (old - variable))
        if self.lookahead_steps:
            self._lookahead(variable)

    def apply(self, grads, trainable_variables=None):
        super().apply(grads, trainable_variables)  # counts the step: iterations is this step now
        if self.lookahead_steps:
            on = ops.cast(self._lookahead_on(ops.cast(self.iterations, "float32")), "float32")
            self._snapped.assign(ops.maximum(self._snapped, on))

    def _lookahead(self, variable):
        slow = self._slow[self._get_variable_index(variable)]
        step = ops.cast(self.iterations + 1, "float32")
        on = self._lookahead_on(step)
        progress = ops.minimum(self._equivalent_step(step) / float(self.lookahead_steps), 1.0)
        # the first lookahead step (no snapshot yet) takes the snapshot: rho 0
        rho = ops.where(self._snapped > 0, 0.95**self.lookahead_every * progress**3, 0.0)
        on, rho = ops.cast(on, variable.dtype), ops.cast(rho, variable.dtype)
        new = rho * slow + (1 - rho) * variable
        self.assign(slow, slow + on * (new - slow))
        self.assign(variable, variable + on * (new - variable))

    def finalize_variable_values(self, var_list):
        super().finalize_variable_values(var_list)
        if self.lookahead_steps and float(ops.convert_to_numpy(self._snapped)) > 0:
            for v in var_list:
                v.assign(self._slow[self._get_variable_index(v)])

    def get_config(self):
        return {
            **super().get_config(),
            "l2": self.l2,
            "lookahead_steps": self.lookahead_steps,
            "lookahead_start": self.lookahead_start,
            "lookahead_every": self.lookahead_every,
            "freeze": list(self.freeze),
            "freeze_after": self.freeze_after,
            "total_steps": self.total_steps,
        }


WHITEN_BIAS_EPOCHS = 3  # airbench trains the whitening bias for its first 3 of 9.9 epochs
LOOKAHEAD_EPOCHS = 3  # and starts the lookahead at epoch 3
PAPER_EPOCHS = 9.9


def airbench_optimizer(r, total_steps: int, constant: bool = False) -> AirbenchSGD:
    """The optimizer for `total_steps` steps: peak lr `r.lr` at batch 1024, scaled linearly
    to `r.batch_size` (airbench's step per example is fixed), L2 `r.weight_decay` at the
    preset's rate and scaled by PRESET_LR / r.lr otherwise (airbench divides its weight decay by
    its lr, so another --lr leaves the decay per step, lr x L2, as it was),
    lookahead when `r.lookahead` and the whitening bias frozen from the same share of
    training as airbench's (epoch 3 of 9.9); `constant`: a plain number for the rate (a
    budget callback sets it, and the progress: `AirbenchSGD.set_progress`)."""
    peak = r.lr * r.batch_size / PAPER_BATCH
    total = max(1, total_steps)
    if constant or r.schedule == "constant":
        lr = peak
    else:
        lr = Triangular(peak, total, rise=r.warmup)
    return AirbenchSGD(
        lr,
        momentum=r.momentum,
        l2=r.weight_decay * PRESET_LR / r.lr,
        lookahead_steps=total if r.lookahead else 0,
        lookahead_start=int(LOOKAHEAD_EPOCHS / PAPER_EPOCHS * total),
        freeze=("whiten_bias",),
        freeze_after=int(WHITEN_BIAS_EPOCHS / PAPER_EPOCHS * total),
        total_steps=total,
    )
