"""The flags every search shares (see `tuning.search`), and the `--quick` preset."""

from __future__ import annotations

import argparse

from keras_cases import cli, protocol
from tuning.hypermodel import ALGORITHMS


class SearchParser(argparse.ArgumentParser):
    """An ArgumentParser with a `--quick` preset ({dest: value or callable}) applied after
    parsing to the flags the user did not type, as `cli.CaseParser` does for the cases.
    (A search's `--resume` continues its --directory, not a run directory, so the
    searches do not use the cases' parser.)"""

    quick: dict = {}

    def parse_args(self, args=None, namespace=None):
        import sys

        argv = list(sys.argv[1:] if args is None else args)
        ns = super().parse_args(argv, namespace)
        if ns.quick:
            cli.CaseParser.apply_quick(self, ns, argv)
        return ns


def parser(prog, description, budget, epochs, batch_size, quick=None) -> argparse.ArgumentParser:
    """The shared search flags; `quick` is the search's --quick preset: {dest: value or
    callable}, applied after parsing to the flags the user did not type."""
    p = SearchParser(prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.quick = dict(quick or {})
    search_flags(p.add_argument_group("search"), budget, epochs, batch_size)
    distributed_flags(p.add_argument_group("distributed search (KerasTuner's chief/worker mode)"))
    tracking_flags(p.add_argument_group("tracking"))
    return p


def search_flags(s, budget, epochs, batch_size) -> None:
    s.add_argument(
        "--budget",
        type=cli.nonnegative_int,
        default=budget,
        help="hard limit on trainable + non-trainable parameters (0: none)",
    )
    s.add_argument("--algorithm", choices=ALGORITHMS, default="random", help="KerasTuner tuner")
    s.add_argument(
        "--max-trials", type=cli.positive_int, default=20, help="trials to run, over-budget rejections included"
    )
    s.add_argument("--directory", default=None, help="search directory (default runs/tuning/<search>)")
    s.add_argument("--resume", action="store_true", help="continue the search in --directory where it stopped")
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the earlier search in --directory and start afresh (without "
        "--resume or --overwrite an existing search is never touched)",
    )
    protocol.add_flags(
        s,
        repeats=1,
        cv_help="choose on repeated stratified K-fold of the training + validation rows instead of the one "
        "validation split: each trial trains on every fold (early stopping on a validation part inside it) "
        "and scores the held-out fold; the test rows stay out (0: the one split)",
    )
    s.add_argument("--epochs", type=cli.positive_int, default=epochs, help="maximum epochs per trial")
    s.add_argument("--patience", type=cli.positive_int, default=5, help="early-stopping patience")
    s.add_argument("--batch-size", type=cli.positive_int, default=batch_size, help="minibatch size")
    s.add_argument("--seed", type=cli.seed, default=0, help="seed of the search and of every trial's weights")
    s.add_argument("--quick", action="store_true", help="a small smoke search (a few hundred rows)")
    s.add_argument(
        "--backend",
        choices=("jax", "tensorflow", "torch"),
        default=None,
        help="Keras backend (same as KERAS_BACKEND=...)",
    )
    s.add_argument(
        "--threads",
        type=cli.nonnegative_int,
        default=1,
        help="CPU threads for the backend's ops (0: the framework's default; small models train faster on one)",
    )
    s.add_argument(
        "-v",
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=0,
        help="Keras fit verbosity inside trials (one summary line per trial is always printed)",
    )


def distributed_flags(d) -> None:
    d.add_argument(
        "--distributed",
        choices=("chief", "worker"),
        default=None,
        help="run as the chief (oracle server) or as a worker; or set KERASTUNER_* variables",
    )
    d.add_argument("--oracle", default=None, help="the chief's HOST:PORT")
    d.add_argument("--tuner-id", default=None, help="a worker's id (default worker-<pid>)")
    d.add_argument(
        "--workers",
        type=cli.positive_int,
        default=1,
        help="the chief hands out trials once this many workers have asked for one",
    )
    d.add_argument(
        "--oracle-timeout",
        type=cli.positive_int,
        default=3600,
        help="seconds a worker waits for the chief to answer before giving up",
    )


def tracking_flags(t) -> None:
    t.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        default=None,
        metavar="URI",
        help="also track the search in MLflow (experiment keras-cases-tuning-<search>: the "
        "flags as params, a nested run per trial with its hyperparameters, per-epoch "
        "metrics and score, the final metrics and result files): a tracking server "
        "URI, or no URI for a local store (sqlite:///mlruns.db, ./mlruns); also "
        "$KERAS_CASES_MLFLOW",
    )
