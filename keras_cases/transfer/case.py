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
--studies rotation` makes a better one.

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

from keras_cases import UserError, cli, runtime
from keras_cases.data import images
from keras_cases.runs import command, markdown_table
from keras_cases.transfer import report
from keras_cases.transfer.bases import (
    APPLICATIONS,
    BACKBONES,
    MIN_APPLICATION_SIZE,
    backbone_blocks,
    check_weights,
    find_representation_backbone,
    imagenet_missing,
    pretrain_on_the_fly,
)
from keras_cases.transfer.training import STAGES, load_data, run_seed

CASE = "transfer"
# --quick: 50 CIFAR-10 images per class, a backbone pretrained on them for 2 epochs, 4 + 2
# epochs: well above chance (about 27% frozen, 31% fine-tuned) in seconds
QUICK = {"epochs": 4, "fine_tune_epochs": 2, "per_class": 50, "pretrain_epochs": 2, "seeds": 1}


def make_parser():
    p = cli.parser(
        "python -m keras_cases.transfer", __doc__.split("\n\n")[0], epochs=20, batch_size=50, threads=1, quick=QUICK
    )
    g = p.add_argument_group("transfer")
    data_and_backbone_flags(g)
    stage_flags(g)
    p.set_defaults(seeds=3)
    for a in p._actions:
        if a.dest == "seeds":
            a.help = (
                "repeat with seeds seed..seed+N-1 and report mean and std (--seeds 1: one model, e.g. your own folder)"
            )
    return p


def data_and_backbone_flags(g) -> None:
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


def stage_flags(g) -> None:
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


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    resolve(args)
    d = load_data(args)
    run, _, seeds = cli.start(
        CASE,
        args,
        f"{d.name}: {d.sizes[0]:,} train / {d.sizes[1]:,} val / {d.sizes[2]:,} test images "
        f"{d.x_train.shape[1:]}, {d.n_classes} classes; backbone {args.backbone} ({args.weights})",
    )
    if args.backbone == "representation" and args.weights == "auto" and find_representation_backbone() is None:
        args.weights = str(pretrain_on_the_fly(d, args, run))
    per_seed, history = [], {}
    for s in seeds:
        model, res, hists, what, bsize = run_seed(d, args, s)
        per_seed.append(res)
        if s == seeds[0]:
            model_params = int(model.count_params())
            runtime.save_model(model, run.path("model.keras"))
            history = {stage: hists[stage] for stage in STAGES}
            looks = report.explained(run, model, d)  # Grad-CAM of the saved model on test images
    run.write_json("classes.json", report.classes(d))
    metrics = {**report.run_metrics(args, d, what, bsize, model_params), **looks[1]}
    rows = report.summarise(metrics, per_seed, args, d)
    first = per_seed[0]
    per_class = report.per_class_rows(first, d)
    report.figures(run, first, history, seeds[0], d)
    print(markdown_table(rows, list(rows[0])))
    print(f"macro-F1: frozen {metrics['frozen_macro_f1']:.4f}, fine-tuned {metrics['fine_tuned_macro_f1']:.4f}")
    run.finish(
        metrics,
        [report.section(metrics, rows, per_class, args, seeds), ("What the model looks at", looks[0])],
        title="Transfer learning",
        headline={"accuracy": metrics["test_accuracy"], "macro_f1": metrics["macro_f1"]},
        history=history,
        config={**vars(args), "class_names": list(d.class_names)},
        notes=report.notes(metrics),
    )
    return 0


def load_predictor(run_dir) -> images.ImagePredictor:
    """A saved run, for `python -m keras_cases serve --run DIR` (image upload; the class
    names come from metrics.json)."""
    return images.ImagePredictor(run_dir, CASE)
