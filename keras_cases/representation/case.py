"""Representation learning: autoencoders vs PCA, encoder reuse, a self-supervised pretext task.

Three studies, each a table and a plot; where a claim depends on the seed, a mean ± std
over `--seeds`:

a. ae        dense autoencoders on MNIST with a bottleneck of k in {2, 4, ..., 128}: test
             reconstruction MSE (pixels in [0, 1]) against PCA (scikit-learn) with the
             same k, and reconstructions side by side.
b. reuse     the k=32 encoder (+ batch norm + softmax) as a digit classifier trained on a
             label curve (100, 300, 1,000, 3,000 labels): {random, autoencoder-trained}
             encoder x {frozen, fine-tuned}, trained minus random paired by seed with its
             interval at every point, and where pretraining stops helping. The autoencoder
             saw every training image, without labels.
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

    python -m keras_cases.representation                     # all three, 3 seeds (~9 min on 2 busy CPU cores, JAX,
                                                             # before study reuse's label curve, ~5 min of it alone)
    python -m keras_cases.representation --studies ae --seeds 5
    python -m keras_cases.representation --studies reuse --labels 50,100,200,500
    python -m keras_cases.representation --studies rotation --pretext-images 45000
    python -m keras_cases.representation --quick
"""

from __future__ import annotations

import argparse
import sys

from keras_cases import UserError, cli
from keras_cases.backbones import WIDTHS
from keras_cases.data import images
from keras_cases.representation.autoencoders import study_ae
from keras_cases.representation.common import MNIST_PIXELS
from keras_cases.representation.reuse import LABELS, MNIST_CLASSES, PATIENCE, labelled_subset, parse_labels, study_reuse
from keras_cases.representation.rotation import study_rotation
from keras_cases.runs import command

CASE = "representation"
TITLE = "Representation learning"
STUDIES = {"a": "ae", "b": "reuse", "c": "rotation"}
BOTTLENECKS = (2, 4, 8, 16, 32, 64, 128)
# --quick (1,000 MNIST training images), for every flag the user did not type: enough epochs
# that each study learns (tested); --bottlenecks: only the reused code size (None)
QUICK = {
    "epochs": 20,
    "clf_epochs": 6,  # at each of 2 label counts: about the cost of 10 epochs at one
    "pretext_epochs": 2,
    "transfer_epochs": 2,
    "labels": "100,300",
    "labels_per_class": 10,
    "pretext_images": 400,
    "seeds": 1,
    "bottlenecks": None,
}
QUICK_BATCH = 50  # --quick's batch size; with --distribute the batch size stays as given (it must split evenly)


def make_parser():
    p = cli.parser(
        "python -m keras_cases.representation",
        __doc__.split("\n\n")[0],
        epochs=50,
        batch_size=100,
        threads=1,
        quick=QUICK,
    )
    g = p.add_argument_group("representation")
    g.add_argument("--studies", default="ae,reuse,rotation", help="comma-separated: a (ae), b (reuse), c (rotation)")
    g.add_argument("--parts", dest="studies", help=argparse.SUPPRESS)  # the old name
    g.add_argument(
        "--bottlenecks",
        default=",".join(map(str, BOTTLENECKS)),
        help="autoencoder / PCA code sizes k (study ae; --quick: the --reuse-k only)",
    )
    g.add_argument("--reuse-k", type=cli.positive_int, default=32, help="code size of the reused encoder (study reuse)")
    g.add_argument(
        "--labels",
        default=",".join(map(str, LABELS)),
        help="the label curve of study reuse: comma-separated counts of labelled MNIST training "
        f"images (balanced and nested; multiples of {MNIST_CLASSES})",
    )
    g.add_argument(
        "--clf-epochs",
        type=cli.positive_int,
        default=60,
        help=f"most epochs of each study-reuse classifier (it stops after {PATIENCE} without a better "
        "validation accuracy)",
    )
    g.add_argument(
        "--probe-lr",
        type=cli.positive_float,
        default=1e-2,
        help="Adam learning rate of the frozen-encoder classifiers (study reuse; fine-tuned: 1e-3)",
    )
    add_rotation_flags(p)
    g.set_defaults(seeds=3)
    return p


def add_rotation_flags(p):
    r = p.add_argument_group("representation: study rotation")
    r.add_argument(
        "--pretext-images",
        type=cli.positive_int,
        default=20000,
        help="unlabelled CIFAR-10 training images for the rotation pretext (study rotation)",
    )
    r.add_argument("--pretext-epochs", type=cli.positive_int, default=4, help="epochs of the rotation pretext")
    r.add_argument(
        "--labels-per-class",
        type=cli.positive_int,
        default=100,
        help="labelled CIFAR-10 images per class for the transfer classifiers (study rotation)",
    )
    r.add_argument(
        "--transfer-blocks",
        type=cli.positive_int,
        default=2,
        help=f"how many of the {len(WIDTHS)} pretrained conv blocks start the CIFAR classifier",
    )
    r.add_argument(
        "--transfer-epochs",
        type=cli.positive_int,
        default=30,
        help="epochs of each transfer classifier (study rotation)",
    )


def parse_studies(text: str, argv=None) -> list[str]:
    """The studies' short keys, in order (a, b, c); errors name the flag as it was typed."""
    old = cli.given(argv, "--parts") and not cli.given(argv, "--studies")
    return sorted(cli.parse_list(text, "--parts" if old else "--studies", STUDIES, "part" if old else "study"))


def parse_bottlenecks(text: str | None, reuse_k: int) -> list[int]:
    """--bottlenecks as sorted code sizes; None (the --quick preset): the reused one only."""
    if text is None:
        return [reuse_k]
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


def check_args(args) -> None:
    args.labels = parse_labels(args.labels)
    if args.transfer_blocks > len(WIDTHS):
        raise UserError(f"--transfer-blocks {args.transfer_blocks}: the backbone has {len(WIDTHS)} blocks")
    if args.reuse_k > MNIST_PIXELS:
        raise UserError(
            f"--reuse-k {args.reuse_k}: a code size is at most {MNIST_PIXELS} (the pixels of an MNIST image)"
        )


def load_mnist(args, metrics, labels=()):
    """MNIST (--quick: 1,000 / 200 / 200 images), its sizes recorded in `metrics`; checks
    that it holds the label counts `labels` (study reuse)."""
    d = images.load_mnist()
    if args.quick:
        d = d.subset(1000, 200, 200)
    for n in labels:
        labelled_subset(d, n)
    metrics.update(
        mnist_dataset=d.name, mnist_n_train=len(d.y_train), mnist_n_val=len(d.y_val), mnist_n_test=len(d.y_test)
    )
    return d


@command
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = make_parser().parse_args(argv)
    studies = parse_studies(args.studies, argv)
    check_args(args)
    if args.quick and args.distribute == "none" and not cli.given(argv, "--batch-size"):
        args.batch_size = QUICK_BATCH
    ks = parse_bottlenecks(args.bottlenecks, args.reuse_k)
    if "b" in studies and args.reuse_k not in ks:
        ks = sorted(set(ks) | {args.reuse_k})
    names = [STUDIES[s] for s in studies]
    run, _, seeds = cli.start(CASE, args, f"studies {', '.join(names)}")
    metrics = {"seed": args.seed, "seeds": args.seeds, "quick": args.quick, "studies": names, "parts": names}
    sections, history, saved = [], {}, {}  # saved: model file -> what it is
    shared = (args, seeds, run, metrics, history, saved)
    if "a" in studies or "b" in studies:
        d, encoders = (
            load_mnist(args, metrics, args.labels if "b" in studies else ()),
            {},
        )  # encoders: seed -> the trained reuse_k encoder's weights
    if "a" in studies:
        sections.append(("a. Autoencoders vs PCA", study_ae(*shared, d, ks, encoders)))
    if "b" in studies:
        sections.append(("b. Encoder reuse", study_reuse(*shared, d, encoders)))
    if "c" in studies:
        sections.append(("c. Self-supervised rotation pretext (CIFAR-10)", study_rotation(*shared)))
    headline = wrap_up(args, run, metrics, sections, saved)
    config = {**vars(args), "bottlenecks": ks, "studies": names}
    notes = [f"studies: {', '.join(f'{s} ({STUDIES[s]})' for s in studies)}"]
    run.finish(metrics, sections, title=TITLE, headline=headline, history=history, config=config, notes=notes)
    return 0


def wrap_up(args, run, metrics, sections, saved) -> dict:
    """Before run.finish: model.keras (study ae alone: the reused-k autoencoder), the data and
    split (of MNIST when it ran), the saved-models section; returns the headline."""
    name = f"autoencoder_k{args.reuse_k}.keras"
    if "model.keras" not in saved and name in saved:
        run.path("model.keras").write_bytes(run.path(name).read_bytes())
        saved["model.keras"] = saved[name]
    first = "mnist" if "mnist_dataset" in metrics else "cifar"
    metrics["dataset"] = "; ".join(metrics[f"{k}_dataset"] for k in ("mnist", "cifar") if f"{k}_dataset" in metrics)
    metrics.update({k: metrics[f"{first}_{k}"] for k in ("n_train", "n_val", "n_test")})
    sections.append(("Saved models", "\n".join(f"- `{f}`: {what}" for f, what in saved.items())))
    return {
        "accuracy": metrics.get("test_accuracy"),  # the saved classifier's
        "ae_mse": metrics.get(f"ae_k{args.reuse_k}_mse"),
        "pca_mse": metrics.get(f"pca_k{args.reuse_k}_mse"),
        "rotation_accuracy": metrics.get("rotation_test_accuracy"),
    }


def load_predictor(run_dir) -> images.ImagePredictor:
    """A saved run, for `python -m keras_cases serve --run DIR`: model.keras, the MNIST
    classifier on the reused encoder (or the CIFAR-10 one when only study rotation ran)."""
    from keras_cases.runs import load_run, read_json

    if "class_names" not in read_json(load_run(run_dir) / "metrics.json"):
        raise UserError(
            f"{run_dir}: this run's model.keras is an autoencoder (study ae only); "
            "serve a run with study reuse or rotation, whose model.keras is a classifier"
        )
    return images.ImagePredictor(run_dir, CASE)
