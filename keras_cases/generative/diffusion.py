"""The diffusion model: a small U-Net trained as in DDPM (Ho et al. 2020) to predict the
noise added to an image, sampled with DDIM (Song et al. 2021, eta = 0: deterministic).

Everything random happens in NumPy: each training batch draws its timesteps t and noise
eps from a generator keyed on (seed, epoch, batch), and the network sees ((x_t, t), eps) as
an ordinary supervised pair, so a plain `fit` trains it on any backend and `--resume`
continues it like any other fit. Sampling is a NumPy loop around `predict_on_batch`.
Images live in [-1, 1] inside the model and in [0, 1] everywhere else."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from keras_cases import plots, runtime
from keras_cases.callbacks import EpochClock, resumable, tensorboard
from keras_cases.data import resumable_epochs

SAMPLE_CHUNK = 250  # images denoised together, at most (one predict_on_batch each step)
VAL_BATCH = 500


def noise_schedule(steps: int) -> np.ndarray:
    """alpha_bar_t = prod_{s <= t} (1 - beta_s), t = 0 .. steps-1, for DDPM's linear betas
    (1e-4 to 0.02 over 1,000 steps), rescaled so that any number of steps spans the same
    noise levels: alpha_bar falls from ~1 to ~4e-5."""
    scale = 1000 / steps
    betas = np.linspace(1e-4 * scale, 0.02 * scale, steps).clip(0, 0.999)
    return np.cumprod(1.0 - betas)


def q_sample(x0, t, eps, alpha_bar):
    """x_t ~ q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), given the noise."""
    ab = alpha_bar[np.asarray(t)].reshape((-1,) + (1,) * (np.ndim(x0) - 1))
    return np.sqrt(ab) * x0 + np.sqrt(1.0 - ab) * eps


class NoisedBatches(keras.utils.PyDataset):
    """((x_t, t), eps) batches of `x0` (in [-1, 1]): a fresh order each epoch and, per
    batch, uniform timesteps and Gaussian noise, all drawn from NumPy generators keyed on
    (seed, epoch[, batch]), so a batch depends on nothing but its epoch and index. Whole
    batches only (the few images left over differ each epoch): one shape, one compiled step."""

    def __init__(self, x0, alpha_bar, batch_size, seed):
        super().__init__()
        self.x0, self.alpha_bar, self.batch_size, self.seed = x0, alpha_bar, batch_size, seed
        self.epoch = -1
        self.on_epoch_end()

    def __len__(self):
        return max(1, len(self.x0) // self.batch_size)

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        x0 = self.x0[self.order[i * self.batch_size : (i + 1) * self.batch_size]]
        t = rng.integers(0, len(self.alpha_bar), len(x0))
        eps = rng.standard_normal(x0.shape)
        x_t = q_sample(x0, t, eps, self.alpha_bar)
        return (x_t.astype("float32"), t[:, None].astype("float32")), eps.astype("float32")

    def on_epoch_end(self):
        self.epoch += 1
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x0))


def noised_validation(x0, alpha_bar, seed):
    """One fixed draw of (t, eps) per validation image: the same validation loss every epoch."""
    rng = np.random.default_rng([seed, 2**31])
    t = rng.integers(0, len(alpha_bar), len(x0))
    eps = rng.standard_normal(x0.shape)
    x_t = q_sample(x0, t, eps, alpha_bar)
    return (x_t.astype("float32"), t[:, None].astype("float32")), eps.astype("float32")


@keras.saving.register_keras_serializable("keras_cases")
class TimeEmbedding(layers.Layer):
    """The transformer's sinusoidal position code of the timestep t (shape (batch, 1))."""

    def __init__(self, dim, max_period=10_000, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.max_period = int(dim), float(max_period)

    def call(self, t):
        half = self.dim // 2
        freqs = ops.exp(-math.log(self.max_period) * ops.arange(half, dtype="float32") / half)
        angles = ops.cast(t, "float32") * ops.expand_dims(freqs, 0)
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_period": self.max_period}


def res_block(x, emb, channels):
    """GroupNorm-swish-conv twice, the time embedding added in between, plus a skip path."""
    h = layers.Conv2D(channels, 3, padding="same")(layers.Activation("swish")(layers.GroupNormalization(8)(x)))
    h = layers.Add()([h, layers.Reshape((1, 1, channels))(layers.Dense(channels)(emb))])
    h = layers.Conv2D(channels, 3, padding="same")(layers.Activation("swish")(layers.GroupNormalization(8)(h)))
    skip = x if x.shape[-1] == channels else layers.Conv2D(channels, 1)(x)
    return layers.Add()([skip, h])


def build_unet(shape, widths=None):
    """(x_t, t) -> predicted noise: a residual U-Net, one block per resolution on the way
    down and up (28 -> 14 -> 7 on MNIST), skip connections across. Colour images get
    twice the channels, as in the VAE and the GAN."""
    widths = widths or tuple(w * (2 if shape[-1] == 3 else 1) for w in (16, 32, 64))
    image, t = keras.Input(shape, name="noisy_image"), keras.Input((1,), name="t")
    emb = TimeEmbedding(2 * widths[0], name="time_embedding")(t)
    emb = layers.Dense(4 * widths[0], activation="swish")(emb)
    emb = layers.Dense(4 * widths[0], activation="swish")(emb)
    x, skips = layers.Conv2D(widths[0], 3, padding="same")(image), []
    for level, ch in enumerate(widths):
        x = res_block(x, emb, ch)
        skips.append(x)
        if level < len(widths) - 1:
            x = layers.Conv2D(ch, 3, strides=2, padding="same")(x)
    x = res_block(x, emb, widths[-1])
    for level in reversed(range(len(widths))):
        x = res_block(layers.Concatenate()([x, skips[level]]), emb, widths[level])
        if level > 0:
            x = layers.UpSampling2D(2)(x)
    x = layers.Activation("swish")(layers.GroupNormalization(8)(x))
    eps = layers.Conv2D(shape[-1], 3, padding="same", name="noise")(x)
    return keras.Model([image, t], eps, name="unet")


def learning_rate(total_steps: int):
    """A linear warmup over the first tenth of training (at most 200 steps) to 2e-3, then a
    cosine down to 1e-4 of that at the last step."""
    warmup = max(1, min(200, total_steps // 10))
    return keras.optimizers.schedules.CosineDecay(
        0.0, max(1, total_steps - warmup), alpha=1e-4, warmup_target=2e-3, warmup_steps=warmup
    )


def optimizer(total_steps: int):
    """Adam on that schedule, keeping an exponential moving average of the weights over about
    the last tenth of the steps, which `fit` swaps in at the end (the weights that sample)."""
    momentum = min(0.999, max(0.5, 1 - 10 / total_steps))
    return keras.optimizers.Adam(learning_rate(total_steps), use_ema=True, ema_momentum=momentum)


def train_diffusion(x_tr, x_val, args, alpha_bar):
    """`args.diffusion_epochs` epochs of noise-prediction MSE in batches of
    `args.diffusion_batch_size`; returns (model, history, untrained validation loss)."""
    model = build_unet(x_tr.shape[1:])
    runtime.init_weights(model, args.seed)
    data = resumable_epochs(NoisedBatches(2 * x_tr - 1, alpha_bar, args.diffusion_batch_size, args.seed))
    model.compile(optimizer=optimizer(args.diffusion_epochs * len(data)), loss="mse")
    val = noised_validation(2 * x_val - 1, alpha_bar, args.seed)
    untrained = float(model.evaluate(*val, verbose=0, batch_size=VAL_BATCH))
    clock = EpochClock()
    hist = model.fit(
        data,
        validation_data=val,
        validation_batch_size=VAL_BATCH,
        epochs=args.diffusion_epochs,
        verbose=args.verbose,
        callbacks=resumable(f"diffusion_seed{args.seed}", [clock, *tensorboard("diffusion")], data),
    )
    return model, hist.history, untrained


def ddim_sample(predict_eps, noise, alpha_bar, steps: int, keep: int = 0):
    """DDIM with eta = 0 from x_T = `noise` (images in [-1, 1] at the end) over `steps`
    timesteps evenly spaced from T-1 down to 0: at each, the predicted clean image
    x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t) (clipped to [-1, 1]), the eps that clipped x0
    implies, and x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev) eps (ab_prev = 1 after the last
    step). Without re-deriving eps a clipped x0 leaves the trajectory off the noise level.
    `predict_eps(x_t, t)` takes a batch and one integer t. Returns (x_0, the trajectory of
    the first `keep` images: [(t, x_t, predicted x_0)] at every step)."""
    ts = np.linspace(len(alpha_bar) - 1, 0, steps).round().astype(int)
    x, trajectory = np.asarray(noise, "float64"), []
    for i, t in enumerate(ts):
        ab, ab_prev = alpha_bar[t], (alpha_bar[ts[i + 1]] if i + 1 < len(ts) else 1.0)
        eps = np.asarray(predict_eps(x, int(t)), "float64")
        x0 = np.clip((x - np.sqrt(1 - ab) * eps) / np.sqrt(ab), -1, 1)
        eps = (x - np.sqrt(ab) * x0) / np.sqrt(1 - ab)  # the noise the clipped x0 implies (as diffusers does)
        if keep:
            trajectory.append((int(t), x[:keep], x0[:keep]))
        x = np.sqrt(ab_prev) * x0 + np.sqrt(1 - ab_prev) * eps
    return x, trajectory


def model_eps(model):
    """predict_eps for ddim_sample: the U-Net on a float32 batch at one timestep."""

    def predict(x, t):
        return model.predict_on_batch([x.astype("float32"), np.full((len(x), 1), t, "float32")])

    return predict


def sample(model, rng, n, alpha_bar, steps, keep=0):
    """`n` images in [0, 1] from seeded noise, denoised in equal chunks of at most
    SAMPLE_CHUNK (one shape: one compiled predict); and the trajectory of the first `keep`."""
    noise = rng.standard_normal((n, *model.inputs[0].shape[1:]))
    size = math.ceil(n / math.ceil(n / SAMPLE_CHUNK))
    padded = np.concatenate([noise, np.zeros((-n % size, *noise.shape[1:]))])
    out, trajectory = [], []
    for i in range(0, n, size):
        x, tr = ddim_sample(model_eps(model), padded[i : i + size], alpha_bar, steps, keep if i == 0 else 0)
        out.append(x)
        trajectory = trajectory or tr
    return ((np.concatenate(out)[:n] + 1) / 2).astype("float32"), trajectory


def trajectory_figure(trajectory, path, rows=8):
    """The first images' x_t at `rows` steps from pure noise to the sample, and beside them
    the clean image the network predicts at each of those steps."""
    keep = sorted(set(np.linspace(0, len(trajectory) - 1, min(rows, len(trajectory))).round().astype(int)))
    to01 = lambda x: (np.clip(x, -1, 1) + 1) / 2  # noqa: E731
    images = [np.concatenate([to01(trajectory[i][1]), to01(trajectory[i][2])]) for i in keep]
    n = len(trajectory[0][1])
    return plots.image_grid(
        np.concatenate(images),
        path,
        f"DDIM trajectory: x_t (left {n}) and predicted x_0 (right {n})",
        ncols=2 * n,
        row_labels=[f"t={trajectory[i][0]}" for i in keep],
    )


def study_diffusion(args, run, images, quality, rng, metrics, history):
    """Train the U-Net, score DDIM samples (Frechet distance) and draw them and their
    denoising trajectory; returns (table row, report line, figures)."""
    alpha_bar = noise_schedule(args.diffusion_steps)
    model, h, untrained = train_diffusion(images.train, images.val, args, alpha_bar)
    names = {"loss": "noise_mse", "val_loss": "val_noise_mse"}  # not the VAE's loss axis in the curves
    history["diffusion"] = {names.get(k, k): v for k, v in h.items()}
    runtime.save_model(model, run.path("diffusion_unet.keras"))
    samples, trajectory = sample(model, rng, quality.n, alpha_bar, args.sample_steps, keep=6)
    fd = quality.distance(samples)
    trained = history["diffusion"]["val_noise_mse"][-1]
    metrics.update(
        {
            "diffusion_fd": fd,
            "diffusion_epochs": args.diffusion_epochs,
            "diffusion_batch_size": args.diffusion_batch_size,
            "diffusion_train_steps": args.diffusion_epochs * max(1, len(images.train) // args.diffusion_batch_size),
            "diffusion_steps": args.diffusion_steps,
            "diffusion_sample_steps": args.sample_steps,
            "diffusion_untrained_val_mse": untrained,
            "diffusion_final_val_mse": trained,
            "diffusion_parameters": model.count_params(),
        }
    )
    plots.image_grid(
        samples[:50], run.path("diffusion_samples.png"), f"diffusion samples (DDIM, {args.sample_steps} steps)"
    )
    trajectory_figure(trajectory, run.path("diffusion_trajectory.png"))
    note = (
        f"Diffusion: {model.count_params():,}-parameter U-Net, {args.diffusion_epochs} epochs "
        f"({metrics['diffusion_train_steps']:,} steps of {args.diffusion_batch_size}), T = "
        f"{args.diffusion_steps}, noise-prediction MSE on validation {untrained:.3f} untrained -> "
        f"{trained:.3f}; DDIM (eta 0) with {args.sample_steps} steps"
    )
    row = {"samples": f"diffusion samples (DDIM, {args.sample_steps} steps)", "frechet_distance": fd}
    return row, note, [("diffusion_samples.png", "diffusion samples"), ("diffusion_trajectory.png", "DDIM trajectory")]
