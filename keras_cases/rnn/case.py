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

import sys
import time
from dataclasses import replace

import keras
import numpy as np
from keras import layers

from keras_cases import UserError, cli, evaluation, plots, runtime
from keras_cases.callbacks import resumable, tensorboard
from keras_cases.data import batches
from keras_cases.evaluation import mean_std  # noqa: F401
from keras_cases.rnn import figures
from keras_cases.rnn.cells import GatedGRUCell, GatedLSTMCell, HiddenProbeCell, SpectralRadius, hidden_state_gradients
from keras_cases.rnn.tasks import SERIES_CLASSES, CopyTask, Sizes, Split, load_copy, load_series
from keras_cases.runs import command, markdown_table

CASE = "rnn"
KINDS = ("simple_rnn", "lstm", "gru")
LABELS = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
STUDIES = ("gradients", "compare", "ablation")
GATES = ("none", "forget", "input", "output")  # LSTM gate held open in the ablation
TARGET = 0.95  # per-token test accuracy that counts as "solved"
STOP_AT = 0.999  # validation accuracy at which training stops early


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


def pm(values, fmt="{:.3f}") -> str:
    return evaluation.pm(values, fmt)


# --- models ------------------------------------------------------------------------
# Every weight is drawn by init_model (from NumPy, the same on every backend), so the
# layers are built with "zeros" placeholders: Keras' random initialisers would only be
# overwritten, and on JAX each one compiles (seconds per model on a busy machine).
ZEROS = {"kernel_initializer": "zeros", "bias_initializer": "zeros"}
RECURRENT = {**ZEROS, "recurrent_initializer": "zeros"}


def make_cell(kind, units, open_gate=None, custom=False):
    """Keras' own cell, or this case's keras.ops cell (custom=True or a gate held open)."""
    if kind == "lstm" and (custom or open_gate):
        return GatedLSTMCell(units, open_gate, kernel_initializer="zeros")
    if kind == "gru" and (custom or open_gate):
        return GatedGRUCell(units, open_gate, kernel_initializer="zeros")
    return {"simple_rnn": layers.SimpleRNNCell, "lstm": layers.LSTMCell, "gru": layers.GRUCell}[kind](
        units, **RECURRENT
    )


def rnn_layer(kind, units, open_gate=None, custom=False, return_sequences=True, unroll=False):
    """unroll=True: a Python loop over the time steps instead of a symbolic loop (scan /
    while_loop); for the --quick run's few short sequences, run eagerly, where it saves
    compiling the loop."""
    opts = {"return_sequences": return_sequences, "unroll": unroll, "name": "rnn"}
    if custom or open_gate:
        return layers.RNN(make_cell(kind, units, open_gate, True), **opts)
    cls = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}[kind]
    return cls(units, **opts, **RECURRENT)


def build_copy_model(task: CopyTask, kind, units, open_gate=None, custom=False, probe=False, unroll=False):
    """One-hot tokens -> recurrent layer (every step) -> the S steps after the delimiter ->
    softmax over the K symbols. probe=True adds a second input, eps (steps, units), added
    to every hidden state (cells.HiddenProbeCell); the weights are the same list."""
    tokens = keras.Input((task.steps, task.n_tokens), name="tokens")
    if probe:
        eps = keras.Input((task.steps, units), name="eps")
        cell = HiddenProbeCell(make_cell(kind, units, open_gate, custom))
        # unrolled: differentiated eagerly (runtime.value_and_grad), a Python loop of small
        # ops is quicker than compiling a scan forward and backward for each probe
        seq = layers.RNN(cell, return_sequences=True, unroll=True, name="rnn")(
            layers.Concatenate(name="with_eps")([tokens, eps])
        )
        inputs = [tokens, eps]
    else:
        seq = rnn_layer(kind, units, open_gate, custom, unroll=unroll)(tokens)
        inputs = tokens
    h = layers.Cropping1D((task.steps - task.n_symbols, 0), name="after_delimiter")(seq)
    out = layers.Dense(task.alphabet, activation="softmax", name="symbol", **ZEROS)(h)
    return keras.Model(inputs, out, name=f"copy{task.delay}_{kind}{'_' + open_gate if open_gate else ''}")


def build_series_model(steps, kind, units, open_gate=None, custom=False, unroll=False):
    x = keras.Input((steps, 1), name="series")
    h = rnn_layer(kind, units, open_gate, custom, return_sequences=False, unroll=unroll)(x)
    out = layers.Dense(len(SERIES_CLASSES), activation="softmax", name="kind", **ZEROS)(h)
    return keras.Model(x, out, name=f"series_{kind}{'_' + open_gate if open_gate else ''}")


def init_model(model, seed: int, gate_init: str, t_max: int) -> None:
    """runtime.init_weights (NumPy, same on every backend), then the gate biases of the
    layer named "rnn": chrono (forget / update gate bias log U(1, t_max - 1), LSTM input
    gate its negative) or Keras' defaults (LSTM forget gate 1, GRU 0)."""
    runtime.init_weights(model, seed)
    layer = model.get_layer("rnn")
    w = layer.get_weights()  # kernel, recurrent_kernel, bias
    u = w[1].shape[0]
    chrono = np.log(np.random.default_rng([seed, 1]).uniform(1.0, max(t_max - 1.0, 1.0 + 1e-6), u))
    bias = w[2]
    if bias.shape == (4 * u,):  # LSTM: i, f, c, o
        bias[u : 2 * u] = chrono if gate_init == "chrono" else 1.0
        if gate_init == "chrono":
            bias[:u] = -chrono
    elif bias.shape == (2, 3 * u) and gate_init == "chrono":  # GRU: z, r, h (input bias row)
        bias[0, :u] = chrono
    layer.set_weights(w)


def unused_params(model, open_gate) -> int:
    """Weights of a gate held open: they never reach the output (zero gradient)."""
    if not open_gate:
        return 0
    kernel = model.get_layer("rnn").cell.kernel
    u = kernel.shape[1] // 4
    return (kernel.shape[0] + u + 1) * u


# --- training ------------------------------------------------------------------------
class StopAtAccuracy(keras.callbacks.Callback):
    """Stop once validation accuracy reaches `target` (the task is solved)."""

    def __init__(self, target=STOP_AT):
        super().__init__()
        self.target = target

    def on_epoch_end(self, epoch, logs=None):
        if logs and logs.get("val_accuracy", 0.0) >= self.target:
            self.model.stop_training = True


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of every epoch, logged as `epoch_seconds`; `spent` is the fit's seconds
    before this process (kept by callbacks.Resumable when a run is resumed)."""

    def __init__(self):
        super().__init__()
        self.spent = 0.0

    def on_train_begin(self, logs=None):
        self.t_fit = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.t0

    def resume_state(self) -> dict:
        return {"spent": self.spent + time.perf_counter() - self.t_fit}

    def resume_from(self, state: dict) -> None:
        self.spent = float(state["spent"])


def quick_eager(args) -> bool:
    """A --quick run takes a few dozen steps per model on short sequences: on TensorFlow
    running them eagerly, the time loop unrolled, beats tracing a tf.function (torch runs
    eagerly anyway). JAX's op-by-op mode is slower than compiling, so JAX compiles."""
    return bool(args.quick) and keras.config.backend() != "jax"


class Trainer:
    """Builds and compiles each architecture once and re-initialises it for every seed:
    compiling (XLA on JAX, tf.function on TensorFlow) costs more than training the small
    models here. A re-initialised model is a fresh one: new weights from the seed, the
    optimizer's step count and moments back to zero."""

    def __init__(self, args, sizes: Sizes):
        self.args, self.sizes = args, sizes
        self.models = {}

    def model(self, key, build):
        if key not in self.models:
            m = build()
            m.compile(
                optimizer=keras.optimizers.Adam(self.args.lr, clipnorm=1.0),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
                run_eagerly=quick_eager(self.args),
            )
            self.models[key] = m
        return self.models[key]

    def fit(self, model, d: Split, seed: int, t_max: int, name: str):
        a = self.args
        init_model(model, seed, a.gate_init, t_max)
        opt = model.optimizer
        for v in opt.variables:  # iterations, learning rate, Adam moments
            v.assign(np.zeros(v.shape, v.dtype))
        opt.learning_rate = a.lr
        radius, timer = SpectralRadius("rnn"), EpochTimer()
        cbs = [
            radius,
            timer,
            StopAtAccuracy(),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=a.patience, restore_best_weights=True),
            *tensorboard(name),
        ]
        data = batches(d.x_train, d.y_train, a.batch_size, seed)
        t0 = time.perf_counter()
        hist = model.fit(
            data,
            validation_data=(d.x_val, d.y_val),
            validation_batch_size=a.batch_size,
            epochs=a.epochs,
            verbose=a.verbose,
            callbacks=resumable(name, cbs, data),
        ).history
        seconds = timer.spent + time.perf_counter() - t0
        acc = lambda x, y: float(model.evaluate(x, y, batch_size=a.batch_size, verbose=0)[1])  # noqa: E731
        epoch_s = hist["epoch_seconds"]
        res = {
            "val_accuracy": acc(d.x_val, d.y_val),
            "test_accuracy": acc(d.x_test, d.y_test),
            "epochs_run": len(epoch_s),
            "best_epoch": int(np.argmin(hist["val_loss"])) + 1,
            "seconds": seconds,
            "seconds_per_epoch": float(np.median(epoch_s[1:] if len(epoch_s) > 1 else epoch_s)),
            "radius": radius.values,
        }
        return res, hist


# --- gradients ----------------------------------------------------------------------
def probe_gradients(task: CopyTask, kind, units, x, y, weights=None, seed=0, gate_init="chrono"):
    """mean ||dL/dh_t|| per time step for `kind` with `weights` (a trained model's) or,
    without them, at the initialisation `seed` gives."""
    probe = build_copy_model(task, kind, units, probe=True)
    if weights is None:
        init_model(probe, seed, gate_init, task.steps)
    else:
        probe.set_weights(weights)
    return hidden_state_gradients(probe, x, y)


def log10_ratio(g, task: CopyTask) -> float:
    """log10 of ||dL/dh_t|| at the step that read the symbol the last output copies, over
    the same at the last step: how much of the gradient survives the trip back."""
    return float(np.log10(g[task.n_symbols - 1] / g[-1]))


# --- the command ---------------------------------------------------------------------
def make_parser():
    p = cli.parser("python -m keras_cases.rnn", __doc__.split("\n\n")[0], epochs=40, batch_size=32, threads=1)
    g = p.add_argument_group("rnn")
    g.add_argument("--studies", default=",".join(STUDIES), help=f"comma-separated: {', '.join(STUDIES)}")
    g.add_argument(
        "--lengths",
        default=None,
        help="copy-task delays T (time steps between the last symbol and the delimiter); "
        "default 20,50,100 (--quick: 8)",
    )
    g.add_argument(
        "--ablation-length",
        type=cli.positive_int,
        default=None,
        help="copy-task delay of the gate ablation (default: the middle of --lengths)",
    )
    g.add_argument("--units", type=cli.positive_int, default=None, help=f"hidden units (default {FULL.units})")
    g.add_argument("--symbols", type=cli.positive_int, default=None, help=f"symbols to copy (default {FULL.n_symbols})")
    g.add_argument("--alphabet", type=int, default=None, help=f"distinct symbols, >= 2 (default {FULL.alphabet})")
    g.add_argument(
        "--n-train", type=cli.positive_int, default=None, help=f"training sequences per task (default {FULL.n_train})"
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


def resolve(args, argv):
    """Studies, lengths and sizes from the flags (with --quick's smaller defaults)."""
    given = sys.argv[1:] if argv is None else list(argv)
    studies = cli.parse_list(args.studies, "--studies", STUDIES, "study")
    sizes = QUICK if args.quick else FULL
    lengths = sorted(cli.parse_list(args.lengths or ("8" if args.quick else "20,50,100"), "--lengths"))
    if args.quick:
        args.epochs, args.patience = min(args.epochs, 2), min(args.patience, 2)
        if not cli.given(given, "--seeds"):
            args.seeds = 1
    if args.alphabet is not None and args.alphabet < 2:
        raise UserError(f"--alphabet {args.alphabet} must be at least 2")
    if not args.lr > 0:
        raise UserError(f"--lr {args.lr} must be positive")
    sizes = replace(
        sizes,
        **{
            k: v
            for k, v in (
                ("units", args.units),
                ("n_symbols", args.symbols),
                ("alphabet", args.alphabet),
                ("n_train", args.n_train),
            )
            if v is not None
        },
    )
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


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    studies, lengths, sizes = resolve(args, argv)
    t0 = time.time()
    run, info, seeds = cli.start(CASE, args, f"studies {', '.join(studies)}; copy lengths {lengths}")
    trainer = Trainer(args, sizes)
    units = sizes.units
    tasks = {L: CopyTask(L, sizes.n_symbols, sizes.alphabet) for L in sorted({*lengths, args.ablation_length})}
    data = {}
    history, copy_runs, models = {}, {}, {}

    def copy_data(L):
        if L not in data:
            data[L] = load_copy(tasks[L], sizes, args.data_seed)
        return data[L]

    def train_copy(L, kind, seed, open_gate=None, custom=False):
        key = (L, kind, open_gate, custom, seed)
        if key not in copy_runs:
            task = tasks[L]
            variant = f"{kind}{'_custom' if custom else ''}{'_' + open_gate + '_open' if open_gate else ''}"
            name = f"copy{L}_{variant}_seed{seed}"
            print(f"--- {name}", flush=True)
            model = trainer.model(
                ("copy", L, kind, open_gate, custom),
                lambda: build_copy_model(task, kind, units, open_gate, custom, unroll=quick_eager(args)),
            )
            res, history[name] = trainer.fit(model, copy_data(L), seed, task.steps, name)
            res.update(params=model.count_params(), used_params=model.count_params() - unused_params(model, open_gate))
            if seed == seeds[0] and not open_gate and not custom:
                res["weights"] = model.get_weights()
                if L == max(lengths) or kind not in models:
                    models[kind] = (model, res["weights"], L)  # saved at the end, seed 0's weights
            print(
                f"    test accuracy {res['test_accuracy']:.4f} after {res['epochs_run']} epochs "
                f"({res['seconds']:.1f} s)",
                flush=True,
            )
            copy_runs[key] = res
        return copy_runs[key]

    metrics = {
        **info,
        "case": CASE,
        "seed": args.seed,
        "seeds": args.seeds,
        "studies": studies,
        "lengths": lengths,
        "units": units,
        "n_symbols": sizes.n_symbols,
        "alphabet": sizes.alphabet,
        "gate_init": args.gate_init,
        "dataset": "synthetic copy task and trend/sine/random-walk series (seeded)",
        "n_train": sizes.n_train,
        "n_val": sizes.n_val,
        "n_test": sizes.n_test,
    }
    sections = []
    L_max = max(lengths)
    setup = f"""Copy task: {sizes.n_symbols} symbols from an alphabet of {sizes.alphabet} (chance {1 / sizes.alphabet:.3f}
per token), then T blanks (T-1 and the delimiter), then {sizes.n_symbols} steps in which the symbols must be
reproduced; every symbol is held for S + T = {sizes.n_symbols} + T steps. Only the steps after the
delimiter are read and scored (per-token accuracy). {sizes.n_train} training, {sizes.n_val} validation and
{sizes.n_test} test sequences per length, from three distinct seeds. Models: one recurrent layer of {units}
units, a softmax over the symbols at each output step; Adam (learning rate {args.lr:g}, gradient norm
clipped to 1), batch {args.batch_size}, up to {args.epochs} epochs, early stopping on validation loss
(patience {args.patience}, best epoch restored), stop once validation accuracy reaches {STOP_AT}. Gate
biases: {args.gate_init}."""

    # --- comparison --------------------------------------------------------------------
    if "compare" in studies:
        rows = []
        for L in lengths:
            for kind in KINDS:
                rs = [train_copy(L, kind, s) for s in seeds]
                acc = [r["test_accuracy"] for r in rs]
                m = f"copy{L}_{kind}"
                metrics[f"{m}_test_accuracy"], metrics[f"{m}_test_accuracy_std"] = mean_std(acc)
                metrics[f"{m}_epochs"] = mean_std([r["epochs_run"] for r in rs])[0]
                metrics[f"{m}_seconds"] = mean_std([r["seconds"] for r in rs])[0]
                metrics[f"{m}_solved_seeds"] = int(sum(a >= TARGET for a in acc))
                metrics[f"{kind}_copy_params"] = rs[0]["params"]
                rows.append(
                    {
                        "T": L,
                        "model": LABELS[kind],
                        "params": f"{rs[0]['params']:,}",
                        "test accuracy": pm(acc),
                        f"seeds ≥ {TARGET}": f"{metrics[f'{m}_solved_seeds']}/{len(rs)}",
                        "epochs": pm([r["epochs_run"] for r in rs], "{:.1f}"),
                        "s / epoch": pm([r["seconds_per_epoch"] for r in rs], "{:.2f}"),
                        "train s": pm([r["seconds"] for r in rs], "{:.1f}"),
                    }
                )
        plots.lines_with_errors(
            {
                LABELS[k]: (
                    np.array(lengths),
                    *np.array(
                        [mean_std([copy_runs[(L, k, None, False, s)]["test_accuracy"] for s in seeds]) for L in lengths]
                    ).T,
                )
                for k in KINDS
            },
            run.path("copy_accuracy.png"),
            "delay T (time steps)",
            "test per-token accuracy after the delimiter",
            f"copy task, {sizes.n_symbols} symbols of {sizes.alphabet}; mean ± std over {len(seeds)} seed(s)",
        )
        plots.learning_curves(
            {LABELS[k]: history[f"copy{L_max}_{k}_seed{seeds[0]}"] for k in KINDS},
            run.path("copy_learning_curves.png"),
            metrics=("loss", "accuracy"),
        )
        copy_table = markdown_table(rows, list(rows[0]))
        print(copy_table, flush=True)

        # the 3-class series task
        d = load_series(sizes, args.data_seed)
        metrics.update(
            series_n_train=len(d.y_train),
            series_n_val=len(d.y_val),
            series_n_test=len(d.y_test),
            series_steps=sizes.series_steps,
        )
        figures.series_examples(d.x_train, d.y_train, SERIES_CLASSES, run.path("series_examples.png"))
        srows = []
        for kind in KINDS:
            rs = []
            for s in seeds:
                name = f"series_{kind}_seed{s}"
                print(f"--- {name}", flush=True)
                model = trainer.model(
                    ("series", kind),
                    lambda: build_series_model(sizes.series_steps, kind, units, unroll=quick_eager(args)),
                )
                r, history[name] = trainer.fit(model, d, s, sizes.series_steps, name)
                print(f"    test accuracy {r['test_accuracy']:.4f} after {r['epochs_run']} epochs", flush=True)
                rs.append(r)
            acc = [r["test_accuracy"] for r in rs]
            metrics[f"series_{kind}_test_accuracy"], metrics[f"series_{kind}_test_accuracy_std"] = mean_std(acc)
            metrics[f"{kind}_series_params"] = model.count_params()
            srows.append(
                {
                    "model": LABELS[kind],
                    "params": f"{model.count_params():,}",
                    "test accuracy": pm(acc),
                    "epochs": pm([r["epochs_run"] for r in rs], "{:.1f}"),
                    "s / epoch": pm([r["seconds_per_epoch"] for r in rs], "{:.2f}"),
                    "train s": pm([r["seconds"] for r in rs], "{:.1f}"),
                }
            )
        series_table = markdown_table(srows, list(srows[0]))
        print(series_table, flush=True)

        at_max = {k: metrics[f"copy{L_max}_{k}_test_accuracy"] for k in KINDS}
        gated_best = max(("lstm", "gru"), key=lambda k: at_max[k])
        metrics["target_length"] = L_max
        metrics["target_met"] = bool(at_max[gated_best] >= TARGET > at_max["simple_rnn"])
        verdict = (
            f"**Target {'met' if metrics['target_met'] else 'NOT met'}** at T = {L_max}: "
            f"{LABELS[gated_best]} {at_max[gated_best]:.3f}, SimpleRNN {at_max['simple_rnn']:.3f} "
            f"(solved: ≥ {TARGET} per-token test accuracy, mean over seeds)."
        )
        sections.append(
            (
                "Comparison",
                f"""{verdict}

### Copy task

{copy_table}

All three models share one optimizer setting (not tuned per model). Times are wall seconds on
a shared machine; the first seed of each model includes compilation (s / epoch is the median
epoch after the first).

![copy accuracy by length](copy_accuracy.png)

Learning curves at T = {L_max}, seed {seeds[0]} (train solid, validation dashed):

![learning curves](copy_learning_curves.png)

### Trend / sine / random walk

{len(d.y_train)} training, {len(d.y_val)} validation, {len(d.y_test)} test series of {sizes.series_steps} steps,
each standardized on its own (chance 0.333); the last hidden state feeds a 3-way softmax.

{series_table}

![example series](series_examples.png)""",
            )
        )

    # --- gradients -------------------------------------------------------------------------
    if "gradients" in studies:
        rows, init_curves, trained_curves = [], {}, {}
        for L in lengths:
            task = tasks[L]
            d = copy_data(L)
            x, y = d.x_val[: sizes.probe_examples], d.y_val[: sizes.probe_examples]
            row = {"T": L}
            for kind in KINDS:
                g = probe_gradients(task, kind, units, x, y, seed=seeds[0], gate_init=args.gate_init)
                metrics[f"grad_log10_ratio_init_{kind}_T{L}"] = row[f"{LABELS[kind]} init"] = log10_ratio(g, task)
                if L == L_max:
                    init_curves[LABELS[kind]] = metrics[f"hidden_grad_norms_init_{kind}"] = g
            if args.gate_init == "chrono":  # what Keras' default gate biases would give
                g = probe_gradients(task, "lstm", units, x, y, seed=seeds[0], gate_init="keras")
                metrics[f"grad_log10_ratio_init_lstm_keras_bias_T{L}"] = row["LSTM init, Keras bias"] = log10_ratio(
                    g, task
                )
                if L == L_max:
                    init_curves["LSTM (Keras default gate bias)"] = metrics[
                        "hidden_grad_norms_init_lstm_keras_bias"
                    ] = g
            if L == L_max:
                for kind in KINDS:
                    r = train_copy(L, kind, seeds[0])
                    g = probe_gradients(task, kind, units, x, y, weights=r["weights"])
                    trained_curves[LABELS[kind]] = g
                    metrics[f"grad_log10_ratio_trained_{kind}_T{L}"] = row[f"{LABELS[kind]} trained"] = log10_ratio(
                        g, task
                    )
                    metrics[f"hidden_grad_norms_trained_{kind}"] = g
            rows.append(row)
        task = tasks[L_max]
        figures.hidden_gradients(
            {"at initialisation": init_curves, "after training": trained_curves},
            {"last symbol read": task.n_symbols - 1, "delimiter": task.delimiter_step},
            run.path("hidden_gradients.png"),
            f"copy task T = {L_max}: gradient of the last output's loss w.r.t. each hidden state "
            f"(mean over {sizes.probe_examples} sequences, seed {seeds[0]})",
        )
        grad_cols = list(dict.fromkeys(k for r in rows for k in r))
        grad_table = markdown_table(rows, grad_cols, fmt="{:.1f}")
        print(grad_table, flush=True)

        radius_curves, rrows = {}, []
        for kind in KINDS:
            radius_curves[LABELS[kind]] = {}
            for L in lengths:
                key = (L, kind, None, False, seeds[0])
                if key in copy_runs:
                    r = copy_runs[key]["radius"]
                    radius_curves[LABELS[kind]][f"T = {L}"] = r
                    if L == L_max:
                        metrics[f"radius_init_{kind}"], metrics[f"radius_final_{kind}"] = r[0], r[-1]
                        rrows.append(
                            {
                                "model": LABELS[kind],
                                "initial": f"{r[0]:.2f}",
                                "final": f"{r[-1]:.2f}",
                                "max": f"{max(r):.2f}",
                                "epochs": len(r) - 1,
                            }
                        )
        figures.spectral_radius(radius_curves, run.path("spectral_radius.png"))
        sections.append(
            (
                "Vanishing gradients",
                f"""L is the cross-entropy of the *last* output step (it must
copy the last symbol, read at step {task.n_symbols - 1}); the plot shows the mean over sequences of
||dL/dh_t|| for every earlier hidden state h_t, computed by adding a zero tensor eps_t to each h_t inside the
recurrence (cells.HiddenProbeCell) and differentiating with respect to eps (runtime.value_and_grad), so the
same code runs on every backend. (For the LSTM only h_t is perturbed, not the carry c_t; the gradient that
reaches h_t has come back mostly along c, scaled by the forget gate at every step.) The table gives log10 of ||dL/dh_t|| at the step that read that symbol over
its value at the last step: -8 means a hundred-millionth of the gradient survives the trip back.

{grad_table}

![hidden-state gradients](hidden_gradients.png)

Spectral radius (largest |eigenvalue|) of the recurrent matrix, seed {seeds[0]}: the whole matrix of the
SimpleRNN, the candidate block (the one that writes new content) of the LSTM and GRU. A radius above 1
does not make the gradient explode once the tanh units saturate (their derivative is then near 0):
for the SimpleRNN, the radius and the vanishing of ||dL/dh_t|| can grow together. At T = {L_max}:

{markdown_table(rrows, list(rrows[0])) if rrows else ""}

![spectral radius](spectral_radius.png)""",
            )
        )

    # --- ablation ------------------------------------------------------------------------
    if "ablation" in studies:
        La = args.ablation_length
        rows = []
        gates = GATES[:2] if args.quick else GATES  # --quick: the forget gate only
        for gate in gates:
            og = None if gate == "none" else gate
            # no gate open: the custom cell is keras.layers.LSTM (same weights, same outputs:
            # tests/test_rnn.py), so the built-in layer's runs stand in for it
            rs = [train_copy(La, "lstm", s, og, custom=og is not None) for s in seeds]
            acc = [r["test_accuracy"] for r in rs]
            metrics[f"ablation_{gate}_test_accuracy"], metrics[f"ablation_{gate}_test_accuracy_std"] = mean_std(acc)
            metrics[f"ablation_{gate}_used_params"] = rs[0]["used_params"]
            rows.append(
                {
                    "gate held open": gate,
                    "test accuracy": pm(acc),
                    f"seeds ≥ {TARGET}": f"{sum(a >= TARGET for a in acc)}/{len(acc)}",
                    "epochs": pm([r["epochs_run"] for r in rs], "{:.1f}"),
                    "parameters used": f"{rs[0]['used_params']:,} of {rs[0]['params']:,}",
                }
            )
        plots.learning_curves(
            {
                f"{g} open" if g != "none" else "full LSTM": history[
                    f"copy{La}_lstm{'_custom_' + g + '_open' if g != 'none' else ''}_seed{seeds[0]}"
                ]
                for g in gates
            },
            run.path("ablation_curves.png"),
            metrics=("loss", "accuracy"),
        )
        abl_table = markdown_table(rows, list(rows[0]))
        print(abl_table, flush=True)
        metrics["ablation_length"] = La
        sections.append(
            (
                "Gate ablation",
                f"""The LSTM as a custom Keras cell (keras.layers.RNN +
cells.GatedLSTMCell, keras.ops only; identical to keras.layers.LSTM with no gate held open) on the copy task
at T = {La}, with one gate fixed at 1 ("none" is keras.layers.LSTM itself, which the custom cell matches
exactly with no gate open; the runs are shared with the comparison). The weights of an open gate stay in the layout but never reach the
output.

{abl_table}

![ablation learning curves](ablation_curves.png)""",
            )
        )

    # --- artifacts ----------------------------------------------------------------------
    if history:
        run.write_history(history)
    else:
        run.write_text("history.csv", "model,epoch\n")
    for kind, (model, weights, _) in models.items():
        model.set_weights(weights)
        runtime.save_model(model, run.path("model.keras" if kind == "lstm" else f"{kind}.keras"))
    cfg = {k: v for k, v in vars(args).items()}
    cfg.update(lengths=lengths, sizes=sizes.__dict__)
    run.write_json("config.json", cfg)
    metrics["seconds"] = round(time.time() - t0, 2)
    run.write_json("metrics.json", metrics)
    body = "\n\n".join(f"## {title}\n\n{text}" for title, text in sections)
    files = {k: "model.keras" if k == "lstm" else f"{k}.keras" for k in models}
    saved = ", ".join(f"`{files[k]}` ({LABELS[k]}, copy task T = {m[2]})" for k, m in models.items()) or "no model"
    run.write_text(
        "report.md",
        f"""# RNNs: vanishing gradients, SimpleRNN vs LSTM vs GRU

- studies: {", ".join(studies)}; copy-task delays {lengths}; seeds {seeds} (mean ± std over seeds)
- backend: {info["backend"]} (Keras {info["keras_version"]}); {metrics["seconds"]} s
- saved (seed {seeds[0]}): {saved}

## Setup

{setup}

{body}
""",
    )
    print(f"wrote {run.dir}/")
    return 0
