"""CIFAR-10: the strongest recipe we can make for the hardware at hand.

    python -m keras_cases.cifar                          # the recipe, 60-minute budget
    python -m keras_cases.cifar --budget-minutes 10      # whatever fits in 10 minutes
    python -m keras_cases.cifar --epochs 12              # a fixed number of epochs
    python -m keras_cases.cifar --studies ablation       # each ingredient's measured gain
    python -m keras_cases.cifar --images DIR             # your own image folder
    python -m keras_cases.cifar --recipe vit             # a vision transformer instead
    python -m keras_cases.cifar --recipe airbench94      # airbench94 (Jordan 2024), widths 64/256/256
    python -m keras_cases.cifar --studies recipe,compare --budget-minutes 8   # CNN vs ViT

`--recipe NAME` picks the preset (`model.RECIPES`): `small`, the CNN below (the default),
`vit`, a vision transformer of the same parameter count (keras_cases/cifar/vit.py: patch
embedding, class token, pre-norm transformer blocks, AdamW, random erasing on top of the
flips and crops), or `airbench94`, airbench94's full network and recipe (1.97M parameters,
batch 1024, dirac init, lookahead, 64x BN-bias learning rate, triangular schedule, flip +
translate TTA: keras_cases/cifar/airbench94.py; its ablation removes its own ingredients).
The flags the user types override the preset's fields. The `compare`
study trains both for the same wall-clock budget and plots accuracy against time, with the
ViT's attention over a few test images.

The network follows the airbench design (Jordan 2024) scaled to a CPU: a fixed 2x2
*whitening* convolution computed from the training images' patch covariance (not learned),
then three blocks of conv -> max-pool -> batch-norm -> GELU -> conv -> batch-norm -> GELU
(widths `--widths`, default 32,64,128), global max-pool, one dense layer. The recipe:

- augmentation: random horizontal flips and 4-pixel reflect-padded random crops (NumPy,
  identical on every backend);
- label smoothing (0.2);
- SGD with Nesterov momentum and decoupled weight decay, learning rate warmed up
  linearly, then cosine-decayed to zero over exactly the planned number of steps
  (a one-cycle schedule: it needs to know where training ends, which `--budget-minutes`
  works out by timing a few steps first);
- batch normalization;
- test-time augmentation: logits averaged over the image and its mirror image;
- mixed precision (bfloat16 / float16 compute) on a GPU; off on a CPU unless asked for
  (`--mixed-precision on`): on TensorFlow with AMX-BF16 its steps were 1.6x as fast for
  airbench94 and 1.1x for this recipe, and a budgeted run there says so.

`--cutout N` adds airbench96's cutout (an N x N square of each training image set to the
training images' mean colour) for runs long enough to memorise the training set.

`--budget-minutes M` measures a few training steps, plans as many epochs as fit in M
minutes and stops at M minutes regardless. Accuracy against epoch and wall-clock, the time
to 80% and 85% validation accuracy, and the ablation table (each ingredient removed in
turn, mean ± std over `--seeds`, decided on validation) go in the report. The test set is
evaluated once, for the final model.

The data (see `keras_cases.data.images`): `keras.datasets.cifar10` when it can be had,
offline the JPEG copy in `$KERAS_CASES_DATA_DIR/cifar10_jpg`; 45,000 train / 5,000
validation / 10,000 test.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace

from keras_cases import UserError, cli
from keras_cases.cifar.ablation import study_ablation
from keras_cases.cifar.model import RECIPES, Recipe, build_model, has_gpu, min_image_size, set_precision
from keras_cases.cifar.recipe import study_recipe
from keras_cases.cifar.vit import size_vit, study_attention, study_compare
from keras_cases.data import images
from keras_cases.runs import command

CASE = "cifar"
STUDIES = ("recipe", "ablation", "compare")
ALL = ("recipe", "ablation")  # --studies all: the recipe's own studies (compare trains a second model family)
# --quick, where the user did not type the flag: a small net on 100 images per class, three
# epochs of batches of 40 (75 steps): under a minute, and it learns (20-27% test accuracy over
# seeds, chance is 10%); the ablation on 30 images per class, one epoch, two ingredients.
QUICK = {
    "widths": "8,16,32",
    "batch_size": lambda v, ns: v if ns.distribute != "none" else 40,  # data-parallel keeps its batch
    "epochs": 3,
    "vit_depth": 2,
    "ablation_train": 30,
    "ablation_epochs": 1,
}
QUICK_PER_CLASS = 100  # --quick trains on the first 100 images per class


def parse_widths(text: str) -> tuple:
    try:
        w = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--widths {text!r}: give comma-separated integers (one per block), e.g. 32,64,128")
    if len(w) < 1 or min(w) < 1:
        raise UserError(f"--widths {text!r}: widths must be positive integers")
    return w


def make_parser():
    # batch size, widths, lr, label smoothing, weight decay: the preset's unless typed (None)
    p = cli.parser("python -m keras_cases.cifar", __doc__.split("\n\n")[0], epochs=0, batch_size=None, quick=QUICK)
    g = p.add_argument_group("cifar")
    g.add_argument(
        "--studies",
        default="recipe",
        help="comma-separated: recipe (train the recipe, test it once), ablation (each ingredient's gain), "
        "compare (the CNN against the ViT of equal size, the same budget each), or all (recipe and ablation)",
    )
    g.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default="small",
        help="small: the CNN (batch 256); vit: a vision transformer; airbench94: airbench94's network and recipe",
    )
    # the earlier spelling, still accepted: --study recipe|ablation|both (both: all)
    g.add_argument(
        "--study",
        dest="studies",
        type=lambda v: "all" if v == "both" else v,
        choices=("recipe", "ablation", "all"),
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
    g.add_argument(
        "--budget-minutes",
        type=cli.positive_float,
        default=60.0,
        help="wall-clock training budget when --epochs is not given",
    )
    g.add_argument("--widths", default=None, help="channels of the three conv blocks (small: 32,64,128)")
    g.add_argument(
        "--lr",
        type=cli.positive_float,
        default=None,
        help=f"peak learning rate (small: SGD {Recipe.lr}; AdamW: lr/100; airbench94: 1.5 at batch 1024, scaled)",
    )
    g.add_argument("--cutout", type=cli.nonnegative_int, default=None, help="cutout square side, px (airbench96: 12)")
    g.add_argument("--label-smoothing", type=cli.fraction, default=None, help=f"(default {Recipe.label_smoothing})")
    g.add_argument(
        "--weight-decay",
        type=cli.nonnegative_float,
        default=None,
        help=f"(small: {Recipe.weight_decay}, AdamW: x100; airbench94: L2 through the momentum, at lr 1.5: another --lr keeps lr x L2)",
    )
    g.add_argument(
        "--mixed-precision", choices=("auto", "on", "off"), default="auto", help="auto: on with a GPU, off on a CPU"
    )
    g.add_argument("--ablation-epochs", type=cli.positive_int, default=6, help="epochs per ablation run")
    g.add_argument(
        "--ablation-train", type=cli.positive_int, default=1000, help="training images per class in the ablation runs"
    )
    g.add_argument("--data", default="cifar10", help="cifar10, or an image folder (one sub-folder per class)")
    g.add_argument("--images", default=None, help="an image folder (same as --data DIR)")
    g.add_argument(
        "--image-size", type=cli.positive_int, default=32, help="side length images are resized to (folders)"
    )
    add_vit_flags(p)
    return p


def add_vit_flags(p):
    vit = p.add_argument_group("cifar: the vision transformer (--recipe vit, --studies compare)")
    vit.add_argument(
        "--vit-dim", type=cli.positive_int, default=None, help="token width (default: as many parameters as the CNN)"
    )
    vit.add_argument("--vit-depth", type=cli.positive_int, default=Recipe.depth, help="transformer blocks")
    vit.add_argument("--heads", type=cli.positive_int, default=Recipe.heads, help="attention heads")
    vit.add_argument("--patch-size", type=cli.positive_int, default=Recipe.patch, help="patch side in pixels")
    vit.add_argument(
        "--erase",
        type=cli.fraction,
        default=None,
        help="probability of random erasing per training image (default: the recipe's: vit 0.5, small 0)",
    )


def parse_studies(text: str) -> list[str]:
    """`--studies`: names from STUDIES, or `all`; they run in the order of STUDIES."""
    chosen = cli.parse_list(text, "--studies", (*STUDIES, "all"), "study")
    return [s for s in STUDIES if s in chosen or ("all" in chosen and s in ALL)]


def check_input(args, r: Recipe) -> None:
    """Before any image is loaded: the data source exists, and its images are large enough
    for the network (see `min_image_size`)."""
    if args.images:
        images.check_folder(args.images, "--images")
        side = None
    else:
        side = images.check_source(args.data, "--data")
    seen = side or args.image_size  # the side the network sees
    if r.cutout > seen:
        raise UserError(f"--cutout {r.cutout}: the square is larger than the {seen}x{seen} images; use at most {seen}")
    if r.arch == "vit":
        return check_patches(args, r, side)
    need = min_image_size(r)
    for n, what, fix in (
        (side, f"--data {args.data}: its images are", "fewer --widths"),
        (args.image_size, f"--image-size {args.image_size}: images of", f"--image-size {need} or more"),
    ):
        if n is not None and n < need:
            raise UserError(
                f"{what} {n}x{n} pixels, and the network needs at least {need}x{need} (its 2x2 "
                f"whitening convolution takes off one pixel, then each of its {len(r.widths)} blocks "
                f"halves the size): use {fix}"
            )


def check_patches(args, r: Recipe, side) -> None:
    """The ViT's patches tile the image, and its width splits over the heads."""
    for n, what in (
        (side, f"--data {args.data}: its images are"),
        (args.image_size, f"--image-size {args.image_size}: images of"),
    ):
        if n is not None and n % r.patch:
            raise UserError(f"{what} {n}x{n} pixels, which --patch-size {r.patch} does not divide: use a divisor")
    if args.vit_dim and args.vit_dim < r.heads:
        raise UserError(f"--vit-dim {args.vit_dim} is narrower than --heads {r.heads}: give each head a channel")
    if args.studies and "ablation" in parse_studies(args.studies):
        raise UserError("--studies ablation removes the CNN recipe's ingredients: run it with --recipe small")


def recipes_from(args, d=None) -> dict:
    """{name: Recipe} for every preset of RECIPES, with the flags the user typed; given the
    data `d`, the ViT (without --vit-dim) as wide as makes its parameter count the CNN's."""
    on = {"on": True, "off": False, "auto": has_gpu()}[args.mixed_precision]
    typed = {"batch_size": args.batch_size, "lr": args.lr}
    typed.update(label_smoothing=args.label_smoothing, weight_decay=args.weight_decay, cutout=args.cutout)
    if args.widths is not None:
        typed["widths"] = parse_widths(args.widths)
    typed = {k: v for k, v in typed.items() if v is not None}
    out = {
        name: replace(
            base,
            **typed,
            mixed_precision=on,
            depth=args.vit_depth,
            heads=args.heads,
            patch=args.patch_size,
            dim=args.vit_dim or base.dim,
            erase=base.erase if args.erase is None else args.erase,
        )
        for name, base in RECIPES.items()
    }
    if d is not None and not args.vit_dim:
        shape = d.x_train.shape[1:]
        cnn = build_model(out["small"], shape, d.n_classes).count_params()  # the ViT matches `small`
        out["vit"] = size_vit(out["vit"], cnn, shape, d.n_classes)
    return out


def recipe_from(args, d=None) -> Recipe:
    return recipes_from(args, d)[args.recipe]


def load_data(args):
    """The images (`--images` or `--data`); --quick keeps the first 100 per class (of
    CIFAR-10 it decodes only those)."""
    source = args.images or args.data
    if args.quick and source == "cifar10":
        d = images.cifar10_per_class(QUICK_PER_CLASS)
    else:
        d = images.load(source, size=args.image_size)
    if d.x_train.ndim != 4:
        raise UserError(f"{source}: the CIFAR recipe needs colour or grey images (n, h, w, c)")
    if args.quick and len(d.y_train) > QUICK_PER_CLASS * d.n_classes:
        d = images.per_class(d, QUICK_PER_CLASS)
    return d


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    studies = parse_studies(args.studies)
    r = recipe_from(args)
    check_input(args, r)
    set_precision(r.mixed_precision)
    d = load_data(args)
    run, info, seeds = cli.start(CASE, args, f"{d.name}, studies {', '.join(studies)}")
    print(f"{d.sizes[0]:,} train / {d.sizes[1]:,} val / {d.sizes[2]:,} test on {info['devices']}", flush=True)
    recipes = recipes_from(args, d)
    r = recipes[args.recipe]
    metrics = {
        "recipe": args.recipe,
        "dataset": d.name,
        "n_train": d.sizes[0],
        "n_val": d.sizes[1],
        "n_test": d.sizes[2],
        "seed": args.seed,
        "seeds": args.seeds,
        "quick": args.quick,
        "studies": ",".join(studies),
        "class_names": list(d.class_names),
        **{f"recipe_{k}": (list(v) if isinstance(v, tuple) else v) for k, v in asdict(r).items()},
    }
    sections, history = [], {}
    if "ablation" in studies:  # first, as it always ran; its section goes after the recipe's
        sections.append(study_ablation(args, run, r, d, seeds, metrics))
    if "recipe" in studies:
        sections.insert(0, study_recipe(args, run, r, d, metrics, history))
    if "compare" in studies:
        sections.append(study_compare(args, run, recipes, args.recipe, d, metrics, history))
    elif r.arch == "vit" and "recipe" in studies:
        sections.append(study_attention(run, d))
    run.finish(
        metrics,
        sections,
        title="CIFAR-10 recipe" + ("" if args.recipe == "small" else f": {args.recipe}"),
        headline={"accuracy": metrics.get("test_accuracy")},
        history=history,
        notes=["`model.keras`: the recipe's final model (test accuracy measured once, with flip TTA)"]
        if "recipe" in studies
        else [],
    )
    return 0
