"""The diffusion model: a small U-Net trained as in DDPM (Ho et al. 2020) on noised images,
sampled with DDIM (Song et al. 2021, eta = 0: deterministic).

Two noise schedules (DDPM's linear betas, or the cosine schedule of Nichol & Dhariwal 2021)
and two things the network can predict: the noise eps (DDPM), or the velocity
v = sqrt(ab_t) eps - sqrt(1 - ab_t) x_0 (Salimans & Ho 2022), from which x_0 and eps both
follow linearly, with no division by a vanishing sqrt(ab_t) at high noise. The loss can be
weighted per timestep with Min-SNR-gamma (Hang et al. 2023).

Everything random happens in NumPy: each training batch draws its timesteps t and noise
eps from a generator keyed on (seed, epoch, batch), and the network sees ((x_t, t), target)
as an ordinary supervised pair, so a plain `fit` trains it on any backend and `--resume`
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
from keras_cases.evaluation import frechet_distance

SAMPLE_CHUNK = 250  # images denoised together, at most (one predict_on_batch each step)
VAL_BATCH = 500
SCHEDULES = ("cosine", "linear")
PREDICTIONS = ("v", "eps")
COSINE_OFFSET = 0.008  # Nichol & Dhariwal's s: beta_1 is not vanishingly small


def noise_schedule(steps: int, kind: str = "linear") -> np.ndarray:
    """alpha_bar_t = prod_{s <= t} (1 - beta_s), t = 0 .. steps-1, for any number of steps
    spanning the same noise levels. `linear`: DDPM's betas (1e-4 to 0.02 over 1,000 steps,
    rescaled), alpha_bar falls from ~1 to ~4e-5. `cosine`: alpha_bar_t = f(t+1) / f(0),
    f(u) = cos^2(pi/2 (u/T + s) / (1 + s)), betas capped at 0.999 (the last one: f(T) = 0);
    it spends more steps at middle noise levels, and ends at ~2e-9 (pure noise)."""
    if kind == "cosine":
        f = np.cos((np.arange(steps + 1) / steps + COSINE_OFFSET) / (1 + COSINE_OFFSET) * np.pi / 2) ** 2
        betas = (1.0 - f[1:] / f[:-1]).clip(0, 0.999)
    elif kind == "linear":
        scale = 1000 / steps
        betas = np.linspace(1e-4 * scale, 0.02 * scale, steps).clip(0, 0.999)
    else:
        raise ValueError(f"noise schedule {kind!r}: one of {SCHEDULES}")
    return np.cumprod(1.0 - betas)


def _per_image(ab, x):
    """alpha_bar values (a scalar or one per image) shaped to broadcast over images x."""
    return np.reshape(ab, np.shape(ab) + (1,) * (np.ndim(x) - np.ndim(ab)))


def q_sample(x0, t, eps, alpha_bar):
    """x_t ~ q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), given the noise."""
    ab = alpha_bar[np.asarray(t)].reshape((-1,) + (1,) * (np.ndim(x0) - 1))
    return np.sqrt(ab) * x0 + np.sqrt(1.0 - ab) * eps


def velocity(x0, eps, ab):
    """v = sqrt(ab) eps - sqrt(1 - ab) x_0: the target of v-prediction (ab per image or one)."""
    ab = _per_image(ab, x0)
    return np.sqrt(ab) * eps - np.sqrt(1.0 - ab) * x0


def x0_and_eps(out, x_t, ab, prediction):
    """The clean image and the noise that a network output `out` at x_t implies: for eps,
    x_0 = (x_t - sqrt(1 - ab) eps) / sqrt(ab); for v (as x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps),
    x_0 = sqrt(ab) x_t - sqrt(1 - ab) v and eps = sqrt(1 - ab) x_t + sqrt(ab) v."""
    ab = _per_image(ab, x_t)
    if prediction == "eps":
        return (x_t - np.sqrt(1.0 - ab) * out) / np.sqrt(ab), out
    if prediction == "v":
        return np.sqrt(ab) * x_t - np.sqrt(1.0 - ab) * out, np.sqrt(1.0 - ab) * x_t + np.sqrt(ab) * out
    raise ValueError(f"prediction {prediction!r}: one of {PREDICTIONS}")


def min_snr_weights(alpha_bar, gamma, prediction):
    """Min-SNR-gamma loss weights per timestep (Hang et al. 2023): the loss on x_0 weighted by
    min(SNR_t, gamma), SNR_t = ab_t / (1 - ab_t), written in the target's own units: the eps
    loss is SNR times the x_0 loss, the v loss (SNR + 1) times, so the weights are
    min(SNR, gamma) / SNR and min(SNR, gamma) / (SNR + 1). gamma None or 0: all ones."""
    if not gamma:
        return np.ones_like(alpha_bar)
    snr = alpha_bar / (1.0 - alpha_bar)
    return np.minimum(snr, gamma) / (snr if prediction == "eps" else snr + 1.0)


class NoisedBatches(keras.utils.PyDataset):
    """((x_t, t), target[, weight]) batches of `x0` (in [-1, 1]): a fresh order each epoch and,
    per batch, uniform timesteps and Gaussian noise, all drawn from NumPy generators keyed on
    (seed, epoch[, batch]), so a batch depends on nothing but its epoch and index. The target
    is eps or v (`prediction`); `weights` (one per timestep, e.g. Min-SNR's) become per-image
    sample weights. Whole batches only (the few images left over differ each epoch): one
    shape, one compiled step."""

    def __init__(self, x0, alpha_bar, batch_size, seed, prediction="eps", weights=None):
        super().__init__()
        self.x0, self.alpha_bar, self.batch_size, self.seed = x0, alpha_bar, batch_size, seed
        self.prediction, self.weights = prediction, weights
        self.epoch = -1
        self.on_epoch_end()

    def __len__(self):
        return max(1, len(self.x0) // self.batch_size)

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        x0 = self.x0[self.order[i * self.batch_size : (i + 1) * self.batch_size]]
        t = rng.integers(0, len(self.alpha_bar), len(x0))
        batch = noised(x0, t, rng.standard_normal(x0.shape), self.alpha_bar, self.prediction)
        if self.weights is None:
            return batch
        return (*batch, self.weights[t].reshape((-1,) + (1,) * (x0.ndim - 2)).astype("float32"))

    def on_epoch_end(self):
        self.epoch += 1
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x0))


def noised(x0, t, eps, alpha_bar, prediction="eps"):
    """The supervised pair ((x_t, t), target) of clean images at timesteps t with noise eps."""
    x_t = q_sample(x0, t, eps, alpha_bar)
    target = eps if prediction == "eps" else velocity(x0, eps, alpha_bar[t])
    return (x_t.astype("float32"), t[:, None].astype("float32")), target.astype("float32")


def noised_validation(x0, alpha_bar, seed, prediction="eps"):
    """One fixed draw of (t, eps) per validation image: the same validation loss every epoch
    (unweighted: the plain MSE of the target, comparable across loss weightings)."""
    rng = np.random.default_rng([seed, 2**31])
    t = rng.integers(0, len(alpha_bar), len(x0))
    return noised(x0, t, rng.standard_normal(x0.shape), alpha_bar, prediction)


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
    """(x_t, t) -> the predicted noise eps (or v, whichever it is trained on): a residual
    U-Net, one block per resolution on the way down and up (28 -> 14 -> 7 on MNIST), skip
    connections across. Colour images get twice the channels, as in the VAE and the GAN."""
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
    out = layers.Conv2D(shape[-1], 3, padding="same", name="prediction")(x)
    return keras.Model([image, t], out, name="unet")


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


def train_diffusion(x_tr, x_val, args, alpha_bar, prediction="eps", min_snr_gamma=None):
    """`args.diffusion_epochs` epochs of the MSE of `prediction` (eps or v), weighted per
    timestep by Min-SNR-gamma if given, in batches of `args.diffusion_batch_size`; returns
    (model, history, untrained validation loss)."""
    model = build_unet(x_tr.shape[1:])
    runtime.init_weights(model, args.seed)
    weights = min_snr_weights(alpha_bar, min_snr_gamma, prediction) if min_snr_gamma else None
    batches = NoisedBatches(2 * x_tr - 1, alpha_bar, args.diffusion_batch_size, args.seed, prediction, weights)
    data = resumable_epochs(batches)
    model.compile(optimizer=optimizer(args.diffusion_epochs * len(data)), loss="mse")
    val = noised_validation(2 * x_val - 1, alpha_bar, args.seed, prediction)
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


def ddim_sample(predict, noise, alpha_bar, steps: int, keep: int = 0, prediction: str = "eps"):
    """DDIM with eta = 0 from x_T = `noise` (images in [-1, 1] at the end) over `steps`
    timesteps evenly spaced from T-1 down to 0: at each, the clean image x0 and noise eps the
    network's output implies (`prediction`: it predicts eps or v, see x0_and_eps), x0 clipped
    to [-1, 1], the eps that clipped x0 implies, and x_prev = sqrt(ab_prev) x0 +
    sqrt(1 - ab_prev) eps (ab_prev = 1 after the last step). Without re-deriving eps a clipped
    x0 leaves the trajectory off the noise level. `predict(x_t, t)` takes a batch and one
    integer t. Returns (x_0, the trajectory of the first `keep` images: [(t, x_t, predicted
    x_0)] at every step)."""
    ts = np.linspace(len(alpha_bar) - 1, 0, steps).round().astype(int)
    x, trajectory = np.asarray(noise, "float64"), []
    for i, t in enumerate(ts):
        ab, ab_prev = alpha_bar[t], (alpha_bar[ts[i + 1]] if i + 1 < len(ts) else 1.0)
        x0, _ = x0_and_eps(np.asarray(predict(x, int(t)), "float64"), x, ab, prediction)
        x0 = np.clip(x0, -1, 1)
        eps = (x - np.sqrt(ab) * x0) / np.sqrt(1 - ab)  # the noise the clipped x0 implies (as diffusers does)
        if keep:
            trajectory.append((int(t), x[:keep], x0[:keep]))
        x = np.sqrt(ab_prev) * x0 + np.sqrt(1 - ab_prev) * eps
    return x, trajectory


def model_predict(model):
    """predict for ddim_sample: the U-Net on a float32 batch at one timestep."""

    def predict(x, t):
        return model.predict_on_batch([x.astype("float32"), np.full((len(x), 1), t, "float32")])

    return predict


def sample(model, rng, n, alpha_bar, steps, keep=0, prediction="eps"):
    """`n` images in [0, 1] from seeded noise, denoised in equal chunks of at most
    SAMPLE_CHUNK (one shape: one compiled predict); and the trajectory of the first `keep`."""
    noise = rng.standard_normal((n, *model.inputs[0].shape[1:]))
    size = math.ceil(n / math.ceil(n / SAMPLE_CHUNK))
    padded = np.concatenate([noise, np.zeros((-n % size, *noise.shape[1:]))])
    out, trajectory = [], []
    for i in range(0, n, size):
        chunk = padded[i : i + size]
        x, tr = ddim_sample(model_predict(model), chunk, alpha_bar, steps, keep if i == 0 else 0, prediction)
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


def validation_baselines(model, x_val, alpha_bar, seed, prediction) -> dict:
    """On the validation draw: the MSE of predicting 0 (the mean of target^2: what a network
    that learned nothing can reach), and at t >= 0.7 T the MSE of the network's clipped x_0
    guess and of the best blank guess (the mean validation pixel, everywhere), in [-1, 1]
    units: a guess worse than blank walks the first DDIM steps off towards noise."""
    x0 = 2 * x_val - 1
    (x_t, t), target = noised_validation(x0, alpha_bar, seed, prediction)
    high = t[:, 0] >= 0.7 * len(alpha_bar)
    out = model.predict([x_t[high], t[high]], batch_size=VAL_BATCH, verbose=0)
    guess, _ = x0_and_eps(np.asarray(out, "float64"), x_t[high], alpha_bar[t[high, 0].astype(int)], prediction)
    return {
        "diffusion_val_mse_predicting_zero": float((target.astype("float64") ** 2).mean()),
        "diffusion_val_x0_mse_high_noise": float(((np.clip(guess, -1, 1) - x0[high]) ** 2).mean()),
        "diffusion_val_blank_x0_mse_high_noise": float(((x0.mean() - x0[high]) ** 2).mean()),
    }


def study_diffusion(args, run, images, quality, rng, metrics, history):
    """Train the U-Net, score DDIM samples (Frechet distance to the test images' features, and
    to the validation images', which is the one to choose flags on) and draw them and their
    denoising trajectory; returns (table row, report line, figures)."""
    alpha_bar = noise_schedule(args.diffusion_steps, args.noise_schedule)
    gamma = args.min_snr_gamma or None
    model, h, untrained = train_diffusion(images.train, images.val, args, alpha_bar, args.prediction, gamma)
    target = "noise" if args.prediction == "eps" else "v"
    names = {"loss": f"{target}_mse", "val_loss": f"val_{target}_mse"}  # not the VAE's loss axis in the curves
    history["diffusion"] = {names.get(k, k): v for k, v in h.items()}
    runtime.save_model(model, run.path("diffusion_unet.keras"))
    samples, trajectory = sample(model, rng, quality.n, alpha_bar, args.sample_steps, 6, args.prediction)
    fd = quality.distance(samples)
    trained = history["diffusion"][f"val_{target}_mse"][-1]
    metrics.update(
        {
            "diffusion_fd": fd,
            "diffusion_val_fd": frechet_distance(quality.features(images.val[: quality.n]), quality.features(samples)),
            "diffusion_epochs": args.diffusion_epochs,
            "diffusion_batch_size": args.diffusion_batch_size,
            "diffusion_train_steps": args.diffusion_epochs * max(1, len(images.train) // args.diffusion_batch_size),
            "diffusion_steps": args.diffusion_steps,
            "diffusion_noise_schedule": args.noise_schedule,
            "diffusion_prediction": args.prediction,
            "diffusion_min_snr_gamma": gamma,
            "diffusion_sample_steps": args.sample_steps,
            "diffusion_untrained_val_mse": untrained,
            "diffusion_final_val_mse": trained,
            "diffusion_parameters": model.count_params(),
            **validation_baselines(model, images.val, alpha_bar, args.seed, args.prediction),
        }
    )
    plots.image_grid(
        samples[:50], run.path("diffusion_samples.png"), f"diffusion samples (DDIM, {args.sample_steps} steps)"
    )
    trajectory_figure(trajectory, run.path("diffusion_trajectory.png"))
    note = diffusion_note(args, metrics)
    row = {"samples": f"diffusion samples (DDIM, {args.sample_steps} steps)", "frechet_distance": fd}
    return row, note, [("diffusion_samples.png", "diffusion samples"), ("diffusion_trajectory.png", "DDIM trajectory")]


def diffusion_note(args, m) -> str:
    """The report's line on the diffusion model, from its metrics."""
    gamma = m["diffusion_min_snr_gamma"]
    return (
        f"Diffusion: {m['diffusion_parameters']:,}-parameter U-Net, {args.diffusion_epochs} epochs "
        f"({m['diffusion_train_steps']:,} steps of {args.diffusion_batch_size}), T = {args.diffusion_steps}, "
        f"{args.noise_schedule} noise schedule, {args.prediction}-prediction"
        f"{f', Min-SNR-{gamma:g} loss weights' if gamma else ''}, its MSE on validation "
        f"{m['diffusion_untrained_val_mse']:.3f} untrained -> {m['diffusion_final_val_mse']:.3f} (predicting 0: "
        f"{m['diffusion_val_mse_predicting_zero']:.3f}); x_0 guessed "
        f"at t >= 0.7 T: MSE {m['diffusion_val_x0_mse_high_noise']:.3f} (a blank guess "
        f"{m['diffusion_val_blank_x0_mse_high_noise']:.3f}); DDIM (eta 0) with {args.sample_steps} steps, "
        f"Frechet distance to validation images {m['diffusion_val_fd']:.2f}"
    )
