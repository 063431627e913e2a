"""Generative models: a convolutional VAE, a DCGAN and a diffusion model that train on every backend.

    python -m keras_cases.generative --model vae   [--data mnist|digits|cifar10] [--latent-dim 2]
    python -m keras_cases.generative --model gan   [--data mnist|digits|cifar10]
    python -m keras_cases.generative --model diffusion [--noise-schedule cosine] [--prediction v] [--sample-steps 50]
    python -m keras_cases.generative --model all

The VAE is an ordinary Keras model: a `Sampling` layer applies the reparameterisation
trick and adds the KL term with `add_loss`, so `fit` trains it on any backend. The GAN
alternates two compiled Keras models, written once: the discriminator learns real vs fake
with `train_on_batch`, then a stacked generator -> frozen-discriminator model teaches the
generator to fool it. No backend-specific train step is needed, and the loop checkpoints
every epoch, so `--resume RUN_DIR` continues an interrupted GAN as it does a fit. The
diffusion model is a U-Net trained as in DDPM on x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps
(cosine noise schedule) to predict v = sqrt(ab_t) eps - sqrt(1 - ab_t) x_0 (or eps, as DDPM
did); t and eps are drawn in NumPy per batch, so it is a plain `fit` too, and it samples
with DDIM (eta 0) in a NumPy loop around `predict_on_batch`.

Sample quality is the Frechet distance between Gaussians fitted to features of real test
images and of samples, in the penultimate layer of a small classifier trained here on the
same training split (FID's recipe with a project-trained network instead of Inception,
so it is computable offline). The real-vs-real distance (test vs validation images) is
the floor beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_cases import UserError, cli, plots
from keras_cases.data import arrays, images
from keras_cases.generative.diffusion import PREDICTIONS, SCHEDULES, study_diffusion
from keras_cases.generative.gan import study_gan
from keras_cases.generative.quality import sample_quality
from keras_cases.generative.vae import study_vae
from keras_cases.runs import command, markdown_table

CASE = "generative"
DATASETS = ("mnist", "digits", "cifar10")
CIFAR_PER_CLASS = 1000
MODELS = {"vae": study_vae, "gan": study_gan, "diffusion": study_diffusion}
QUICK = {  # and a data subset, see load_data
    "epochs": lambda v: min(v, 3),
    "gan_epochs": lambda v: min(v, 2),
    "diffusion_epochs": lambda v: min(v, 2),
    "sample_steps": lambda v: min(v, 10),
}


@dataclass
class Images:
    d: object  # the keras_cases.data split: name, labels, classes
    train: np.ndarray  # images in [0, 1] with a channel axis
    val: np.ndarray
    test: np.ndarray


def load_data(name="mnist", quick=False) -> Images:
    """Images in [0, 1] with a channel axis, on the fixed splits of keras_cases.data.
    CIFAR-10 runs at small scale: the first 1,000 training images of each class (10,000),
    the 5,000 validation and 10,000 test images."""
    if name not in DATASETS:
        raise UserError(f"--data {name!r}: the generative case runs on {', '.join(DATASETS)}")
    if name == "cifar10":
        d = images.cifar10_per_class(100) if quick else images.per_class(images.load_cifar10(), CIFAR_PER_CLASS)
        scale = lambda x: (x / 255.0).astype("float32")  # noqa: E731
        return Images(d, scale(d.x_train), scale(d.x_val), scale(d.x_test))
    d = arrays.load(name)
    if quick:
        d = d.subset(1000, 500, 500)
    add = lambda x: x[..., None].astype("float32")  # noqa: E731
    return Images(d, add(d.x_train), add(d.x_val), add(d.x_test))


def model_choice(text: str) -> str:
    return "all" if text == "both" else text  # `both`: the spelling before `all`, still accepted


def make_parser():
    p = cli.parser("python -m keras_cases.generative", __doc__.split("\n\n")[0], epochs=30, batch_size=128, quick=QUICK)
    g = p.add_argument_group("generative models")
    g.add_argument("--model", type=model_choice, choices=(*MODELS, "all"), default="all", help="which models to train")
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
    g.add_argument("--diffusion-epochs", type=cli.positive_int, default=20)
    g.add_argument(
        "--diffusion-batch-size",
        type=cli.positive_int,
        default=64,
        help="the U-Net's batch (DDPM learns per step: smaller batches, more steps for the same compute)",
    )
    g.add_argument(
        "--diffusion-steps", type=cli.positive_int, default=1000, help="DDPM noise levels T (training timesteps)"
    )
    g.add_argument(
        "--sample-steps", type=cli.positive_int, default=50, help="DDIM sampling steps (at most --diffusion-steps)"
    )
    diffusion_training_flags(g)
    return p


def diffusion_training_flags(g) -> None:
    g.add_argument(
        "--noise-schedule",
        choices=SCHEDULES,
        default="cosine",
        help="alpha_bar_t: cosine (Nichol & Dhariwal 2021) or DDPM's linear betas",
    )
    g.add_argument(
        "--prediction",
        choices=PREDICTIONS,
        default="v",
        help="what the U-Net learns: v = sqrt(ab) eps - sqrt(1 - ab) x0 (Salimans & Ho 2022) or the noise eps (DDPM)",
    )
    g.add_argument(
        "--min-snr-gamma",
        type=cli.nonnegative_float,
        default=0.0,
        help="weight the loss per timestep by Min-SNR-gamma (Hang et al. 2023; they use 5); 0: unweighted",
    )


def check_flags(args) -> None:
    """Mistakes the flags alone show, found before any data is loaded."""
    if args.diffusion_steps < 2:
        raise UserError(
            f"--diffusion-steps {args.diffusion_steps}: the noise schedule needs at least 2 steps to reach pure noise"
        )
    if args.sample_steps > args.diffusion_steps:
        raise UserError(
            f"--sample-steps {args.sample_steps} is more than --diffusion-steps {args.diffusion_steps}: DDIM "
            "visits a subset of the training timesteps"
        )


def check_args(args, x: Images, models) -> None:
    if "gan" in models and args.batch_size > len(x.train):
        raise UserError(
            f"--batch-size {args.batch_size} is more than the {len(x.train):,} training images: the GAN "
            "trains on whole batches, so it would take no step"
        )


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    models = list(MODELS) if args.model == "all" else [args.model]
    check_flags(args)
    x = load_data(args.data, args.quick)
    check_args(args, x, models)
    shape = f"{len(x.train)} train / {len(x.val)} val / {len(x.test)} test images {x.train.shape[1:]}"
    run, _, _ = cli.start(CASE, args, f"{x.d.name}: {shape}")
    quality = sample_quality(x, args)
    metrics = {
        "dataset": x.d.name,
        "n_train": len(x.train),
        "n_val": len(x.val),
        "n_test": len(x.test),
        "seed": args.seed,
        "model": args.model,
        "fd_real_vs_real": quality.floor,
        "feature_classifier_val_accuracy": quality.classifier_accuracy,
    }
    history = {}
    rng = np.random.default_rng(args.seed + 100)  # the prior samples of every model, in turn
    done = [MODELS[name](args, run, x, quality, rng, metrics, history) for name in models]
    section = quality_section(run, quality, done, history)
    if "vae_test_elbo" in metrics:
        print(f"VAE test ELBO {metrics['vae_test_elbo']:.2f} nats/image")
    run.finish(
        metrics,
        [("Sample quality", section)],
        title="Generative models",
        headline={
            k: metrics.get(m)
            for k, m in (
                ("elbo", "vae_test_elbo"),
                ("vae_fd", "vae_fd"),
                ("gan_fd", "gan_fd"),
                ("diffusion_fd", "diffusion_fd"),
            )
        },
        history=history,
        notes=[note for _, note, _ in done],
    )
    return 0


def quality_section(run, quality, done, history) -> str:
    """The learning curves, and the table of Frechet distances (printed too) above every figure."""
    plots.learning_curves(
        history,
        run.path("learning_curves.png"),
        metrics=[
            m for m in ("loss", "d_loss", "g_loss", "noise_mse", "v_mse") if any(m in h for h in history.values())
        ],
    )
    rows = [{"samples": "real test vs real validation", "frechet_distance": quality.floor}]
    table = markdown_table([*rows, *(row for row, _, _ in done)], ["samples", "frechet_distance"])
    print(table)
    figures = [*(f for _, _, shown in done for f in shown), ("learning_curves.png", "learning curves")]
    shown = "\n\n".join(f"![{title}]({f})" for f, title in figures)
    return f"""Frechet distance in the 64-d feature space of a CNN classifier trained here on the same
training split (validation accuracy {quality.classifier_accuracy:.3f}); lower is
better, and real-vs-real is the floor.

{table}

{shown}"""


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
