"""Representation learning: autoencoders vs PCA, encoder reuse, a self-supervised pretext task.

Three parts, each a table and a plot; where a claim depends on the seed, a mean ± std
over `--seeds`:

a. ae        dense autoencoders on MNIST with a bottleneck of k in {2, 4, ..., 128}: test
             reconstruction MSE (pixels in [0, 1]) against PCA (scikit-learn) with the
             same k, and reconstructions side by side.
b. reuse     the k=32 encoder (+ batch norm + softmax) as a digit classifier trained on a small
             labelled subset (1,000 labels): {random, autoencoder-trained} encoder x
             {frozen, fine-tuned}. The autoencoder saw every training image, without labels.
c. rotation  self-supervised pretraining on CIFAR-10: a small conv net learns which of
             0/90/180/270 degrees an unlabelled image was turned by; its first blocks then
             start a CIFAR-10 classifier trained on a few labels per class, frozen vs
             fine-tuned vs the same network from scratch. The pretrained backbone is saved
             as `rotation_backbone.keras`; `python -m keras_cases.transfer` reuses it.

Offline, MNIST is its 10,000-image test split (6,000 / 2,000 / 2,000; see data.arrays)
and CIFAR-10 is the JPEG copy. Every network is a functional model on raw uint8 pixels
(Rescaling inside), initialised from NumPy (runtime.init_weights) and fed batches shuffled
in NumPy, so a seed gives the same initial model and batches on every backend (fit runs with
shuffle=False: Keras would otherwise also reorder a PyDataset's batches with Python's global
`random`, so the order would depend on whatever ran before).

    python -m keras_cases.representation                     # all three, 3 seeds (~9 min on 2 busy CPU cores, JAX)
    python -m keras_cases.representation --parts ae --seeds 5
    python -m keras_cases.representation --parts rotation --pretext-images 45000
    python -m keras_cases.representation --quick
"""

from __future__ import annotations

import sys
import time

import keras
import numpy as np
from keras import layers

from keras_cases import UserError, cli, plots, runtime
from keras_cases.callbacks import resumable, tensorboard
from keras_cases.data import batches, images, resumable_epochs
from keras_cases.runs import command, markdown_table

CASE = "representation"
PARTS = {"a": "ae", "b": "reuse", "c": "rotation"}
BOTTLENECKS = (2, 4, 8, 16, 32, 64, 128)
HIDDEN = 256
WIDTHS = (32, 64, 128)  # conv blocks of the rotation backbone
VARIANTS = ("random frozen", "random fine-tuned", "trained frozen", "trained fine-tuned")
TRANSFER = ("frozen", "fine-tuned", "scratch")
BACKBONE_FILE = "rotation_backbone.keras"
# --quick (1,000 MNIST training images), for every flag the user did not type: enough epochs
# that each part learns (tested); the batch size stays as given with --distribute
QUICK = {
    "epochs": 20,
    "clf_epochs": 10,
    "batch_size": 50,
    "pretext_epochs": 2,
    "transfer_epochs": 2,
    "labels": 200,
    "labels_per_class": 10,
    "pretext_images": 400,
    "seeds": 1,
}
MNIST_PIXELS = 28 * 28  # the largest code size PCA can have on MNIST (parts a and b)


def mean_std(values) -> tuple[float, float]:
    v = np.asarray(values, "float64")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def pm(values, fmt="{:.4f}") -> str:
    m, s = mean_std(values)
    return f"{fmt.format(m)} ± {fmt.format(s)}" if len(values) > 1 else fmt.format(m)


def verdict(diffs, claim: str) -> str:
    """Whether a claim about a difference (positive = the claim) holds over the seeds."""
    m, sd = mean_std(diffs)
    if len(diffs) < 2:
        return f"{claim}: {'yes' if m > 0 else 'no'}, one seed only"
    if m - 2 * sd / np.sqrt(len(diffs)) > 0:
        return f"{claim}: yes, on every seed" if min(diffs) > 0 else f"{claim}: yes, on average"
    return f"{claim}: not shown at this scale" if m > 0 else f"{claim}: no"


def unit(x) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1] (the reconstruction target)."""
    return np.asarray(x, "float32") / 255.0


class EpochTimes(keras.callbacks.Callback):
    """Wall-clock seconds of every epoch (the first one includes compilation)."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.t)

    def resume_state(self) -> dict:  # a resumed fit keeps the epochs timed before the stop
        return {"seconds": list(self.seconds)}

    def resume_from(self, state: dict) -> None:
        self.seconds = list(state["seconds"])


def eval_batch(n_val: int) -> int:
    """One batch size for validation and test: the whole validation set (up to 5,000), so
    each model compiles one evaluation step on JAX when the test set is a multiple of it."""
    return min(n_val, 5000)


def train_seconds(timer) -> float:
    """Training time without compilation: the median epoch time x the number of epochs."""
    return float(np.median(timer.seconds[1:] if len(timer.seconds) > 1 else timer.seconds) * len(timer.seconds))


def moved(before, after) -> int:
    """How many of the weight arrays differ (frozen ones must not)."""
    return sum(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(before, after))


def restart(model, seed: int, weights: dict | None = None) -> None:
    """Start a compiled model again: weights drawn from `seed` (runtime.init_weights), then
    `weights` ({sub-model or layer: its weights}) put in, and a fresh optimizer state. The
    compiled train and test functions stay: compiling costs seconds per model on XLA's CPU
    backend, more than a small model's whole training here."""
    runtime.init_weights(model, seed)
    for part, w in (weights or {}).items():
        part.set_weights(w)
    opt = model.optimizer
    if opt is not None and opt.built:
        for v in opt.variables:
            if not v.path.endswith("learning_rate"):
                v.assign(np.zeros(v.shape, v.dtype))


# --- a. autoencoders vs PCA ------------------------------------------------------------
def build_autoencoder(k: int, shape=(28, 28, 1), hidden: int = HIDDEN):
    """(autoencoder, encoder): raw pixels -> [Dense(hidden, relu) -> Dense(k)] -> code ->
    [Dense(hidden, relu) -> Dense(pixels, sigmoid)] -> an image in [0, 1]."""
    d = int(np.prod(shape))
    inputs = keras.Input(shape, name="pixels")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(hidden, activation="relu", name="enc_hidden")(x)
    code = layers.Dense(k, name="code")(x)
    encoder = keras.Model(inputs, code, name=f"encoder_k{k}")
    z = keras.Input((k,), name="code")
    y = layers.Dense(hidden, activation="relu", name="dec_hidden")(z)
    y = layers.Dense(d, activation="sigmoid", name="dec_pixels")(y)
    decoder = keras.Model(z, layers.Reshape(shape, name="image")(y), name=f"decoder_k{k}")
    return keras.Model(inputs, decoder(encoder(inputs)), name=f"autoencoder_k{k}"), encoder


def autoencoder_params(k: int, d: int = 784, hidden: int = HIDDEN) -> int:
    """Weights + biases of both halves: (d h + h) + (h k + k) + (k h + h) + (h d + d)."""
    return (d * hidden + hidden) + (hidden * k + k) + (k * hidden + hidden) + (hidden * d + d)


def compiled_autoencoder(k, shape):
    ae, encoder = build_autoencoder(k, shape)
    ae.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return ae, encoder


def train_autoencoder(ae, d, args, seed, name="autoencoder"):
    """Train (or retrain) a compiled autoencoder from `seed`; returns (history, results)
    with the test MSE (pixels in [0, 1])."""
    restart(ae, seed)
    timer = EpochTimes()
    data = batches(d.x_train, unit(d.x_train), args.batch_size, seed)
    hist = ae.fit(
        data,
        validation_data=(d.x_val, unit(d.x_val)),
        validation_batch_size=eval_batch(len(d.x_val)),
        epochs=args.epochs,
        verbose=args.verbose,
        shuffle=False,
        callbacks=resumable(
            name,
            [keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True), timer, *tensorboard(name)],
            data,
        ),
    ).history
    mse = float(
        ae.evaluate(
            d.x_test,
            unit(d.x_test),
            verbose=0,  # the exact mean over pixels
            batch_size=eval_batch(len(d.x_val)),
        )
    )
    return hist, {"mse": mse, "seconds": train_seconds(timer), "epochs_run": len(hist["loss"])}


def pca_reconstruct(x_train, x_test, k: int):
    """(test MSE, reconstructions) of PCA with k components fit on the training images
    (pixels in [0, 1], flattened; reconstructions are not clipped)."""
    from sklearn.decomposition import PCA

    flat = lambda x: unit(x).reshape(len(x), -1)  # noqa: E731
    pca = PCA(n_components=k, svd_solver="full").fit(flat(x_train))
    recon = pca.inverse_transform(pca.transform(flat(x_test)))
    return float(np.mean((recon - flat(x_test)) ** 2)), recon.reshape(x_test.shape)


# --- b. encoder reuse ------------------------------------------------------------------
def labelled_subset(d, n_labels: int):
    """The first n_labels / n_classes training images of every class (indices)."""
    per = max(1, n_labels // d.n_classes)
    return np.sort(np.concatenate([np.flatnonzero(d.y_train == c)[:per] for c in range(d.n_classes)]))


def build_encoder_classifier(k, shape, n_classes, frozen=False, hidden: int = HIDDEN):
    """(classifier, encoder): the encoder of `build_autoencoder(k)`, a batch norm that
    standardises its code, and a softmax layer; `frozen` leaves only the last two trainable
    (a linear classifier on the standardised code). The autoencoder's code is unscaled
    (std ~4 per dimension): without the batch norm a frozen probe underfits at Adam 1e-3 and
    a fresh softmax layer's first large gradients knock the pretrained encoder about."""
    _, encoder = build_autoencoder(k, shape, hidden)
    inputs = keras.Input(shape, name="pixels")
    code = layers.BatchNormalization(momentum=0.9, name="code_norm")(encoder(inputs))
    out = layers.Dense(n_classes, activation="softmax", name="class")(code)
    encoder.trainable = not frozen
    return keras.Model(inputs, out, name="encoder_classifier"), encoder


def compile_classifier(model, lr=1e-3):
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train_classifier(model, x, y, d, args, seed, epochs, augmented=False, name="classifier"):
    """Fit a compiled classifier (already `restart`ed) on (x, y); validation and test on d."""
    data = (
        resumable_epochs(images.augmented_batches(x, y, args.batch_size, seed))
        if augmented
        else batches(x, y, args.batch_size, seed)
    )
    timer = EpochTimes()
    hist = model.fit(
        data,
        validation_data=(d.x_val, d.y_val),
        validation_batch_size=eval_batch(len(d.x_val)),
        epochs=epochs,
        verbose=args.verbose,
        callbacks=resumable(name, [timer, *tensorboard(name)], data),
        shuffle=False,
    ).history
    test = float(model.evaluate(d.x_test, d.y_test, verbose=0, batch_size=eval_batch(len(d.x_val)))[1])
    return hist, {
        "test_accuracy": test,
        "val_accuracy": hist["val_accuracy"][-1],
        "seconds": train_seconds(timer),
        "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
    }


# --- c. rotation pretext ---------------------------------------------------------------
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
    inputs = keras.Input(backbone.input_shape[1:], name="pixels")
    x = layers.GlobalAveragePooling2D(name="pool")(backbone(inputs))
    return keras.Model(inputs, layers.Dense(n_classes, activation="softmax", name="class")(x), name=name)


def pretrain_rotation(x_unlabelled, x_val, args, seed, widths=WIDTHS, epochs=None, verbose=None):
    """Train a backbone to predict rotations; returns (backbone, rotation model, history, seconds)."""
    backbone = build_backbone(widths, x_unlabelled.shape[1])
    model = compile_classifier(build_conv_classifier(backbone, 4, "rotation_net"), lr=2e-3)
    runtime.init_weights(model, seed)
    timer = EpochTimes()
    data = rotation_batches(x_unlabelled, args.batch_size, seed)
    hist = model.fit(
        data,
        validation_data=rotations(x_val),
        validation_batch_size=eval_batch(4 * len(x_val)),
        epochs=epochs or args.pretext_epochs,
        callbacks=resumable(f"rotation_pretext_seed{seed}", [timer, *tensorboard("rotation_pretext")], data),
        shuffle=False,
        verbose=args.verbose if verbose is None else verbose,
    ).history
    return backbone, model, hist, train_seconds(timer)


def transfer_model(widths, n_classes, k: int = 0, frozen=False, size=32):
    """(classifier, backbone): the backbone architecture + pooling + softmax for CIFAR;
    `frozen` fixes its first k blocks (their batch norm then runs in inference mode)."""
    backbone = build_backbone(widths, size, name="backbone")
    model = build_conv_classifier(backbone, n_classes, "cifar_classifier")
    for i in range(1, k + 1):
        for part in ("conv", "bn"):
            backbone.get_layer(f"block{i}_{part}").trainable = not frozen
    return model, backbone


def pretrained_blocks(model_backbone, pretrained, k: int) -> dict:
    """{layer of model_backbone: pretrained weights} for the first k blocks (for `restart`)."""
    return {
        model_backbone.get_layer(f"block{i}_{part}"): pretrained.get_layer(f"block{i}_{part}").get_weights()
        for i in range(1, k + 1)
        for part in ("conv", "bn")
    }


# --- the command ---------------------------------------------------------------------
def make_parser():
    p = cli.parser(
        "python -m keras_cases.representation", __doc__.split("\n\n")[0], epochs=50, batch_size=100, threads=1
    )
    g = p.add_argument_group("representation")
    g.add_argument("--parts", default="ae,reuse,rotation", help="comma-separated: a (ae), b (reuse), c (rotation)")
    g.add_argument(
        "--bottlenecks", default=",".join(map(str, BOTTLENECKS)), help="autoencoder / PCA code sizes k (part a)"
    )
    g.add_argument("--reuse-k", type=cli.positive_int, default=32, help="code size of the reused encoder (part b)")
    g.add_argument(
        "--labels",
        type=cli.positive_int,
        default=1000,
        help="labelled MNIST training images for the classifiers of part b (balanced)",
    )
    g.add_argument("--clf-epochs", type=cli.positive_int, default=60, help="epochs of each part-b classifier")
    g.add_argument(
        "--probe-lr",
        type=cli.positive_float,
        default=1e-2,
        help="Adam learning rate of the frozen-encoder classifiers (part b; fine-tuned: 1e-3)",
    )
    g.add_argument(
        "--pretext-images",
        type=cli.positive_int,
        default=20000,
        help="unlabelled CIFAR-10 training images for the rotation pretext (part c)",
    )
    g.add_argument("--pretext-epochs", type=cli.positive_int, default=4, help="epochs of the rotation pretext")
    g.add_argument(
        "--labels-per-class",
        type=cli.positive_int,
        default=100,
        help="labelled CIFAR-10 images per class for the transfer classifiers (part c)",
    )
    g.add_argument(
        "--transfer-blocks",
        type=cli.positive_int,
        default=2,
        help=f"how many of the {len(WIDTHS)} pretrained conv blocks start the CIFAR classifier",
    )
    g.add_argument(
        "--transfer-epochs", type=cli.positive_int, default=30, help="epochs of each transfer classifier (part c)"
    )
    g.set_defaults(seeds=3)
    return p


def parse_parts(text: str) -> list[str]:
    return sorted(cli.parse_list(text, "--parts", PARTS, "part"))


def parse_bottlenecks(text: str) -> list[int]:
    try:
        ks = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise UserError(f"--bottlenecks {text!r}: give comma-separated integers, e.g. 2,8,32")
    if not ks or ks[0] < 1 or ks[-1] > MNIST_PIXELS:
        raise UserError(
            f"--bottlenecks {text!r}: each k must be in 1..{MNIST_PIXELS} (MNIST has {MNIST_PIXELS} "
            "pixels: PCA has no more components)"
        )
    return ks


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    parts = parse_parts(args.parts)
    ks = parse_bottlenecks(args.bottlenecks)
    if args.transfer_blocks > len(WIDTHS):
        raise UserError(f"--transfer-blocks {args.transfer_blocks}: the backbone has {len(WIDTHS)} blocks")
    if args.reuse_k > MNIST_PIXELS:
        raise UserError(
            f"--reuse-k {args.reuse_k}: a code size is at most {MNIST_PIXELS} (the pixels of an MNIST image)"
        )
    given = sys.argv[1:] if argv is None else list(argv)
    if args.quick:  # the small preset, for every flag the user did not type
        for k, v in QUICK.items():
            typed = cli.given(given, "--" + k.replace("_", "-"))
            if not typed and not (k == "batch_size" and args.distribute != "none"):
                setattr(args, k, v)
        if not cli.given(given, "--bottlenecks"):
            ks = [args.reuse_k]
    if "b" in parts and args.reuse_k not in ks:
        ks = sorted(set(ks) | {args.reuse_k})
    t0 = time.time()
    run, info, seeds = cli.start(CASE, args, f"parts {', '.join(PARTS[p] for p in parts)}")
    metrics = {**info, "case": CASE, "seed": args.seed, "seeds": args.seeds, "parts": [PARTS[p] for p in parts]}
    sections, history, datasets = [], {}, []
    saved = {}  # model file -> what it is

    if "a" in parts or "b" in parts:
        d = images.load_mnist()
        if args.quick:
            d = d.subset(1000, 200, 200)
        datasets.append(d.name)
        metrics.update(
            mnist_dataset=d.name, mnist_n_train=len(d.y_train), mnist_n_val=len(d.y_val), mnist_n_test=len(d.y_test)
        )
        full = "60,000" in d.name  # offline: the 10,000-image test split
        encoders = {}  # seed -> trained reuse_k encoder weights

    if "a" in parts:
        ae = {k: [] for k in ks}
        pca = {}
        recons = {}
        n_show = 10
        for k in ks:
            pca[k], recon = pca_reconstruct(d.x_train, d.x_test, k)
            recons[("PCA", k)] = recon[:n_show]
            model, encoder = compiled_autoencoder(k, d.x_train.shape[1:])
            for s in seeds:
                print(f"--- autoencoder k={k} seed {s}", flush=True)
                history[f"ae_k{k}_seed{s}"], res = train_autoencoder(model, d, args, s, f"ae_k{k}_seed{s}")
                ae[k].append(res)
                if k == args.reuse_k:
                    encoders[s] = encoder.get_weights()
                if s == seeds[0]:
                    recons[("AE", k)] = keras.ops.convert_to_numpy(model(d.x_test[:n_show]))
                    if k == args.reuse_k:
                        runtime.save_model(model, run.path(f"autoencoder_k{k}.keras"))
                        saved[f"autoencoder_k{k}.keras"] = f"the k={k} autoencoder (seed {s})"
        rows = []
        for k in ks:
            mses = [r["mse"] for r in ae[k]]
            m, sd = mean_std(mses)
            metrics.update(
                {
                    f"ae_k{k}_mse": m,
                    f"ae_k{k}_mse_std": sd,
                    f"pca_k{k}_mse": pca[k],
                    f"ae_k{k}_seconds": mean_std([r["seconds"] for r in ae[k]])[0],
                    f"ae_k{k}_params": autoencoder_params(k, int(np.prod(d.x_train.shape[1:]))),
                }
            )
            rows.append(
                {
                    "k": k,
                    "autoencoder MSE": pm(mses),
                    "PCA MSE": f"{pca[k]:.4f}",
                    "AE / PCA": f"{m / pca[k]:.2f}",
                    "AE wins": "yes" if m < pca[k] else "no",
                    "AE params": f"{metrics[f'ae_k{k}_params']:,}",
                    "epochs": pm([r["epochs_run"] for r in ae[k]], "{:.0f}"),
                    "seconds": pm([r["seconds"] for r in ae[k]], "{:.1f}"),
                }
            )
        wins = [k for k in ks if metrics[f"ae_k{k}_mse"] < pca[k]]
        metrics["ae_beats_pca_at"] = wins
        kv = np.array(ks, "float64")
        plots.lines_with_errors(
            {
                "autoencoder": (
                    kv,
                    np.array([metrics[f"ae_k{k}_mse"] for k in ks]),
                    np.array([metrics[f"ae_k{k}_mse_std"] for k in ks]),
                ),
                "PCA": (kv, np.array([pca[k] for k in ks]), np.zeros(len(ks))),
            },
            run.path("ae_vs_pca.png"),
            "bottleneck k (log scale)",
            "test reconstruction MSE",
            f"{d.name.split(' (')[0]}: autoencoder vs PCA",
            logx=True,
        )
        shown = [k for k in ks if k in (2, 8, 32, 128)] or ks[:4]
        grid = [unit(d.x_test[:n_show])]
        labels = ["original"]
        for k in shown:
            grid += [recons[("AE", k)][:n_show], recons[("PCA", k)][:n_show]]
            labels += [f"AE k={k}", f"PCA k={k}"]
        plots.image_grid(
            np.concatenate(grid),
            run.path("reconstructions.png"),
            "test images and their reconstructions",
            ncols=n_show,
            row_labels=labels,
        )
        crossover = f"**The autoencoder has the lower test MSE at k = {', '.join(map(str, wins)) or 'none'}**" + (
            f"; PCA at k = {', '.join(str(k) for k in ks if k not in wins)}." if len(wins) < len(ks) else "."
        )
        sections.append(
            (
                "a. Autoencoders vs PCA",
                f"""Dense autoencoders 784 -> {HIDDEN} -> k -> {HIDDEN} -> 784
(ReLU, linear code, sigmoid output), MSE loss, Adam 1e-3, up to {args.epochs} epochs with
early stopping on validation loss (patience 5, best weights restored); PCA with k components
fit on the same {len(d.y_train):,} training images. Test MSE per pixel, pixels in [0, 1], on
{len(d.y_test):,} test images; autoencoder MSE is mean ± std over seeds {seeds} (PCA is
deterministic). {crossover}
{
                    ""
                    if full
                    else '''
Data: **offline, MNIST here is its 10,000-image official test split** (6,000 train /
2,000 validation / 2,000 test), not the 60,000-image training set the reference numbers
(AE k=32 MSE 0.0108 vs PCA 0.0168) come from.'''
                }

{markdown_table(rows, list(rows[0]))}

![autoencoder vs PCA](ae_vs_pca.png)

![reconstructions](reconstructions.png)""",
            )
        )
        print(markdown_table(rows, list(rows[0])), flush=True)

    if "b" in parts:
        k = args.reuse_k
        idx = labelled_subset(d, args.labels)
        x_lab, y_lab = d.x_train[idx], d.y_train[idx]
        res = {v: [] for v in VARIANTS}
        clf = {
            frozen: build_encoder_classifier(k, d.x_train.shape[1:], d.n_classes, frozen) for frozen in (True, False)
        }
        for frozen, (model, _) in clf.items():
            compile_classifier(model, args.probe_lr if frozen else 1e-3)
        ae_model = None
        for s in seeds:
            if s not in encoders:  # part a not run: pretrain the encoder now
                print(f"--- autoencoder k={k} seed {s} (for reuse)", flush=True)
                if ae_model is None:
                    ae_model, ae_encoder = compiled_autoencoder(k, d.x_train.shape[1:])
                history[f"ae_k{k}_seed{s}"], _ = train_autoencoder(ae_model, d, args, s, f"ae_k{k}_seed{s}")
                encoders[s] = ae_encoder.get_weights()
            for v in VARIANTS:
                name = f"{v.replace(' ', '_')}_seed{s}"
                print(f"--- {name}", flush=True)
                model, encoder = clf[v.endswith("frozen")]
                restart(model, s, {encoder: encoders[s]} if v.startswith("trained") else None)
                start = encoder.get_weights()
                history[name], r = train_classifier(model, x_lab, y_lab, d, args, s, args.clf_epochs, name=name)
                r["encoder_arrays_moved"] = moved(start, encoder.get_weights())
                res[v].append(r)
                if v == "trained fine-tuned" and s == seeds[0]:
                    metrics["test_accuracy"] = r["test_accuracy"]  # the saved model's
                    metrics["class_names"] = list(d.class_names)
                    runtime.save_model(model, run.path("model.keras"))
                    saved["model.keras"] = (
                        f"the MNIST classifier with the autoencoder-trained, fine-tuned "
                        f"encoder (seed {s}); raw 28x28x1 pixels in, 10 class probabilities out"
                    )
        rows = []
        for v in VARIANTS:
            key = v.replace(" ", "_").replace("-", "")
            acc = [r["test_accuracy"] for r in res[v]]
            metrics[f"reuse_{key}_test_accuracy"], metrics[f"reuse_{key}_test_accuracy_std"] = mean_std(acc)
            metrics[f"reuse_{key}_seconds"] = mean_std([r["seconds"] for r in res[v]])[0]
            metrics[f"reuse_{key}_encoder_arrays_moved"] = max(r["encoder_arrays_moved"] for r in res[v])
            rows.append(
                {
                    "encoder": v,
                    "test accuracy": pm(acc),
                    "trainable params": f"{res[v][0]['trainable_params']:,}",
                    "train seconds": pm([r["seconds"] for r in res[v]], "{:.1f}"),
                }
            )
        diffs = [
            a["test_accuracy"] - b["test_accuracy"] for a, b in zip(res["trained fine-tuned"], res["random fine-tuned"])
        ]
        metrics["reuse_trained_minus_random_finetuned"], metrics["reuse_trained_minus_random_finetuned_std"] = mean_std(
            diffs
        )
        metrics["reuse_n_labels"] = len(idx)
        plots.learning_curves(
            {v: history[f"{v.replace(' ', '_')}_seed{seeds[0]}"] for v in VARIANTS},
            run.path("reuse_curves.png"),
            metrics=("loss", "accuracy"),
        )
        sections.append(
            (
                "b. Encoder reuse",
                f"""The encoder of the k={k} autoencoder (784 -> {HIDDEN} -> {k})
with a batch norm (standardising the code) and a softmax layer on top, trained on **{len(idx):,} labelled images** ({
                    len(idx) // d.n_classes
                }
per class) for {args.clf_epochs} epochs (Adam 1e-3 fine-tuned, {args.probe_lr:g} frozen: a linear probe
still improves after 60 epochs at 1e-3; batch {args.batch_size}, no early stopping; the
curves show validation on {len(d.y_val):,} images). *Random*: the encoder as initialised;
*trained*: the autoencoder's encoder, pretrained on all {len(d.y_train):,} training images
without labels; *frozen*: only the batch norm and softmax layer learn (a linear probe). Test accuracy on {
                    len(d.y_test):,}
images, mean ± std over seeds {seeds}. **Trained minus random, both fine-tuned:
{pm(diffs)}** ({verdict(diffs, "the pretrained encoder helps")}). Frozen encoders checked after training: {
                    max(
                        metrics["reuse_random_frozen_encoder_arrays_moved"],
                        metrics["reuse_trained_frozen_encoder_arrays_moved"],
                    )
                } weight arrays moved.{
                    ""
                    if full
                    else " (Reference: 97.93% for the fine-tuned trained encoder with all 60,000 MNIST labels.)"
                }

{markdown_table(rows, list(rows[0]))}

![learning curves, seed {seeds[0]}](reuse_curves.png)""",
            )
        )
        print(markdown_table(rows, list(rows[0])), flush=True)

    if "c" in parts:
        need = args.labels_per_class
        if args.quick:
            c = images.cifar10_per_class(max(need, args.pretext_images // 10))
        else:
            c = images.load_cifar10()
        datasets.append(c.name)
        pre_x = c.x_train[: args.pretext_images]
        n_rot = min(1000, len(c.y_val) // 2)  # validation images of the pretext (x 4 rotations); test: twice that
        lab = np.sort(np.concatenate([np.flatnonzero(c.y_train == i)[:need] for i in range(c.n_classes)]))
        val = np.sort(np.concatenate([np.flatnonzero(c.y_val == i)[: max(need, 100)] for i in range(c.n_classes)]))
        cv = images.ArrayData(
            c.name,
            c.x_train[lab],
            c.y_train[lab],
            c.x_val[val],
            c.y_val[val],
            c.x_test,
            c.y_test,
            c.n_classes,
            c.class_names,
        )
        metrics.update(
            cifar_dataset=c.name,
            cifar_n_pretext=len(pre_x),
            cifar_n_train=len(lab),
            cifar_n_val=len(val),
            cifar_n_test=len(c.y_test),
        )
        print(f"--- rotation pretext on {len(pre_x):,} unlabelled images x 4 rotations", flush=True)
        backbone, rot_model, history["rotation_pretext"], pre_seconds = pretrain_rotation(
            pre_x, c.x_val[:n_rot], args, args.seed
        )
        xr, yr = rotations(c.x_test[: 2 * n_rot])
        rot_acc = float(rot_model.evaluate(xr, yr, verbose=0, batch_size=eval_batch(4 * n_rot))[1])
        runtime.save_model(backbone, run.path(BACKBONE_FILE))
        saved[BACKBONE_FILE] = (
            f"the rotation-pretrained conv backbone (raw 32x32x3 pixels -> "
            f"{backbone.output_shape[1]}x{backbone.output_shape[2]}x{backbone.output_shape[3]} features)"
        )
        metrics.update(
            rotation_test_accuracy=rot_acc,
            rotation_n_test=len(yr),
            rotation_pretext_seconds=pre_seconds,
            rotation_backbone_params=backbone.count_params(),
            rotation_widths=list(WIDTHS),
        )
        res = {v: [] for v in TRANSFER}
        kb = args.transfer_blocks
        nets = {frozen: transfer_model(WIDTHS, c.n_classes, kb, frozen) for frozen in (True, False)}
        for model, _ in nets.values():
            compile_classifier(model)
        for s in seeds:
            for v in TRANSFER:
                name = f"transfer_{v}_seed{s}"
                print(f"--- {name}", flush=True)
                model, net_backbone = nets[v == "frozen"]
                restart(model, s, None if v == "scratch" else pretrained_blocks(net_backbone, backbone, kb))
                history[name], r = train_classifier(
                    model, cv.x_train, cv.y_train, cv, args, s, args.transfer_epochs, augmented=True, name=name
                )
                blocks = pretrained_blocks(net_backbone, backbone, kb)
                r["pretrained_arrays_moved"] = sum(moved(w, layer.get_weights()) for layer, w in blocks.items())
                res[v].append(r)
                if v == "fine-tuned" and s == seeds[0] and "model.keras" not in saved:
                    metrics["test_accuracy"] = r["test_accuracy"]  # the saved model's
                    metrics["class_names"] = list(c.class_names)
                    runtime.save_model(model, run.path("model.keras"))
                    saved["model.keras"] = (
                        f"the CIFAR-10 classifier started from the pretrained blocks, fine-tuned "
                        f"(seed {s}); raw 32x32x3 pixels in, 10 class probabilities out"
                    )
        rows = []
        for v in TRANSFER:
            key = v.replace("-", "")
            acc = [r["test_accuracy"] for r in res[v]]
            metrics[f"transfer_{key}_test_accuracy"], metrics[f"transfer_{key}_test_accuracy_std"] = mean_std(acc)
            metrics[f"transfer_{key}_seconds"] = mean_std([r["seconds"] for r in res[v]])[0]
            if v != "scratch":  # weight arrays of the pretrained blocks that training moved (0 when frozen)
                metrics[f"transfer_{key}_pretrained_arrays_moved"] = max(r["pretrained_arrays_moved"] for r in res[v])
            rows.append(
                {
                    "first blocks": ("pretrained, " + v) if v != "scratch" else "from scratch",
                    "test accuracy": pm(acc),
                    "trainable params": f"{res[v][0]['trainable_params']:,}",
                    "train seconds": pm([r["seconds"] for r in res[v]], "{:.1f}"),
                }
            )
        diffs = [a["test_accuracy"] - b["test_accuracy"] for a, b in zip(res["fine-tuned"], res["scratch"])]
        metrics["transfer_finetuned_minus_scratch"], metrics["transfer_finetuned_minus_scratch_std"] = mean_std(diffs)
        plots.learning_curves(
            {v: history[f"transfer_{v}_seed{seeds[0]}"] for v in TRANSFER},
            run.path("transfer_curves.png"),
            metrics=("loss", "accuracy"),
        )
        plots.learning_curves(
            {"rotation pretext": history["rotation_pretext"]},
            run.path("rotation_curves.png"),
            metrics=("loss", "accuracy"),
        )
        sections.append(
            (
                "c. Self-supervised rotation pretext (CIFAR-10)",
                f"""A small conv net ({len(WIDTHS)} blocks of
conv 3x3 stride 2 + batch norm + ReLU, widths {", ".join(map(str, WIDTHS))}; {backbone.count_params():,}
parameters) learns to tell which of 0/90/180/270 degrees an image was turned by, from
{len(pre_x):,} unlabelled training images (each in all four rotations, randomly mirrored) for
{args.pretext_epochs} epochs, seed {args.seed}: rotation accuracy on {2 * n_rot:,} test images x 4 =
**{rot_acc:.4f}** (chance 0.25; reference 0.854 with a larger network). {pre_seconds:.0f} s.

Its first {kb} blocks then start a CIFAR-10 classifier (the same architecture + global
average pooling + softmax) trained on **{len(lab):,} labelled images** ({need} per class) for
{args.transfer_epochs} epochs with flips and crops (Adam 1e-3): the pretrained blocks *frozen*
(batch norm in inference mode), *fine-tuned*, or the whole network *from scratch*. Test
accuracy on all {len(c.y_test):,} test images, mean ± std over seeds {seeds} (the pretext is
trained once). **Fine-tuned minus scratch: {pm(diffs)}** ({verdict(diffs, "pretraining helps")}). Pretrained weight arrays that training
moved: {metrics["transfer_frozen_pretrained_arrays_moved"]} when frozen (batch-norm statistics
included), {metrics["transfer_finetuned_pretrained_arrays_moved"]} when fine-tuned. Reference: 75.7% vs 71.3% from
scratch after 5 epochs with a larger network and more labels.

{markdown_table(rows, list(rows[0]))}

![transfer learning curves, seed {seeds[0]}](transfer_curves.png)

![rotation pretext](rotation_curves.png)

The backbone is saved as `{BACKBONE_FILE}`; `python -m keras_cases.transfer --backbone
representation --weights {run.dir}` fine-tunes it on CIFAR-10 or your own images.""",
            )
        )
        print(f"rotation accuracy {rot_acc:.4f}")
        print(markdown_table(rows, list(rows[0])), flush=True)
    if "model.keras" not in saved:  # part a alone: the autoencoder is the model
        name = f"autoencoder_k{args.reuse_k}.keras" if f"autoencoder_k{args.reuse_k}.keras" in saved else None
        if name:
            run.path("model.keras").write_bytes(run.path(name).read_bytes())
            saved["model.keras"] = saved[name]

    run.write_history(history)
    metrics["dataset"] = "; ".join(datasets)
    first = "mnist" if ("a" in parts or "b" in parts) else "cifar"
    metrics["n_train"] = metrics[f"{first}_n_train"]
    metrics["n_test"] = metrics[f"{first}_n_test"]
    run.write_json("config.json", {**vars(args), "bottlenecks": ks, "parts": parts})
    metrics["seconds"] = round(time.time() - t0, 2)
    run.write_json("metrics.json", metrics)
    body = "\n\n".join(f"## {title}\n\n{text}" for title, text in sections)
    files = "\n".join(f"- `{f}`: {what}" for f, what in saved.items())
    run.write_text(
        "report.md",
        f"""# Representation learning

- parts: {", ".join(f"{p} ({PARTS[p]})" for p in parts)}; seeds {seeds}
- data: {metrics["dataset"]}
- backend: {info["backend"]} (Keras {info["keras_version"]}); {metrics["seconds"]} s
{" - quick run: small data, few epochs (a smoke test, not a result)" if args.quick else ""}

{body}

## Saved models

{files}
""",
    )
    print(f"wrote {run.dir}/ in {metrics['seconds']:.0f} s")
    return 0


def load_predictor(run_dir) -> images.ImagePredictor:
    """A saved run, for `python -m keras_cases serve --run DIR`: model.keras, the MNIST
    classifier on the reused encoder (or the CIFAR-10 one when only part c ran)."""
    from keras_cases.runs import load_run, read_json

    if "class_names" not in read_json(load_run(run_dir) / "metrics.json"):
        raise UserError(
            f"{run_dir}: this run's model.keras is an autoencoder (part a only); "
            "serve a run with part b or c, whose model.keras is a classifier"
        )
    return images.ImagePredictor(run_dir, CASE)


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
