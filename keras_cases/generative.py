"""Generative models: a convolutional VAE and a DCGAN that train on every backend.

    python -m keras_cases.generative --model vae   [--data mnist|digits] [--latent-dim 2]
    python -m keras_cases.generative --model gan   [--data mnist|digits]
    python -m keras_cases.generative --model both

The VAE is an ordinary Keras model: a `Sampling` layer applies the reparameterisation
trick and adds the KL term with `add_loss`, so `fit` trains it on any backend. The GAN
alternates two compiled Keras models, written once: the discriminator learns real vs fake
with `train_on_batch`, then a stacked generator -> frozen-discriminator model teaches the
generator to fool it. No backend-specific train step is needed.

Sample quality is the Frechet distance between Gaussians fitted to features of real test
images and of samples, in the penultimate layer of a small classifier trained here on the
same training split (FID's recipe with a project-trained network instead of Inception,
so it is computable offline). The real-vs-real distance (test vs validation images) is
the floor beside it.
"""

import time

import keras
import numpy as np
from keras import layers, ops

from keras_cases import UserError, cli, plots, runtime
from keras_cases.callbacks import resumable, scalar_logger, tensorboard
from keras_cases.data import arrays, batches, images
from keras_cases.evaluation import frechet_distance
from keras_cases.runs import Run, command, markdown_table

CASE = "generative"
DATASETS = ("mnist", "digits", "cifar10")
CIFAR_PER_CLASS = 1000


# --- data ---------------------------------------------------------------------------
def load_data(name="mnist", quick=False):
    """Images in [0, 1] with a channel axis, on the fixed splits of keras_cases.data.
    CIFAR-10 runs at small scale: the first 1,000 training images of each class (10,000),
    the 5,000 validation and 10,000 test images."""
    if name not in DATASETS:
        raise UserError(f"--data {name!r}: the generative case runs on {', '.join(DATASETS)}")
    if name == "cifar10":
        d = images.cifar10_per_class(100) if quick else images.per_class(images.load_cifar10(), CIFAR_PER_CLASS)
        scale = lambda x: (x / 255.0).astype("float32")  # noqa: E731
        return d, scale(d.x_train), scale(d.x_val), scale(d.x_test)
    d = arrays.load(name)
    if quick:
        d = d.subset(1000, 500, 500)
    add = lambda x: x[..., None].astype("float32")  # noqa: E731
    return d, add(d.x_train), add(d.x_val), add(d.x_test)


# --- the VAE ------------------------------------------------------------------------
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


# --- the GAN ------------------------------------------------------------------------
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
    generator, discriminator, stacked = build_gan(x_tr.shape[1:], latent_dim)
    runtime.init_weights(generator, args.seed)
    runtime.init_weights(discriminator, args.seed + 1)
    rng = np.random.default_rng(args.seed)
    history, frames = {"d_loss": [], "g_loss": []}, []
    steps = len(x_tr) // args.batch_size
    log = scalar_logger("gan")
    for epoch in range(args.gan_epochs):
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
    return generator, discriminator, history, frames


# --- sample quality -----------------------------------------------------------------
def feature_extractor(d, x_tr, x_val, args):
    """A small CNN classifier trained on the same split; its penultimate layer is the
    feature space of the Frechet distance."""
    inputs = keras.Input(x_tr.shape[1:])
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    feats = layers.Dense(64, name="features")(x)  # pre-activation: no dead, constant dims
    clf = keras.Model(inputs, layers.Dense(d.n_classes, activation="softmax")(layers.ReLU()(feats)))
    runtime.init_weights(clf, args.seed + 7)
    clf.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    data = batches(x_tr, d.y_train, 128, args.seed)
    clf.fit(
        data,
        validation_data=(x_val, d.y_val),
        epochs=2 if args.quick else 8,
        verbose=0,
        callbacks=resumable(f"feature_classifier_seed{args.seed}", [], data),
    )
    acc = float(clf.evaluate(x_val, d.y_val, verbose=0)[1])
    extractor = keras.Model(inputs, feats)
    f_tr = extractor.predict(x_tr, verbose=0)
    mu, sd = f_tr.mean(0), f_tr.std(0) + 1e-6

    def features(x):  # standardised with training-image statistics: distances are scale-free
        return (extractor.predict(x, verbose=0) - mu) / sd

    return features, acc


# --- the command --------------------------------------------------------------------
def make_parser():
    p = cli.parser("python -m keras_cases.generative", __doc__.split("\n\n")[0], epochs=30, batch_size=128)
    g = p.add_argument_group("generative models")
    g.add_argument("--model", choices=("vae", "gan", "both"), default="both")
    g.add_argument(
        "--data",
        default="mnist",
        choices=DATASETS,
        help="mnist (offline: its 10,000-image test split), digits, or cifar10 (small scale: "
        f"{CIFAR_PER_CLASS} training images per class; offline: the JPEG copy)",
    )
    g.add_argument("--latent-dim", type=cli.positive_int, default=2, help="VAE latent size (2 draws the latent map)")
    g.add_argument("--gan-epochs", type=cli.positive_int, default=15)
    g.add_argument("--gan-latent-dim", type=cli.positive_int, default=32)
    return p


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    if args.quick:
        args.epochs, args.gan_epochs = min(args.epochs, 3), min(args.gan_epochs, 2)
    t0 = time.time()
    runtime.set_seed(args.seed)
    runtime.set_threads(args.threads)
    d, x_tr, x_val, x_te = load_data(args.data, args.quick)
    if args.model in ("gan", "both") and args.batch_size > len(x_tr):
        raise UserError(
            f"--batch-size {args.batch_size} is more than the {len(x_tr):,} training images: the GAN "
            "trains on whole batches, so it would take no step"
        )
    run = Run(CASE, args.out, tensorboard=args.tensorboard, overwrite=args.overwrite)
    info = runtime.backend_report()
    print(
        f"{d.name}: {len(x_tr)} train / {len(x_val)} val / {len(x_te)} test images "
        f"{x_tr.shape[1:]}; backend {info['backend']}; writing {run.dir}",
        flush=True,
    )
    n_fd = min(len(x_te), len(x_val), 1000)
    feats, clf_acc = feature_extractor(d, x_tr, x_val, args)
    f_test = feats(x_te[:n_fd])
    fd_floor = frechet_distance(f_test, feats(x_val[:n_fd]))
    metrics = {
        **info,
        "case": CASE,
        "dataset": d.name,
        "n_train": len(x_tr),
        "n_val": len(x_val),
        "n_test": len(x_te),
        "seed": args.seed,
        "model": args.model,
        "fd_real_vs_real": fd_floor,
        "feature_classifier_val_accuracy": clf_acc,
    }
    rows, history = [{"samples": "real test vs real validation", "frechet_distance": fd_floor}], {}
    rng = np.random.default_rng(args.seed + 100)

    if args.model in ("vae", "both"):
        vae, encoder, decoder, history["vae"] = train_vae(x_tr, x_val, args, args.latent_dim)
        runtime.save_model(vae, run.path("vae.keras"))
        neg_elbo = float(vae.evaluate(x_te, x_te, verbose=0, batch_size=256))
        z_mean, _ = encoder.predict(x_te, verbose=0)
        recon = decoder.predict(z_mean, verbose=0)
        samples = decoder.predict(rng.normal(size=(n_fd, args.latent_dim)).astype("float32"), verbose=0)
        fd = frechet_distance(f_test, feats(samples))
        metrics.update(
            {
                "vae_test_elbo": -neg_elbo,
                "vae_test_recon_mse": float(np.mean((recon - x_te) ** 2)),
                "vae_fd": fd,
                "vae_latent_dim": args.latent_dim,
                "vae_epochs_trained": len(history["vae"]["loss"]),
            }
        )
        rows.append({"samples": f"VAE prior samples (latent {args.latent_dim})", "frechet_distance": fd})
        plots.image_grid(
            np.concatenate([x_te[:10], recon[:10]]),
            run.path("vae_reconstructions.png"),
            "test images (top) and VAE reconstructions (bottom)",
        )
        plots.image_grid(samples[:50], run.path("vae_samples.png"), "VAE samples from the prior N(0, I)")
        if args.latent_dim == 2:
            g = np.linspace(-2.5, 2.5, 12)
            grid = np.array([[x, y] for y in g[::-1] for x in g], "float32")
            plots.image_grid(
                decoder.predict(grid, verbose=0),
                run.path("vae_latent_map.png"),
                "decoded latent grid, z in [-2.5, 2.5]^2",
                ncols=12,
            )
            plots.latent_scatter(z_mean, d.y_test, run.path("vae_latent_scatter.png"), "test images in latent space")

    if args.model in ("gan", "both"):
        fixed_z = rng.normal(size=(10, args.gan_latent_dim)).astype("float32")
        generator, discriminator, history["gan"], frames = train_gan(x_tr, args, args.gan_latent_dim, fixed_z)
        runtime.save_model(generator, run.path("generator.keras"))
        samples = generator.predict(rng.normal(size=(n_fd, args.gan_latent_dim)).astype("float32"), verbose=0)
        fd = frechet_distance(f_test, feats(samples))
        metrics.update(
            {
                "gan_fd": fd,
                "gan_epochs": args.gan_epochs,
                "gan_final_d_loss": history["gan"]["d_loss"][-1],
                "gan_final_g_loss": history["gan"]["g_loss"][-1],
            }
        )
        rows.append({"samples": f"DCGAN samples (latent {args.gan_latent_dim})", "frechet_distance": fd})
        plots.image_grid(samples[:50], run.path("gan_samples.png"), "DCGAN samples")
        keep = sorted(set(np.linspace(0, len(frames) - 1, min(len(frames), 8)).astype(int)))
        plots.image_grid(
            np.concatenate([frames[i] for i in keep]),
            run.path("gan_progress.png"),
            "the same 10 latent vectors over training",
            row_labels=[f"epoch {i + 1}" for i in keep],
        )

    plots.learning_curves(
        history,
        run.path("learning_curves.png"),
        metrics=[m for m in ("loss", "d_loss", "g_loss") if any(m in h for h in history.values())],
    )
    run.write_history(history)
    run.write_json("config.json", vars(args))
    metrics["seconds"] = round(time.time() - t0, 2)
    run.write_json("metrics.json", metrics)
    run.write_text("report.md", report(metrics, rows, args))
    print(markdown_table(rows, ["samples", "frechet_distance"]))
    if "vae_test_elbo" in metrics:
        print(f"VAE test ELBO {metrics['vae_test_elbo']:.2f} nats/image")
    print(f"wrote {run.dir}/")
    return 0


def report(m, rows, args) -> str:
    figs = [
        ("vae_reconstructions.png", "VAE reconstructions"),
        ("vae_samples.png", "VAE samples"),
        ("vae_latent_map.png", "VAE latent map"),
        ("vae_latent_scatter.png", "latent space"),
        ("gan_progress.png", "GAN samples over training"),
        ("gan_samples.png", "GAN samples"),
        ("learning_curves.png", "learning curves"),
    ]
    vae = (
        f"- VAE: latent {m['vae_latent_dim']}, test ELBO **{m['vae_test_elbo']:.2f}** nats/image "
        f"(reconstruction MSE {m['vae_test_recon_mse']:.4f}), {m['vae_epochs_trained']} epochs\n"
        if "vae_test_elbo" in m
        else ""
    )
    gan = (
        f"- DCGAN: {m['gan_epochs']} epochs, final losses D {m['gan_final_d_loss']:.3f} / "
        f"G {m['gan_final_g_loss']:.3f}\n"
        if "gan_fd" in m
        else ""
    )
    shown = "\n\n".join(
        f"![{t}]({f})"
        for f, t in figs
        if (
            f.startswith("vae")
            and "vae_test_elbo" in m
            and (f != "vae_latent_map.png" and f != "vae_latent_scatter.png" or m["vae_latent_dim"] == 2)
        )
        or (f.startswith("gan") and "gan_fd" in m)
        or f.startswith("learning")
    )
    return f"""# Generative models

- data: {m["dataset"]}; {m["n_train"]} train / {m["n_val"]} val / {m["n_test"]} test images
- backend: {m["backend"]} (Keras {m["keras_version"]}); seed {m["seed"]}; {m["seconds"]} s
{vae}{gan}
## Sample quality

Frechet distance in the 64-d feature space of a CNN classifier trained here on the same
training split (validation accuracy {m["feature_classifier_val_accuracy"]:.3f}); lower is
better, and real-vs-real is the floor.

{markdown_table(rows, ["samples", "frechet_distance"])}

{shown}
"""


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
