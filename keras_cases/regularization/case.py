"""Regularization: over- and underfitting, bias and variance, dropout, weight decay,
early stopping.

Five small studies, each a table and a plot, every claim a mean ± std over seeds:

a. fit       polynomials of degree 1, 3 and 15 fit to 20 noisy points of
             y = 1.5 x^2 + 0.3 sin(15 x) (seeded synthetic data, by design): train and test
             MSE, the fitted curves, and how large the coefficients get.
b. biasvar   degree 1..20 on y = sin(2 pi x) + 0.5 cos(4 pi x) + noise: bias^2 and variance
             estimated by refitting on many freshly drawn training sets, next to the test
             error they add up to (bias^2 + variance + noise).
c. dropout   an MLP on MNIST with and without dropout (0.5): train vs test accuracy.
d. l2        an L2 weight-decay sweep on a small CNN trained on a few thousand CIFAR-10
             images (300 per class by default: small enough to overfit, real photos).
e. early     early stopping on a held-out validation split vs a fixed number of epochs:
             epochs saved, test accuracy kept.

(a) and (b) are NumPy least squares; (c)-(e) are Keras functional models with weights
drawn from NumPy (runtime.init_weights) and batches shuffled in NumPy. Dropout masks come
from each backend's own random stream, so (c) differs slightly between backends.

    python -m keras_cases.regularization                  # all five, 3 seeds
    python -m keras_cases.regularization --studies a,b --seeds 10
    python -m keras_cases.regularization --quick
"""

from __future__ import annotations

from keras_cases import cli
from keras_cases.data import images
from keras_cases.regularization import studies as st
from keras_cases.regularization.networks import MLPRuns, load_images
from keras_cases.runs import command

CASE = "regularization"
STUDIES = {"a": "fit", "b": "biasvar", "c": "dropout", "d": "l2", "e": "early"}
# --quick: fewer epochs, resamples and images, one seed (the L2 sweep also tries 2 factors, not 5)
QUICK = {
    "epochs": lambda v: min(v, 4),
    "l2_epochs": lambda v: min(v, 8),
    "patience": lambda v: min(v, 1),
    "resamples": lambda v: min(v, 50),
    "l2_per_class": lambda v: min(v, 50),
    "seeds": 1,
}


def make_parser():
    p = cli.parser(
        "python -m keras_cases.regularization",
        __doc__.split("\n\n")[0],
        epochs=30,
        batch_size=128,
        threads=1,
        quick=QUICK,
    )
    g = p.add_argument_group("regularization")
    g.add_argument(
        "--studies", default="a,b,c,d,e", help="comma-separated: a (fit), b (biasvar), c (dropout), d (l2), e (early)"
    )
    g.add_argument(
        "--data",
        default="mnist",
        help="images for the dropout and early-stopping studies: mnist (offline: its "
        "10,000-image test split), digits, mnist1d, or an .npz file with arrays x and y",
    )
    g.add_argument("--dropout", type=cli.fraction, default=0.5, help="dropout rate in study c")
    g.add_argument("--l2-epochs", type=cli.positive_int, default=30, help="epochs of each CNN in study d")
    g.add_argument(
        "--l2-per-class",
        type=cli.positive_int,
        default=300,
        help="CIFAR-10 images per class in each split of study d (train, validation, test)",
    )
    g.add_argument("--patience", type=cli.positive_int, default=3, help="early-stopping patience (study e)")
    g.add_argument(
        "--resamples", type=cli.positive_int, default=200, help="training sets drawn per degree and seed in study b"
    )
    g.set_defaults(seeds=3)
    return p


def parse_studies(text: str) -> list[str]:
    return cli.parse_list(text, "--studies", STUDIES, "study")


def headline(m: dict, args) -> dict:
    """The test numbers a reader looks at first (of the studies that ran)."""
    return {
        "fit_test_mse": m.get("fit_degree3_test_mse"),
        "best_degree": m.get("biasvar_best_degree"),
        "dropout_accuracy": m.get(f"dropout{args.dropout:g}_test_accuracy"),
        "l2_accuracy": m.get("l2_0.01_test_accuracy"),
        "early_accuracy": m.get("early_test_accuracy"),
    }


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    studies = parse_studies(args.studies)
    # the data first: bad --data stops the command before any study has written a file
    mlp_data = load_images(args.data, args.quick) if "c" in studies or "e" in studies else None
    cifar = images.cifar10_per_class(args.l2_per_class) if "d" in studies else None
    run, _, seeds = cli.start(CASE, args, f"studies {', '.join(STUDIES[s] for s in studies)}")
    metrics = {"seed": args.seed, "seeds": args.seeds, "studies": studies}
    shared = st.Shared(cifar=cifar)
    if mlp_data is not None:
        d = mlp_data
        shared.mlps = MLPRuns(d, args, run, seeds, shared.history)
        metrics.update(dataset=d.name, n_train=len(d.y_train), n_val=len(d.y_val), n_test=len(d.y_test))
    else:  # the polynomial studies alone
        metrics.update(dataset="synthetic polynomial data (seeded)", n_train=20, n_val=0, n_test=1000)
    # a fixed order, whatever order --studies names them in: (e) reuses (c)'s MLPs
    sections = [study(args, run, seeds, metrics, shared) for key, study in st.STUDIES.items() if key in studies]
    run.finish(
        metrics,
        sections,
        title="Regularization",
        headline=headline(metrics, args),
        history=shared.history,
        notes=[f"studies: {', '.join(f'{s} ({STUDIES[s]})' for s in studies)}; mean ± std over seeds"],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
