"""The VAE: an ordinary Keras model. A `Sampling` layer applies the reparameterisation
trick and adds the KL term with `add_loss`, so `fit` trains it on any backend."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from keras_cases import plots, runtime
from keras_cases.callbacks import resumable, tensorboard
from keras_cases.data import batches


def kl_divergence(z_mean, z_log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, in closed form."""
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


class Sampling(layers.Layer):
    """z = mean + exp(log_var / 2) * eps (the reparameterisation trick); adds the KL term."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, z_mean, z_log_var):
        self.add_loss(ops.mean(kl_divergence(z_mean, z_log_var)))
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps


def build_encoder(shape, latent_dim):
    inputs = keras.Input(shape, name="image")
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(inputs)
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    return keras.Model(
        inputs,
        [layers.Dense(latent_dim, name="z_mean")(x), layers.Dense(latent_dim, name="z_log_var")(x)],
        name="encoder",
    )


def build_decoder(shape, latent_dim, name="decoder", batchnorm=False):
    """latent vector -> image; used as the VAE decoder and (with batch-norm, as in DCGAN)
    as the GAN generator. Colour images get twice the channels."""
    h, w, c = shape
    k = 2 if c == 3 else 1
    z = keras.Input((latent_dim,), name="z")

    def norm_relu(x):
        return layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x) if batchnorm else x)

    x = norm_relu(layers.Dense((h // 4) * (w // 4) * 64 * k, use_bias=not batchnorm)(z))
    x = layers.Reshape((h // 4, w // 4, 64 * k))(x)
    x = norm_relu(layers.Conv2DTranspose(32 * k, 3, strides=2, padding="same", use_bias=not batchnorm)(x))
    x = norm_relu(layers.Conv2DTranspose(16 * k, 3, strides=2, padding="same", use_bias=not batchnorm)(x))
    out = layers.Conv2D(c, 3, padding="same", activation="sigmoid", name="pixels")(x)
    return keras.Model(z, out, name=name)


def reconstruction_loss(y_true, y_pred):
    """Bernoulli negative log-likelihood summed over pixels (nats per image)."""
    return ops.sum(keras.losses.binary_crossentropy(y_true[..., None], y_pred[..., None]), axis=(1, 2, 3))


def build_vae(shape, latent_dim, seed=0):
    encoder, decoder = build_encoder(shape, latent_dim), build_decoder(shape, latent_dim)
    inputs = keras.Input(shape, name="image")
    z_mean, z_log_var = encoder(inputs)
    z = Sampling(seed=seed, name="sampling")(z_mean, z_log_var)
    vae = keras.Model(inputs, decoder(z), name="vae")
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), loss=reconstruction_loss)
    return vae, encoder, decoder


def train_vae(x_tr, x_val, args, latent_dim):
    vae, encoder, decoder = build_vae(x_tr.shape[1:], latent_dim, seed=args.seed)
    runtime.init_weights(vae, args.seed)
    data = batches(x_tr, x_tr, args.batch_size, args.seed)
    stop = keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)
    hist = vae.fit(
        data,
        validation_data=(x_val, x_val),
        epochs=args.epochs,
        verbose=args.verbose,
        callbacks=resumable(f"vae_latent{latent_dim}_seed{args.seed}", [stop, *tensorboard("vae")], data),
    )
    return vae, encoder, decoder, hist.history


def study_vae(args, run, images, quality, rng, metrics, history):
    """Train the VAE, score it on the test images (ELBO, reconstruction error, the Frechet
    distance of prior samples) and draw its figures; returns (table row, report line)."""
    x_te, latent = images.test, args.latent_dim
    vae, encoder, decoder, history["vae"] = train_vae(images.train, images.val, args, latent)
    runtime.save_model(vae, run.path("vae.keras"))
    neg_elbo = float(vae.evaluate(x_te, x_te, verbose=0, batch_size=256))
    z_mean, _ = encoder.predict(x_te, verbose=0)
    recon = decoder.predict(z_mean, verbose=0)
    samples = decoder.predict(rng.normal(size=(quality.n, latent)).astype("float32"), verbose=0)
    fd = quality.distance(samples)
    m = {
        "vae_test_elbo": -neg_elbo,
        "vae_test_recon_mse": float(np.mean((recon - x_te) ** 2)),
        "vae_fd": fd,
        "vae_latent_dim": latent,
        "vae_epochs_trained": len(history["vae"]["loss"]),
    }
    metrics.update(m)
    plots.image_grid(
        np.concatenate([x_te[:10], recon[:10]]),
        run.path("vae_reconstructions.png"),
        "test images (top) and VAE reconstructions (bottom)",
    )
    plots.image_grid(samples[:50], run.path("vae_samples.png"), "VAE samples from the prior N(0, I)")
    figures = [("vae_reconstructions.png", "VAE reconstructions"), ("vae_samples.png", "VAE samples")]
    if latent == 2:
        g = np.linspace(-2.5, 2.5, 12)
        grid = np.array([[x, y] for y in g[::-1] for x in g], "float32")
        plots.image_grid(
            decoder.predict(grid, verbose=0),
            run.path("vae_latent_map.png"),
            "decoded latent grid, z in [-2.5, 2.5]^2",
            ncols=12,
        )
        plots.latent_scatter(z_mean, images.d.y_test, run.path("vae_latent_scatter.png"), "test images in latent space")
        figures += [("vae_latent_map.png", "VAE latent map"), ("vae_latent_scatter.png", "latent space")]
    note = (
        f"VAE: latent {latent}, test ELBO **{m['vae_test_elbo']:.2f}** nats/image "
        f"(reconstruction MSE {m['vae_test_recon_mse']:.4f}), {m['vae_epochs_trained']} epochs"
    )
    return {"samples": f"VAE prior samples (latent {latent})", "frechet_distance": fd}, note, figures
