"""The DCGAN: two compiled Keras models, written once. The discriminator learns real vs
fake with `train_on_batch`, then a stacked generator -> frozen-discriminator model teaches
the generator to fool it. No backend-specific train step is needed; the loop checkpoints
every epoch (keras_cases.generative.checkpoint), so `--resume` continues it."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from keras_cases import plots, runtime
from keras_cases.callbacks import scalar_logger
from keras_cases.generative.checkpoint import LoopCheckpoint
from keras_cases.generative.vae import build_decoder


def build_discriminator(shape):
    k = 2 if shape[-1] == 3 else 1
    inputs = keras.Input(shape, name="image")
    x = layers.Conv2D(32 * k, 3, strides=2, padding="same")(inputs)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Conv2D(64 * k, 3, strides=2, padding="same")(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.2)(x)
    return keras.Model(inputs, layers.Dense(1, name="real_logit")(x), name="discriminator")


def build_gan(shape, latent_dim):
    """(generator, discriminator, stacked): the stacked model trains only the generator."""
    generator = build_decoder(shape, latent_dim, name="generator", batchnorm=True)
    discriminator = build_discriminator(shape)
    adam = lambda: keras.optimizers.Adam(2e-4, beta_1=0.5)  # noqa: E731  (the DCGAN settings)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    discriminator.compile(optimizer=adam(), loss=bce)
    discriminator.trainable = False  # frozen inside the stacked model only
    z = keras.Input((latent_dim,), name="z")
    stacked = keras.Model(z, discriminator(generator(z)), name="gan")
    stacked.compile(optimizer=adam(), loss=bce)
    discriminator.trainable = True
    return generator, discriminator, stacked


def build_optimizers(discriminator, stacked) -> list:
    """Both optimizers built on the variables their steps train, as their first step would
    build them (the discriminator's: its own; the stacked model's: the generator's), so a
    checkpoint can be restored into them before any step."""
    discriminator.optimizer.build(discriminator.trainable_variables)
    discriminator.trainable = False
    stacked.optimizer.build(stacked.trainable_variables)  # the generator's alone
    discriminator.trainable = True
    return [discriminator.optimizer, stacked.optimizer]


def discriminator_step(generator, discriminator, real, rng, latent_dim):
    """Teach the discriminator real (label 0.9: one-sided smoothing) from fake (0)."""
    n = len(real)
    fake = np.asarray(generator.predict_on_batch(rng.normal(size=(n, latent_dim)).astype("float32")))
    y = np.concatenate([np.full((n, 1), 0.9), np.zeros((n, 1))]).astype("float32")
    discriminator.trainable = True
    return float(np.ravel(discriminator.train_on_batch(np.concatenate([real, fake]), y))[0])


def generator_step(discriminator, stacked, n, rng, latent_dim):
    """Teach the generator to make the (frozen) discriminator say "real"."""
    discriminator.trainable = False
    loss = stacked.train_on_batch(rng.normal(size=(n, latent_dim)).astype("float32"), np.ones((n, 1), "float32"))
    discriminator.trainable = True
    return float(np.ravel(loss)[0])


def gan_step(generator, discriminator, stacked, real, rng, latent_dim):
    """One alternation: a discriminator step on real + fake, then a generator step."""
    d_loss = discriminator_step(generator, discriminator, real, rng, latent_dim)
    return d_loss, generator_step(discriminator, stacked, len(real), rng, latent_dim)


def train_gan(x_tr, args, latent_dim, fixed_z, verbose=True):
    """`args.gan_epochs` epochs of whole batches in a fresh order each epoch; returns
    (generator, discriminator, history, the fixed latent vectors' images after each epoch).
    Checkpointed every epoch; a resumed run starts after the last epoch it finished."""
    generator, discriminator, stacked = build_gan(x_tr.shape[1:], latent_dim)
    runtime.init_weights(generator, args.seed)
    runtime.init_weights(discriminator, args.seed + 1)
    rng = np.random.default_rng(args.seed)
    history, frames = {"d_loss": [], "g_loss": []}, []
    optimizers = build_optimizers(discriminator, stacked)
    checkpoint = LoopCheckpoint(f"gan_seed{args.seed}", [generator, discriminator], optimizers)
    state = checkpoint.load(rng)
    if state is not None:
        history, frames = state["history"], state["extra"]["frames"]
    steps = len(x_tr) // args.batch_size
    log = scalar_logger("gan")
    for epoch in range(len(history["d_loss"]), args.gan_epochs):
        order = rng.permutation(len(x_tr))
        losses = [
            gan_step(
                generator,
                discriminator,
                stacked,
                x_tr[order[i * args.batch_size : (i + 1) * args.batch_size]],
                rng,
                latent_dim,
            )
            for i in range(steps)
        ]
        d, g = np.mean(losses, axis=0)
        history["d_loss"].append(float(d))
        history["g_loss"].append(float(g))
        frames.append(np.asarray(generator.predict(fixed_z, verbose=0)))
        log(epoch, {"d_loss": float(d), "g_loss": float(g)})
        if verbose:
            print(f"GAN epoch {epoch + 1}/{args.gan_epochs}: d_loss {d:.4f} g_loss {g:.4f}", flush=True)
        checkpoint.save(epoch + 1, history, rng, {"frames": frames})
    return generator, discriminator, history, frames


def study_gan(args, run, images, quality, rng, metrics, history):
    """Train the DCGAN, score its samples (Frechet distance) and draw them, and the same 10
    latent vectors over training; returns (table row, report line, figures)."""
    latent = args.gan_latent_dim
    fixed_z = rng.normal(size=(10, latent)).astype("float32")
    generator, _, history["gan"], frames = train_gan(images.train, args, latent, fixed_z)
    runtime.save_model(generator, run.path("generator.keras"))
    samples = generator.predict(rng.normal(size=(quality.n, latent)).astype("float32"), verbose=0)
    fd = quality.distance(samples)
    metrics.update(
        {
            "gan_fd": fd,
            "gan_epochs": args.gan_epochs,
            "gan_final_d_loss": history["gan"]["d_loss"][-1],
            "gan_final_g_loss": history["gan"]["g_loss"][-1],
        }
    )
    plots.image_grid(samples[:50], run.path("gan_samples.png"), "DCGAN samples")
    keep = sorted(set(np.linspace(0, len(frames) - 1, min(len(frames), 8)).astype(int)))
    plots.image_grid(
        np.concatenate([frames[i] for i in keep]),
        run.path("gan_progress.png"),
        "the same 10 latent vectors over training",
        row_labels=[f"epoch {i + 1}" for i in keep],
    )
    note = (
        f"DCGAN: {args.gan_epochs} epochs, final losses D {metrics['gan_final_d_loss']:.3f} / "
        f"G {metrics['gan_final_g_loss']:.3f}"
    )
    row = {"samples": f"DCGAN samples (latent {latent})", "frechet_distance": fd}
    return row, note, [("gan_progress.png", "GAN samples over training"), ("gan_samples.png", "GAN samples")]
