"""RNNs: vanishing gradients, and SimpleRNN vs LSTM vs GRU.

Three studies on seeded synthetic sequences (keras_cases.rnn.tasks), every number a test
score after model choice on validation, mean ± std over seeds:

gradients  the copy task at each length: the norm of the gradient of the last output's
           loss with respect to every earlier hidden state, ||dL/dh_t||, for SimpleRNN,
           LSTM and GRU, at initialisation and after training (a log-scale plot per time
           step), and the spectral radius of the recurrent matrix over training.
compare    SimpleRNN vs LSTM vs GRU on the copy task at every length and on a 3-class
           series task (trend / sine / random walk): test accuracy, parameters, time.
ablation   the LSTM with one gate (forget, input or output) held open at 1, as a custom
           Keras cell (keras.layers.RNN + keras.ops), on the copy task.

Protocol: train, validation and test sets are generated from three distinct fixed seeds
(--data-seed); --seed / --seeds only change the initial weights and the batch order.
Early stopping and the choice of epoch use validation loss (training also stops once
validation accuracy reaches 99.9%); each model meets the test set once. Weights are drawn
from NumPy (runtime.init_weights) and batches shuffled in NumPy, so one seed is the same
run on every backend. Gate biases follow --gate-init: "chrono" (Tallec & Ollivier 2018:
forget-gate bias log U(1, T-1) for T time steps, input-gate bias its negative; the GRU's
update gate the same), or "keras" (Keras' defaults: LSTM forget bias 1, GRU 0).

    python -m keras_cases.rnn                           # all three studies, 3 seeds
    python -m keras_cases.rnn --studies gradients --lengths 20,50,100,200
    python -m keras_cases.rnn --gate-init keras         # Keras' default gate biases
    python -m keras_cases.rnn --quick
"""

from __future__ import annotations

from dataclasses import replace

from keras_cases import UserError, cli, runtime
from keras_cases.rnn.ablation import study_ablation
from keras_cases.rnn.compare import study_compare
from keras_cases.rnn.gradients import study_gradients
from keras_cases.rnn.models import KINDS, LABELS
from keras_cases.rnn.tasks import CopyTask, Sizes
from keras_cases.rnn.training import STOP_AT, CopyRuns
from keras_cases.runs import command

CASE = "rnn"
# run in this order: the comparison's copy-task fits are the ones the other two reuse
STUDIES = {"gradients": study_gradients, "compare": study_compare, "ablation": study_ablation}
ORDER = ("compare", "gradients", "ablation")

FULL = Sizes()
QUICK = Sizes(
    n_symbols=2,
    alphabet=4,
    units=16,
    n_train=256,
    n_val=64,
    n_test=128,
    series_steps=16,
    series_train=192,
    series_val=64,
    series_test=96,
    probe_examples=32,
)
# --quick: the flags of QUICK's sizes, one short length, two epochs, one seed (the sizes
# without a flag come from QUICK itself, in `resolve`)
QUICK_FLAGS = {
    "units": QUICK.units,
    "symbols": QUICK.n_symbols,
    "alphabet": QUICK.alphabet,
    "n_train": QUICK.n_train,
    "lengths": "8",
    "epochs": lambda v: min(v, 2),
    "patience": lambda v: min(v, 2),
    "seeds": 1,
}


def make_parser():
    p = cli.parser(
        "python -m keras_cases.rnn", __doc__.split("\n\n")[0], epochs=40, batch_size=32, threads=1, quick=QUICK_FLAGS
    )
    g = p.add_argument_group("rnn")
    g.add_argument("--studies", default=",".join(STUDIES), help=f"comma-separated: {', '.join(STUDIES)}")
    g.add_argument(
        "--lengths",
        default="20,50,100",
        help="copy-task delays T (time steps between the last symbol and the delimiter); --quick: 8",
    )
    g.add_argument(
        "--ablation-length",
        type=cli.positive_int,
        default=None,
        help="copy-task delay of the gate ablation (default: the middle of --lengths)",
    )
    quick = lambda v: f" (default {getattr(FULL, v)}; --quick: {getattr(QUICK, v)})"  # noqa: E731
    g.add_argument("--units", type=cli.positive_int, default=None, help="hidden units" + quick("units"))
    g.add_argument("--symbols", type=cli.positive_int, default=None, help="symbols to copy" + quick("n_symbols"))
    g.add_argument("--alphabet", type=int, default=None, help="distinct symbols, >= 2" + quick("alphabet"))
    g.add_argument(
        "--n-train", type=cli.positive_int, default=None, help="training sequences per task" + quick("n_train")
    )
    g.add_argument(
        "--lr", type=cli.positive_float, default=1e-2, help="Adam learning rate (gradients clipped to norm 1)"
    )
    g.add_argument("--patience", type=cli.positive_int, default=8, help="early-stopping patience (epochs)")
    g.add_argument(
        "--gate-init",
        choices=("chrono", "keras"),
        default="chrono",
        help="gate biases: chrono initialisation or Keras' defaults",
    )
    g.add_argument("--data-seed", type=cli.seed, default=1234, help="seed of the fixed train / val / test sets")
    g.set_defaults(seeds=3)
    return p


def resolve(args):
    """Studies, lengths and sizes from the flags (--quick: QUICK's sizes for the flags not typed)."""
    studies = cli.parse_list(args.studies, "--studies", STUDIES, "study")
    lengths = sorted(cli.parse_list(args.lengths, "--lengths"))
    if args.alphabet is not None and args.alphabet < 2:
        raise UserError(f"--alphabet {args.alphabet} must be at least 2")
    if not args.lr > 0:
        raise UserError(f"--lr {args.lr} must be positive")
    flags = {"units": args.units, "n_symbols": args.symbols, "alphabet": args.alphabet, "n_train": args.n_train}
    sizes = replace(QUICK if args.quick else FULL, **{k: v for k, v in flags.items() if v is not None})
    if args.ablation_length is None:
        args.ablation_length = lengths[len(lengths) // 2]
    check_sizes(sizes, max(*lengths, args.ablation_length))
    return studies, lengths, sizes


MAX_DATA_GB = 2.0  # the largest one-hot copy-task set (train + val + test) held in memory
MAX_UNITS = 4096


def check_sizes(sizes, delay: int) -> None:
    """Refuse task sizes whose data or models would not fit in memory, before anything runs."""
    if sizes.units > MAX_UNITS:
        raise UserError(f"--units {sizes.units}: at most {MAX_UNITS} hidden units")
    n = sizes.n_train + sizes.n_val + sizes.n_test
    gb = n * CopyTask(delay, sizes.n_symbols, sizes.alphabet).steps * (sizes.alphabet + 2) * 4 / 1e9
    if gb > MAX_DATA_GB:
        raise UserError(
            f"the copy task at delay {delay:,} (--lengths / --ablation-length) with --symbols "
            f"{sizes.n_symbols:,}, --alphabet {sizes.alphabet:,} and {n:,} sequences (--n-train "
            f"{sizes.n_train:,} + validation + test) needs {gb:,.1f} GB of one-hot inputs, over "
            f"the {MAX_DATA_GB:g} GB limit: make one of them smaller"
        )


def setup(args, sizes: Sizes) -> str:
    """The report's "Setup" section: the copy task and the training protocol."""
    return f"""Copy task: {sizes.n_symbols} symbols from an alphabet of {sizes.alphabet} (chance {1 / sizes.alphabet:.3f}
per token), then T blanks (T-1 and the delimiter), then {sizes.n_symbols} steps in which the symbols must be
reproduced; every symbol is held for S + T = {sizes.n_symbols} + T steps. Only the steps after the
delimiter are read and scored (per-token accuracy). {sizes.n_train} training, {sizes.n_val} validation and
{sizes.n_test} test sequences per length, from three distinct seeds. Models: one recurrent layer of {sizes.units}
units, a softmax over the symbols at each output step; Adam (learning rate {args.lr:g}, gradient norm
clipped to 1), batch {args.batch_size}, up to {args.epochs} epochs, early stopping on validation loss
(patience {args.patience}, best epoch restored), stop once validation accuracy reaches {STOP_AT}. Gate
biases: {args.gate_init}."""


def save_models(run, models: dict) -> str:
    """Seed 0's copy-task model of each kind (the LSTM as model.keras); returns the report's note."""
    files = {k: "model.keras" if k == "lstm" else f"{k}.keras" for k in models}
    for kind, (model, weights, _) in models.items():
        model.set_weights(weights)
        runtime.save_model(model, run.path(files[kind]))
    return ", ".join(f"`{files[k]}` ({LABELS[k]}, copy task T = {m[2]})" for k, m in models.items()) or "no model"


def headline(metrics: dict, L: int) -> dict:
    """Test accuracy on the copy task at the longest length (compare), and how much of the
    gradient survives back to the symbol in trained models (gradients); None is dropped."""
    return {
        **{f"{k}_accuracy": metrics.get(f"copy{L}_{k}_test_accuracy") for k in KINDS},
        **{f"{k}_grad_log10": metrics.get(f"grad_log10_ratio_trained_{k}_T{L}") for k in KINDS},
    }


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    studies, lengths, sizes = resolve(args)
    run, _, seeds = cli.start(CASE, args, f"studies {', '.join(studies)}; copy lengths {lengths}")
    copies = CopyRuns(args, sizes, seeds, lengths)
    metrics = {
        "case": CASE,
        "seed": args.seed,
        "seeds": args.seeds,
        "quick": args.quick,
        "studies": studies,
        "lengths": lengths,
        "units": sizes.units,
        "n_symbols": sizes.n_symbols,
        "alphabet": sizes.alphabet,
        "gate_init": args.gate_init,
        "dataset": "synthetic copy task and trend/sine/random-walk series (seeded)",
        "n_train": sizes.n_train,
        "n_val": sizes.n_val,
        "n_test": sizes.n_test,
    }
    sections = [("Setup", setup(args, sizes))]
    for name in ORDER:
        if name in studies:
            sections.append(STUDIES[name](args, copies, run, metrics))
    saved = save_models(run, copies.models)
    run.finish(
        metrics,
        sections,
        title="RNNs: vanishing gradients, SimpleRNN vs LSTM vs GRU",
        headline=headline(metrics, max(lengths)),
        history=copies.history,
        config={**vars(args), "lengths": lengths, "sizes": sizes.__dict__},
        notes=[
            f"studies: {', '.join(studies)}; copy-task delays {lengths} (mean ± std over seeds)",
            f"saved (seed {seeds[0]}): {saved}",
        ],
    )
    return 0
