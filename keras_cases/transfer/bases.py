"""The backbones: keras.applications networks (ImageNet, a weights file or random), or the
rotation-pretrained conv net of keras_cases.backbones (a representation run's
`rotation_backbone.keras`, or pretrained here on the fly); their blocks, and which of them
train in each stage."""

from __future__ import annotations

import os
import re
from pathlib import Path

import keras
import numpy as np
from keras import layers

from keras_cases import UserError, runtime
from keras_cases.backbones import BACKBONE_FILE, WIDTHS, build_backbone, pretrain_rotation
from keras_cases.data import keras_cache_dir

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


def offline() -> bool:
    return os.environ.get("KERAS_CASES_OFFLINE") not in (None, "", "0")


def find_representation_backbone(root="runs/representation") -> Path | None:
    """The newest rotation_backbone.keras under runs/representation/, if any."""
    found = sorted(Path(root).glob(f"*/{BACKBONE_FILE}"), key=lambda p: p.stat().st_mtime, reverse=True)
    return found[0] if found else None


def load_representation_backbone(path) -> keras.Model:
    p = Path(path).expanduser()
    if p.is_dir():
        if not (p / BACKBONE_FILE).is_file():
            raise UserError(
                f"{p} holds no rotation_backbone.keras: give a representation run directory "
                "(python -m keras_cases.representation --studies rotation) or the .keras file"
            )
        p = p / BACKBONE_FILE
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
        return len(WIDTHS)
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
    if weights == "none":
        base = build_backbone(WIDTHS, args.backbone_size or 32, name="rotation_backbone")
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
    size = args.backbone_size or 32
    x = resize_uint8(d.x_train, size)
    print(
        f"no runs/representation/*/rotation_backbone.keras here: pretraining a small rotation backbone on "
        f"this run's {len(x):,} training images (unlabelled) for {args.pretrain_epochs} epochs",
        flush=True,
    )
    base, _, _, secs = pretrain_rotation(
        x,
        resize_uint8(d.x_val[:200], size),
        args.seed,
        batch_size=100,
        epochs=args.pretrain_epochs,
        verbose=args.verbose,
    )
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
