"""Sequences: change-point detection and summarise-and-query memory.

Two studies on seeded synthetic sequences (synthetic by design: the truth is known
exactly), each a table and plots, every number a mean ± std over seeds:

changepoint  10-dimensional N(0, 1) sequences of length 100. In 80% of them a change at
             T ~ U{1..99} shifts 5 random dimensions by means drawn from U[-1, 1] (one
             per dimension); the label is 1 at and after T, 0 before (and everywhere when
             there is no change). Two *causal* detectors at about the same parameter count
             label every step from the past alone: a stacked LSTM and a residual stack of
             dilated causal Conv1D layers (padding="causal", dilations 1, 2, 4, ..., 32: a
             receptive field of 127 steps, the whole sequence). Per-step accuracy, detection
             delay, false alarms, the detection probability against time relative to the
             change, an extrapolation test (length 150, the change in [120, 140), later than
             any change seen in training), and the Bayes-optimal detector (the exact
             posterior under the generator) as the ceiling.
query        digit sequences (0..9) of length 5..20, stored as tokens 1..10 with 0 as the
             padding token (never a digit; Embedding(mask_zero=True) hides it), are
             summarised by a masked GRU into one fixed vector; a query network reads
             (summary, q) and answers task A "did q appear?" or task B "did q immediately
             followed by q+1 appear?" (q in 0..8). Queries are balanced (half positive), and
             the label rate (majority baseline) is reported beside the accuracy.

Protocol: train, validation and test sets are generated once from distinct data seeds
(`--data-seed`), the same for every training seed; early stopping and the choice of
weights use the validation set; the test set is scored once per trained model. Weights
are drawn from NumPy (runtime.init_weights) and batches shuffled in NumPy (data.batches),
so one seed gives the same run on every backend up to float round-off.

    python -m keras_cases.sequences                      # both studies, 3 seeds
    python -m keras_cases.sequences --studies query --seeds 5
    python -m keras_cases.sequences --quick
"""

from __future__ import annotations

import shutil

from keras_cases import UserError, cli
from keras_cases.runs import command
from keras_cases.sequences.changepoint import study_changepoint
from keras_cases.sequences.data import MIN_LEN, STUDIES
from keras_cases.sequences.query import study_query

CASE = "sequences"
# --quick: two epochs, patience 1, one seed, for the flags the user did not type ...
QUICK = {"epochs": lambda v: min(v, 2), "patience": lambda v: min(v, 1), "seeds": 1}
# ... and these caps even when typed (as --quick always has), applied once check_args has seen the typed values
QUICK_CAPS = {"n_changepoint": 128, "n_query": 256, "length": 40}


def make_parser():
    p = cli.parser(
        "python -m keras_cases.sequences", __doc__.split("\n\n")[0], epochs=40, batch_size=64, threads=1, quick=QUICK
    )
    g = p.add_argument_group("sequences")
    g.add_argument("--studies", default="changepoint,query", help="comma-separated: changepoint, query")
    g.add_argument(
        "--n-changepoint",
        type=cli.positive_int,
        default=8000,
        help="training sequences for change-point detection (validation and test: a quarter each)",
    )
    g.add_argument("--length", type=cli.positive_int, default=100, help="change-point training sequence length")
    g.add_argument(
        "--n-query",
        type=cli.positive_int,
        default=8000,
        help="training queries per task (validation and test: a quarter each)",
    )
    g.add_argument("--max-len", type=cli.positive_int, default=20, help=f"longest digit sequence (shortest: {MIN_LEN})")
    g.add_argument("--lr", type=cli.positive_float, default=3e-3, help="Adam learning rate")
    g.add_argument("--patience", type=cli.positive_int, default=4, help="early-stopping patience (epochs)")
    g.add_argument(
        "--data-seed",
        type=cli.seed,
        default=0,
        help="seed of the fixed train / validation / test sets (the same for every --seeds)",
    )
    g.set_defaults(seeds=3)
    return p


def parse_studies(text: str) -> list[str]:
    return cli.parse_list(text, "--studies", STUDIES, "study")


MAX_STEPS = 1000  # the longest sequences: the exact Bayes detector's cost grows with length squared
MAX_DATA_GB = 2.0  # the largest training set of a study held in memory


def check_args(args) -> None:
    """Refuse out-of-range task flags before anything runs."""
    if not 0 < args.lr < 1:
        raise UserError(f"--lr {args.lr} must be in (0, 1)")
    if args.length < 10:
        raise UserError(f"--length {args.length} is too short: at least 10 steps")
    if args.max_len < MIN_LEN:
        raise UserError(f"--max-len {args.max_len} is too short: sequences have {MIN_LEN} digits or more")
    for flag, v in (("--length", args.length), ("--max-len", args.max_len)):
        if v > MAX_STEPS:
            raise UserError(f"{flag} {v:,} is too long: at most {MAX_STEPS:,} steps")
    for flag, n, gb in (
        ("--n-changepoint", args.n_changepoint, args.n_changepoint * args.length * 10 * 4 / 1e9),
        ("--n-query", args.n_query, args.n_query * args.max_len * 8 / 1e9),
    ):
        if gb > MAX_DATA_GB:
            raise UserError(
                f"{flag} {n:,}: the training set would take {gb:,.1f} GB of memory, over the {MAX_DATA_GB:g} GB limit"
            )


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    studies = parse_studies(args.studies)
    check_args(args)
    if args.quick:
        for flag, cap in QUICK_CAPS.items():
            setattr(args, flag, min(getattr(args, flag), cap))
    run, _, seeds = cli.start(CASE, args, f"studies {', '.join(studies)}")
    metrics = {
        "seed": args.seed,
        "seeds": args.seeds,
        "data_seed": args.data_seed,
        "studies": ",".join(studies),
        "dataset": "synthetic sequences (seeded): " + ", ".join(studies),
        "quick": args.quick,
    }
    sections, history, saved = [], {}, {}
    if "changepoint" in studies:
        sections.append(("Change-point detection", study_changepoint(args, seeds, run, metrics, history, saved)))
    if "query" in studies:
        sections.append(("Summarise and query", study_query(args, seeds, run, metrics, history, saved)))

    # the headline model: the change-point detector best on validation, else query task a
    cp = {k: v for k, v in saved.items() if k.startswith("changepoint")}
    best = max(cp, key=lambda k: cp[k][1]) if cp else "query_a"
    shutil.copyfile(saved[best][0], run.path("model.keras"))
    metrics["model"] = best
    metrics["n_train"] = sum(v for k, v in metrics.items() if k.endswith("_n_train"))
    metrics["n_test"] = sum(v for k, v in metrics.items() if k.endswith("_n_test"))
    notes = [
        f"studies: {', '.join(studies)}; training seeds {seeds} (mean ± std over seeds), data seed {args.data_seed} "
        "(train / validation / test generated once from distinct streams; early stopping on validation loss, "
        f"patience {args.patience}, at most {args.epochs} epochs; test scored once per model)",
        f"`model.keras`: {best} (seed {seeds[0]}); every model of seed {seeds[0]} is saved as `<study>_<model>.keras`",
    ]
    headline = {"accuracy": metrics[f"{best}_test_accuracy"]}
    run.finish(metrics, sections, title="Sequences", headline=headline, history=history, notes=notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
