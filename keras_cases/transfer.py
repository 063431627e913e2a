"""Transfer learning: a pretrained backbone, a new head, then its top blocks fine-tuned.

    python -m keras_cases.transfer                          # CIFAR-10, 200 images per class, 3 seeds (~5 min)
    python -m keras_cases.transfer --backbone mobilenetv3small --weights imagenet
    python -m keras_cases.transfer --images ~/photos --image-size 128   # DIR/<class>/*.jpg
    python -m keras_cases.transfer --backbone representation --weights runs/representation/<stamp>

Backbones (`--backbone`): `mobilenetv3small`, `efficientnetb0` and `resnet50` from
keras.applications (include_top=False), or `representation`: the small conv net that
`python -m keras_cases.representation` pretrains on CIFAR-10 with a rotation pretext.
Weights (`--weights`): `imagenet` (downloaded by Keras into ~/.keras/models, once),
a local weights file for that backbone (for `representation`: a run directory or its
`rotation_backbone.keras`), or `none` (random: the from-scratch baseline). The default is
`auto`: ImageNet MobileNetV3-Small when its weights can be had (cached, or downloaded now);
else (KERAS_CASES_OFFLINE=1 or no network: a one-line note says so) the newest
`runs/representation/*/rotation_backbone.keras`, and when there is none a small rotation
backbone is pretrained on the fly on this run's own training images (unlabelled; a few
epochs, saved as `pretrained_backbone.keras`); `python -m keras_cases.representation
--parts rotation` makes a better one.

The model takes raw uint8 RGB pixels of `--image-size`: augmentation (flips, shifts; active
in training only) -> Resizing to the backbone's input size -> the backbone's own
preprocessing -> backbone -> pooling -> dropout -> softmax. Training is staged:

1. head: the backbone frozen and called with training=False, so its batch norm always uses
   the moving statistics learnt in pretraining; Adam(--lr);
2. fine-tune: the top `--unfreeze-blocks` blocks of the backbone trainable (their batch
   norm stays frozen), recompiled with a 10x lower learning rate (`--fine-tune-lr-factor`).

Both stages weight classes by n / (k n_class) (imbalanced folders) and stop early on
validation loss with the best weights restored. The test split is scored after each
stage: accuracy, macro-F1, per-class precision / recall / F1, confusion matrix.
`model.keras` takes raw pixels; `classes.json` (and metrics.json) next to it name the
classes, so `python -m keras_cases serve --run DIR` labels uploaded images.

The head is drawn from NumPy and batches are shuffled in NumPy, but the augmentation layers
and dropout draw from each backend's own random stream, so training runs differ slightly
between backends; a saved model predicts the same on every backend (tested).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
from keras import layers

from keras_cases import UserError, cli, plots, runtime
from keras_cases.callbacks import resumable, tensorboard
from keras_cases.data import batches, images, keras_cache_dir
from keras_cases.runs import Run, command, markdown_table

CASE = "transfer"
APPLICATIONS = {  # name -> (constructor, ImageNet no-top weights file, block-name pattern, blocks incl. the stem)
    "mobilenetv3small": (
        "MobileNetV3Small",
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        r"^(expanded_conv(?:_\d+)?)_",
        12,
    ),
    "efficientnetb0": ("EfficientNetB0", "efficientnetb0_notop.h5", r"^(block\d+[a-z])_", 17),
    "resnet50": ("ResNet50", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", r"^(conv\d+_block\d+)_", 17),
}
MIN_APPLICATION_SIZE = 32  # keras.applications refuse smaller inputs
BACKBONES = (*APPLICATIONS, "representation")
REPRESENTATION_BLOCKS = r"^(block\d+)_"
RESNET_MEAN_RGB = (123.68, 116.779, 103.939)  # caffe-style ImageNet means (ResNet50's preprocess_input)
STAGES = ("frozen", "fine-tuned")
# --quick: 50 CIFAR-10 images per class, a backbone pretrained on them for 2 epochs, 4 + 2
# epochs: well above chance (about 27% frozen, 31% fine-tuned) in seconds
QUICK = {"epochs": 4, "fine_tune_epochs": 2, "per_class": 50, "pretrain_epochs": 2, "seeds": 1}


def offline() -> bool:
    return os.environ.get("KERAS_CASES_OFFLINE") not in (None, "", "0")


# --- data ------------------------------------------------------------------------------
def load_data(args):
    if args.images:
        d = images.load_folder(args.images, size=args.image_size)
        if args.quick:
            d = images.per_class(d, 10)
    elif args.data == "cifar10":
        d = images.cifar10_per_class(args.per_class)
    else:
        raise UserError(f"--data {args.data!r}: use cifar10, or --images DIR for your own images")
    counts = np.bincount(d.y_train, minlength=d.n_classes)
    if counts.min() == 0:
        raise UserError(f"class {d.class_names[int(counts.argmin())]!r} has no training images")
    return d


def class_weights(y, n_classes: int) -> np.ndarray:
    """Per-example weights n / (k n_class): every class weighs the same in the loss."""
    counts = np.bincount(y, minlength=n_classes).astype("float64")
    return (len(y) / (n_classes * counts))[y].astype("float32")


# --- backbones -------------------------------------------------------------------------
def find_representation_backbone(root="runs/representation") -> Path | None:
    """The newest rotation_backbone.keras under runs/representation/, if any."""
    found = sorted(Path(root).glob("*/rotation_backbone.keras"), key=lambda p: p.stat().st_mtime, reverse=True)
    return found[0] if found else None


def load_representation_backbone(path) -> keras.Model:
    p = Path(path).expanduser()
    if p.is_dir():
        if not (p / "rotation_backbone.keras").is_file():
            raise UserError(
                f"{p} holds no rotation_backbone.keras: give a representation run directory "
                "(python -m keras_cases.representation --parts rotation) or the .keras file"
            )
        p = p / "rotation_backbone.keras"
    if not p.is_file():
        raise UserError(f"--weights {p}: no such file or directory")
    try:
        model = keras.saving.load_model(p, compile=False)
    except Exception as e:  # a zip that is no model, a truncated file, another format
        raise UserError(f"--weights {p} is not a Keras model file ({type(e).__name__})")
    if len(model.output_shape) != 4 or len(model.input_shape) != 4:
        raise UserError(
            f"--weights {p}: expected a conv backbone (image in, feature map out); "
            f"got {model.input_shape} -> {model.output_shape}"
        )
    return model


def imagenet_cached(name: str) -> bool:
    return (keras_cache_dir().parent / "models" / APPLICATIONS[name][1]).is_file()


def imagenet_missing(name: str, size: int) -> str | None:
    """None when the ImageNet weights of `name` are cached or download now (Keras keeps them
    in ~/.keras/models), else why not: "are not in ..." or "could not be downloaded (...)"."""
    if imagenet_cached(name):
        return None
    if offline():
        return f"are not in {keras_cache_dir().parent / 'models'} and KERAS_CASES_OFFLINE is set"
    try:  # building the network once is how keras.applications fetches (and checks) its file
        getattr(keras.applications, APPLICATIONS[name][0])(
            include_top=False, weights="imagenet", input_shape=(size, size, 3)
        )
    except Exception as e:  # network errors come in many types
        said = re.sub(r"https?://\S+", "<url>", str(e).splitlines()[0] if str(e) else "")
        return f"could not be downloaded ({type(e).__name__}: {said[:120]})"
    return None


def check_weights(backbone: str, weights: str, size: int) -> None:
    """Fail fast (before any data is loaded) on a weights choice that cannot work."""
    if weights in ("auto", "none"):
        return
    if weights == "imagenet":
        if backbone == "representation":
            raise UserError(
                "--weights imagenet: the representation backbone has no ImageNet weights; give its "
                "run directory or .keras file, or --weights none"
            )
        why = imagenet_missing(backbone, size)
        if why:
            raise UserError(
                f"ImageNet weights for {backbone} {why}: run once online to download them, or use "
                "--weights PATH (a weights file), --weights none, or --backbone representation"
            )
        return
    if not Path(weights).expanduser().exists():
        raise UserError(f"--weights {weights}: no such file or directory (or use imagenet, none, auto)")


def backbone_blocks(name: str, weights: str) -> int:
    """How many blocks `--unfreeze-blocks` can reach (the groups of `blocks`, a stem with
    weights included); loads a representation backbone file to count (and check) it."""
    if name in APPLICATIONS:
        return APPLICATIONS[name][3]
    path = find_representation_backbone() if weights == "auto" else None if weights == "none" else weights
    if path is None:
        from keras_cases import representation

        return len(representation.WIDTHS)
    return len(blocks(load_representation_backbone(path), REPRESENTATION_BLOCKS))


def application(name: str, weights, size: int, seed: int):
    """(keras.applications backbone, preprocessing layers to put before it)."""
    fn = getattr(keras.applications, APPLICATIONS[name][0])
    w = None if weights == "none" else ("imagenet" if weights == "imagenet" else str(Path(weights).expanduser()))
    try:
        base = fn(include_top=False, weights=w, input_shape=(size, size, 3))
    except Exception as e:  # a failed download, or a weights file of another network
        msg = str(e).splitlines()[0][:160] if str(e) else ""
        if w == "imagenet":
            raise UserError(
                f"ImageNet weights for {name} could not be had ({type(e).__name__}: {msg}); offline? "
                "use --weights PATH (a weights file), --weights none, or --backbone representation"
            )
        raise UserError(f"--weights {weights} could not be loaded into {name} ({type(e).__name__}: {msg})")
    if w is None:
        init_random(base, seed)
    pre = []
    if name == "resnet50":
        # ResNet50 wants caffe preprocessing: BGR, minus the ImageNet mean. Reversing the input
        # channels of its first kernel makes the pretrained network take RGB, so what remains
        # is a mean subtraction (a Normalization layer, saved with the model).
        if w is not None:
            conv = base.get_layer("conv1_conv")
            kernel, bias = conv.get_weights()
            conv.set_weights([kernel[:, :, ::-1, :], bias])
        pre.append(layers.Normalization(mean=list(RESNET_MEAN_RGB), variance=[1.0, 1.0, 1.0], name="imagenet_mean"))
    # MobileNetV3 and EfficientNet rescale 0..255 pixels themselves.
    return base, pre


def init_random(base, seed: int) -> None:
    """NumPy-drawn weights (runtime.init_weights) for every layer with weights except a
    built-in Normalization layer (its mean and variance are not learnt)."""
    for i, layer in enumerate(base.layers):
        if layer.weights and not isinstance(layer, layers.Normalization):
            runtime.init_weights(layer, seed * 100_003 + i)


def build_base(args):
    """(backbone, preprocessing layers, its input size, block pattern, description)."""
    name, weights = args.backbone, args.weights
    if name != "representation":
        size = args.backbone_size or 96
        base, pre = application(name, weights, size, args.seed)
        return base, pre, size, APPLICATIONS[name][2], f"{APPLICATIONS[name][0]} ({weights} weights)"
    from keras_cases import representation

    if weights == "none":
        base = representation.build_backbone(representation.WIDTHS, args.backbone_size or 32, name="rotation_backbone")
        runtime.init_weights(base, args.seed)
        what = "representation backbone, random weights (no pretraining)"
    else:
        path = find_representation_backbone() if weights == "auto" else weights
        base = load_representation_backbone(path)
        what = args.pretrained_note or f"representation backbone from {path}"
    return base, [], base.input_shape[1], REPRESENTATION_BLOCKS, what


def pretrain_on_the_fly(d, args, run) -> Path:
    """No representation run to reuse: pretrain a small rotation backbone on this run's own
    training images (labels unused), save it in the run directory and return its path."""
    from keras_cases import representation

    size = args.backbone_size or 32
    x = resize_uint8(d.x_train, size)
    print(
        f"no runs/representation/*/rotation_backbone.keras here: pretraining a small rotation backbone on "
        f"this run's {len(x):,} training images (unlabelled) for {args.pretrain_epochs} epochs",
        flush=True,
    )
    pargs = SimpleNamespace(batch_size=100, verbose=args.verbose, pretext_epochs=args.pretrain_epochs)
    base, _, _, secs = representation.pretrain_rotation(x, resize_uint8(d.x_val[:200], size), pargs, args.seed)
    path = run.path("pretrained_backbone.keras")
    runtime.save_model(base, path)
    args.pretrained_note = (
        f"representation backbone pretrained here on the fly (rotation pretext on the "
        f"{len(x):,} training images, {args.pretrain_epochs} epochs, {secs:.0f} s; "
        "saved as pretrained_backbone.keras)"
    )
    return path


def resize_uint8(x, size: int) -> np.ndarray:
    if x.shape[1:3] == (size, size):
        return x
    out = keras.ops.image.resize(np.asarray(x, "float32"), (size, size))
    return np.clip(np.rint(keras.ops.convert_to_numpy(out)), 0, 255).astype(np.uint8)


def blocks(base, pattern: str) -> list[tuple[str, list]]:
    """The backbone's layers in order, grouped into blocks by name (`pattern` captures the
    block name); layers before the first block are the stem, and a layer that matches no
    block belongs to the block before it (a final 1x1 conv joins the last block)."""
    groups: dict[str, list] = {}
    key = "stem"
    for layer in base.layers:
        m = re.match(pattern, layer.name)
        if m:
            key = m.group(1)
        groups.setdefault(key, []).append(layer)
    return [(k, v) for k, v in groups.items() if any(lay.weights for lay in v)]


def set_stage(model, base, stage: str, pattern: str, unfreeze: int) -> list[str]:
    """Make the backbone frozen (`frozen`) or its top `unfreeze` blocks trainable except
    their batch norm (`fine-tuned`); returns the names of the unfrozen blocks."""
    if stage == "frozen":
        base.trainable = False
        return []
    base.trainable = True
    groups = blocks(base, pattern)
    top = groups[-unfreeze:] if unfreeze else []
    chosen = {id(layer) for _, g in top for layer in g}
    for layer in base.layers:
        layer.trainable = id(layer) in chosen and not isinstance(layer, layers.BatchNormalization)
    return [k for k, _ in top]


def build_model(base, pre, image_size: int, backbone_size: int, n_classes: int, seed: int, dropout=0.2):
    """Raw pixels -> augmentation -> resize -> preprocessing -> base(training=False) -> head."""
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    x = images.augmentation(flip=True, translate=0.1, seed=seed)(inputs)
    if image_size != backbone_size:
        x = layers.Resizing(backbone_size, backbone_size, name="resize")(x)
    for layer in pre:
        x = layer(x)
    x = base(x, training=False)  # batch norm in inference mode, in both stages
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    head = layers.Dense(n_classes, activation="softmax", name="class")
    out = head(x)
    runtime.init_weights(head, seed)  # NumPy-drawn: the same head on every backend
    return keras.Model(inputs, out, name="transfer_classifier")


def trainable_count(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def fit_stage(model, d, args, seed, lr, epochs, sw, name="stage"):
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t = time.time()  # shuffle=False: the batches are shuffled in NumPy (see representation.py)
    data = batches(d.x_train, d.y_train, args.batch_size, seed, sample_weight=sw)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience, restore_best_weights=True)
    hist = model.fit(
        data,
        validation_data=(d.x_val, d.y_val),
        epochs=epochs,
        verbose=args.verbose,
        shuffle=False,
        callbacks=resumable(name, [*tensorboard(name), stop], data),  # name: <stage>_seed<seed>
    ).history
    return hist, time.time() - t


def score(model, d) -> dict:
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

    p = model.predict(d.x_test, verbose=0, batch_size=256)
    pred = p.argmax(1)
    labels = list(range(d.n_classes))
    return {
        "test_accuracy": float(accuracy_score(d.y_test, pred)),
        "macro_f1": float(f1_score(d.y_test, pred, average="macro", labels=labels, zero_division=0)),
        "report": classification_report(
            d.y_test, pred, labels=labels, target_names=list(d.class_names), output_dict=True, zero_division=0
        ),
        "confusion": confusion_matrix(d.y_test, pred, labels=labels),
    }


def run_seed(d, args, seed):
    """Both stages for one seed: (model, {stage: results}, {stage: history})."""
    runtime.set_seed(seed)
    base, pre, bsize, pattern, what = build_base(args)
    model = build_model(base, pre, d.x_train.shape[1], bsize, d.n_classes, seed)
    sw = class_weights(d.y_train, d.n_classes)
    results, hists = {}, {}
    for stage in STAGES:
        unfrozen = set_stage(model, base, stage, pattern, args.unfreeze_blocks)
        lr = args.lr if stage == "frozen" else args.lr * args.fine_tune_lr_factor
        epochs = args.epochs if stage == "frozen" else args.fine_tune_epochs
        print(
            f"--- seed {seed}, {stage}: {trainable_count(model):,} trainable parameters"
            + (f" (blocks {', '.join(unfrozen)} + head)" if unfrozen else " (head)")
            + f", lr {lr:g}",
            flush=True,
        )
        before = snapshot(base)
        hists[stage], secs = fit_stage(model, d, args, seed, lr, epochs, sw, f"{stage}_seed{seed}")
        results[stage] = {
            **score(model, d),
            "seconds": secs,
            "epochs_run": len(hists[stage]["loss"]),
            "trainable_params": trainable_count(model),
            "lr": lr,
            "unfrozen_blocks": unfrozen,
            "best_val_accuracy": float(hists[stage]["val_accuracy"][int(np.argmin(hists[stage]["val_loss"]))]),
            "backbone_weights_changed": changed(before, snapshot(base)),
            "backbone_weight_arrays": len(before),
        }
    return model, results, hists, what, bsize


def snapshot(base) -> dict:
    return {w.path: np.array(keras.ops.convert_to_numpy(w)) for w in base.weights}


def changed(before: dict, after: dict) -> list[str]:
    """The backbone weights a stage moved (none for the head stage: the backbone is frozen
    and its batch norm runs in inference mode; for fine-tuning, the unfrozen kernels only)."""
    return sorted(k for k in before if not np.array_equal(before[k], after[k]))


# --- the command ---------------------------------------------------------------------
def make_parser():
    p = cli.parser("python -m keras_cases.transfer", __doc__.split("\n\n")[0], epochs=20, batch_size=50, threads=1)
    g = p.add_argument_group("transfer")
    g.add_argument(
        "--backbone",
        default="auto",
        help=f"{', '.join(BACKBONES)}, or auto (mobilenetv3small when its ImageNet weights can be "
        "had, else representation)",
    )
    g.add_argument(
        "--weights",
        default="auto",
        help="imagenet, a weights file (representation: a run directory or .keras file), none, or auto",
    )
    g.add_argument("--data", default="cifar10", help="cifar10 (a per-class subset); or use --images")
    g.add_argument(
        "--images",
        default=None,
        metavar="DIR",
        help="your own images: DIR/<class>/*.jpg|png|... (or DIR/train/<class>/ and DIR/test/<class>/)",
    )
    g.add_argument(
        "--image-size",
        type=cli.positive_int,
        default=64,
        help="--images are resized to this square size (CIFAR-10 stays 32)",
    )
    g.add_argument(
        "--per-class",
        type=cli.positive_int,
        default=200,
        help="CIFAR-10 images per class in each of train / validation / test",
    )
    g.add_argument(
        "--backbone-size",
        type=cli.positive_int,
        default=None,
        help="input size the backbone sees (Resizing inside the model; default 96 for "
        "keras.applications, the pretrained size for representation)",
    )
    g.add_argument(
        "--unfreeze-blocks", type=cli.nonnegative_int, default=1, help="top backbone blocks trained in stage 2"
    )
    g.add_argument("--fine-tune-epochs", type=cli.positive_int, default=20, help="(maximum) epochs of stage 2")
    g.add_argument(
        "--lr",
        type=cli.positive_float,
        default=None,
        help="learning rate of the head stage (default 1e-3 for keras.applications, as in Keras' "
        "transfer-learning guide; 1e-2 for the small representation backbone, whose 128 "
        "features a softmax head learns slowly at 1e-3)",
    )
    g.add_argument(
        "--fine-tune-lr-factor",
        type=cli.positive_float,
        default=0.1,
        help="stage-2 learning rate = lr x this (0.1 to 0.01: 10-100x lower)",
    )
    g.add_argument("--patience", type=cli.positive_int, default=3, help="early-stopping patience (validation loss)")
    g.add_argument(
        "--pretrain-epochs",
        type=cli.positive_int,
        default=5,
        help="epochs of the on-the-fly rotation pretraining (representation backbone, no run found)",
    )
    p.set_defaults(seeds=3)
    for a in p._actions:
        if a.dest == "seeds":
            a.help = (
                "repeat with seeds seed..seed+N-1 and report mean and std (--seeds 1: one model, e.g. your own folder)"
            )
    return p


def resolve(args) -> None:
    """Validate the backbone and weights choices, filling in `auto` (raises UserError):
    backbone auto is ImageNet MobileNetV3-Small when its weights can be had (cached or
    downloaded now; --weights auto or imagenet), else the offline representation backbone,
    with a one-line note; weights auto is ImageNet for a keras.applications backbone."""
    name = args.backbone.strip().lower().replace("-", "").replace("_", "")
    w = args.weights.strip()
    w = w.lower() if w.lower() in ("auto", "imagenet", "none") else w
    size = args.backbone_size or 96
    args.pretrained_note = args.weights_note = None
    if name == "auto":
        name = "mobilenetv3small" if w == "imagenet" else "representation"
        if w == "auto":
            why = imagenet_missing("mobilenetv3small", size)
            name = "representation" if why else "mobilenetv3small"
            if why:
                args.weights_note = (
                    f"--weights auto: ImageNet weights for mobilenetv3small {why}; using the "
                    "offline representation backbone instead"
                )
                print(f"note: {args.weights_note}", flush=True)
    if name not in BACKBONES:
        raise UserError(f"unknown backbone {args.backbone!r}: choose {', '.join(BACKBONES)} (or auto)")
    args.backbone, args.weights = name, "imagenet" if w == "auto" and name in APPLICATIONS else w
    check_weights(name, args.weights, size)
    if args.lr is None:
        args.lr = 1e-2 if name == "representation" else 1e-3
    if not 0 < args.fine_tune_lr_factor <= 1:
        raise UserError(f"--fine-tune-lr-factor {args.fine_tune_lr_factor} must be in (0, 1]")
    if name in APPLICATIONS and args.backbone_size and args.backbone_size < MIN_APPLICATION_SIZE:
        raise UserError(
            f"--backbone-size {args.backbone_size}: {name} takes inputs of at least "
            f"{MIN_APPLICATION_SIZE}x{MIN_APPLICATION_SIZE}"
        )
    n = backbone_blocks(name, args.weights)
    if args.unfreeze_blocks > n:
        raise UserError(
            f"--unfreeze-blocks {args.unfreeze_blocks}: the {name} backbone has {n} blocks "
            f"(0 to {n}; {n} trains all of it)"
        )
    if args.images:
        images.check_folder(args.images, "--images")


def key(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    resolve(args)
    if args.quick:  # the small preset, for every flag the user did not type
        for k, v in QUICK.items():
            if not cli.given(argv, "--" + k.replace("_", "-")):
                setattr(args, k, v)
    t0 = time.time()
    runtime.set_seed(args.seed)
    runtime.set_threads(args.threads)
    d = load_data(args)
    run = Run(CASE, args.out, tensorboard=args.tensorboard, overwrite=args.overwrite)
    info = runtime.backend_report()
    print(
        f"{d.name}: {d.sizes[0]:,} train / {d.sizes[1]:,} val / {d.sizes[2]:,} test images "
        f"{d.x_train.shape[1:]}, {d.n_classes} classes; backbone {args.backbone} ({args.weights}); "
        f"backend {info['backend']}; writing {run.dir}",
        flush=True,
    )
    if args.backbone == "representation" and args.weights == "auto" and find_representation_backbone() is None:
        args.weights = str(pretrain_on_the_fly(d, args, run))
    seeds = list(range(args.seed, args.seed + args.seeds))
    per_seed, history = [], {}
    for s in seeds:
        model, res, hists, what, bsize = run_seed(d, args, s)
        per_seed.append(res)
        if s == seeds[0]:
            first, model_params = res, int(model.count_params())
            runtime.save_model(model, run.path("model.keras"))
            for stage in STAGES:
                history[stage] = hists[stage]
    classes = {
        "class_names": list(d.class_names),
        "image_size": int(d.x_train.shape[1]),
        "input": f"uint8 RGB pixels, shape (n, {d.x_train.shape[1]}, {d.x_train.shape[2]}, 3), 0..255",
    }
    run.write_json("classes.json", classes)

    metrics = {
        **info,
        "case": CASE,
        "dataset": d.name,
        "n_train": d.sizes[0],
        "n_val": d.sizes[1],
        "n_test": d.sizes[2],
        "seed": args.seed,
        "seeds": args.seeds,
        "backbone": args.backbone,
        "weights": args.weights,
        "weights_note": args.weights_note,
        "backbone_description": what,
        "backbone_size": bsize,
        "image_size": classes["image_size"],
        "n_classes": d.n_classes,
        "class_names": classes["class_names"],
    }
    rows = []
    for stage in STAGES:
        k = key(stage)
        for m in ("test_accuracy", "macro_f1", "best_val_accuracy", "seconds", "epochs_run"):
            v = np.array([r[stage][m] for r in per_seed], "float64")
            metrics[f"{k}_{m}"] = float(v.mean())
            if len(v) > 1:
                metrics[f"{k}_{m}_std"] = float(v.std(ddof=1))
        metrics[f"{k}_trainable_params"] = first[stage]["trainable_params"]
        metrics[f"{k}_backbone_weights_changed"] = first[stage]["backbone_weights_changed"]
        for c, name in enumerate(d.class_names):
            metrics[f"{k}_f1_{key(name)}"] = first[stage]["report"][name]["f1-score"]
        pmf = lambda m, f="{:.4f}": (
            f.format(metrics[f"{k}_{m}"])
            + (  # noqa: E731
                f" ± {f.format(metrics[f'{k}_{m}_std'])}" if f"{k}_{m}_std" in metrics else ""
            )
        )
        rows.append(
            {
                "stage": "head only (backbone frozen)"
                if stage == "frozen"
                else f"fine-tuned (top {args.unfreeze_blocks} block{'s' * (args.unfreeze_blocks != 1)}, "
                f"lr x{args.fine_tune_lr_factor:g})",
                "test accuracy": pmf("test_accuracy"),
                "macro-F1": pmf("macro_f1"),
                "trainable params": f"{first[stage]['trainable_params']:,}",
                "epochs": pmf("epochs_run", "{:.1f}"),
                "seconds": pmf("seconds", "{:.1f}"),
            }
        )
    metrics["model_parameters"] = model_params
    # the saved model (the first seed, fine-tuned): what `serve` reports
    metrics["test_accuracy"] = first["fine-tuned"]["test_accuracy"]
    metrics["macro_f1"] = first["fine-tuned"]["macro_f1"]
    metrics["backbone_weight_arrays"] = first["frozen"]["backbone_weight_arrays"]

    per_class = []
    for name in d.class_names:
        a, b = first["frozen"]["report"][name], first["fine-tuned"]["report"][name]
        per_class.append(
            {
                "class": name,
                "frozen P": a["precision"],
                "frozen R": a["recall"],
                "frozen F1": a["f1-score"],
                "fine-tuned P": b["precision"],
                "fine-tuned R": b["recall"],
                "fine-tuned F1": b["f1-score"],
                "support": int(b["support"]),
            }
        )
    plots.confusion_matrices(
        {f"{stage} (seed {seeds[0]})": first[stage]["confusion"] for stage in STAGES},
        run.path("confusion_matrix.png"),
        labels=list(d.class_names),
    )
    plots.learning_curves(
        {"stage 1: head": history["frozen"], "stage 2: fine-tune": history["fine-tuned"]},
        run.path("learning_curves.png"),
        metrics=("loss", "accuracy"),
    )
    run.write_history({"frozen": history["frozen"], "fine-tuned": history["fine-tuned"]})
    run.write_json("config.json", {**vars(args), "class_names": list(d.class_names)})
    metrics["seconds"] = round(time.time() - t0, 2)
    run.write_json("metrics.json", metrics)
    run.write_text("report.md", report(metrics, rows, per_class, args, seeds, d))
    print(markdown_table(rows, list(rows[0])))
    print(f"macro-F1: frozen {metrics['frozen_macro_f1']:.4f}, fine-tuned {metrics['fine_tuned_macro_f1']:.4f}")
    print(f"wrote {run.dir}/ in {metrics['seconds']:.0f} s")
    return 0


def changed_list(names: list) -> str:
    shown = ", ".join(f"`{w}`" for w in names[:6])
    return f"{len(names)} ({shown}{', ...' if len(names) > 6 else ''})" if names else "0"


def report(m, rows, per_class, args, seeds, d) -> str:
    spread = f"mean ± std over seeds {seeds}" if len(seeds) > 1 else f"seed {seeds[0]}"
    return f"""# Transfer learning

- data: {m["dataset"]}; {m["n_train"]:,} train / {m["n_val"]:,} validation / {m["n_test"]:,} test images,
  {m["n_classes"]} classes, {m["image_size"]}x{m["image_size"]} pixels{" (quick run: a smoke test, not a result)" if args.quick else ""}
- backbone: {m["backbone_description"]}; it sees {m["backbone_size"]}x{m["backbone_size"]} inputs
- model: {m["model_parameters"]:,} parameters; takes raw uint8 pixels (`model.keras`; class names in `classes.json`)
- backend: {m["backend"]} (Keras {m["keras_version"]}); {spread}; {m["seconds"]} s

Stage 1 trains the head with the backbone frozen (called with training=False: batch norm
uses its pretrained statistics), Adam {args.lr:g}. Stage 2 unfreezes the top
{args.unfreeze_blocks} backbone block(s) (batch-norm layers stay frozen), recompiles with
the learning rate x{args.fine_tune_lr_factor:g}, and continues from the best stage-1 weights.
Both: class-weighted loss, flips and shifts inside the model, early stopping on validation
loss (patience {args.patience}, best weights restored), at most {args.epochs} / {args.fine_tune_epochs} epochs.
Backbone weight arrays changed by stage 1 (checked, seed {seeds[0]}; batch-norm statistics
included): {len(m["frozen_backbone_weights_changed"])} of {m["backbone_weight_arrays"]}; by stage 2: {changed_list(m["fine_tuned_backbone_weights_changed"])}.

{markdown_table(rows, list(rows[0]))}

## Per class (test, seed {seeds[0]})

{markdown_table(per_class, list(per_class[0]), fmt="{:.3f}")}

Macro-F1: frozen {m["frozen_macro_f1"]:.4f}, fine-tuned {m["fine_tuned_macro_f1"]:.4f}.

![confusion matrices](confusion_matrix.png)

![learning curves](learning_curves.png)
"""


def load_predictor(run_dir) -> images.ImagePredictor:
    """A saved run, for `python -m keras_cases serve --run DIR` (image upload; the class
    names come from metrics.json)."""
    return images.ImagePredictor(run_dir, CASE)


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
