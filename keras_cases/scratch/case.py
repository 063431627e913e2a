"""From scratch: backpropagation in NumPy, checked against Keras on every backend.

A single sigmoid neuron separates two Gaussian blobs; a small tanh network learns
concentric circles, which no line can separate. Both are trained by full-batch gradient
descent with the hand-written backward passes of `keras_cases.scratch`. Then:

1. hidden units: linear vs relu vs tanh vs sigmoid, same optimizer;
2. optimizers: gradient descent vs momentum vs RMSProp vs Adam, same network;
3. the decision boundary during training (GIF) and at the end (PNG);
4. the gradient check: every layer type, activation and loss (plus batch norm, a
   convolution and the RNN's BPTT) against finite differences, and against Keras'
   autodiff on each installed backend (float64), the optimizers against
   keras.optimizers step by step, and the classic 2-2-1 worked example.

    python -m keras_cases.scratch
    python -m keras_cases.scratch --quick --out /tmp/scratch
    python -m keras_cases.scratch --hidden 16,16 --activation relu --optimizer adam
    python -m keras_cases.scratch --check-backends none        # NumPy only
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_cases import UserError, cli, runtime
from keras_cases.evaluation import mean_std
from keras_cases.runs import Run, command, markdown_table
from keras_cases.scratch import checks, figures, gradcheck, optimizers, report, worked_example
from keras_cases.scratch.checks import GRAD_PASS
from keras_cases.scratch.layers import ACTIVATIONS, Network, mlp
from keras_cases.scratch.losses import BinaryCrossEntropy
from keras_cases.scratch.report import ROW_COLUMNS

CASE = "scratch"
COMPARED_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid")
COMPARED_OPTIMIZERS = ("gd", "momentum", "rmsprop", "adam")
TARGET_ACCURACY = 0.97


# --- data ---------------------------------------------------------------------------
@dataclass
class Data:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray  # (n, 1) of 0.0 / 1.0
    x_test: np.ndarray
    y_test: np.ndarray


def split(name, x, y, seed, test=0.25) -> Data:
    from sklearn.model_selection import train_test_split

    y = y.reshape(-1, 1).astype("float64")
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test, stratify=y, random_state=seed)
    return Data(name, x_tr, y_tr, x_te, y_te)


def load_blobs(n=200, seed=0) -> Data:
    from sklearn.datasets import make_blobs

    centers = [(-2.0, -1.5), (2.0, 1.5)]
    x, y = make_blobs(n, centers=centers, cluster_std=1.0, random_state=seed)
    return split(f"sklearn make_blobs(n={n}, centers={centers}, std 1)", x, y, seed)


def load_circles(n=400, noise=0.1, seed=0) -> Data:
    from sklearn.datasets import make_circles

    x, y = make_circles(n, noise=noise, factor=0.5, random_state=seed)
    return split(f"sklearn make_circles(n={n}, noise={noise}, factor=0.5)", x, y, seed)


# --- models -------------------------------------------------------------------------
def build_neuron(seed=0) -> Network:
    """One sigmoid unit: p = sigmoid(x @ w + b), a linear decision boundary."""
    return mlp([2, 1], output="sigmoid", seed=seed)


def build_model(hidden=(8, 8), activation="tanh", seed=0) -> Network:
    """[2, *hidden, 1]: `activation` hidden units, a sigmoid output. He init for relu."""
    init = "he_normal" if activation == "relu" else "glorot_uniform"
    return mlp([2, *hidden, 1], activation, "sigmoid", init, seed=seed)


# --- training -----------------------------------------------------------------------
def minibatches(n, batch_size, rng):
    """Index arrays of one epoch: one full batch if batch_size >= n, else shuffled."""
    if batch_size is None or batch_size >= n:
        return [np.arange(n)]
    order = rng.permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def accuracy(net, x, y) -> float:
    return float(np.mean((net.predict(x) > 0.5) == (y > 0.5)))


def evaluate(net, data: Data) -> dict:
    loss = BinaryCrossEntropy()
    return {
        "train_loss": loss(net.predict(data.x_train), data.y_train),
        "train_accuracy": accuracy(net, data.x_train, data.y_train),
        "test_loss": loss(net.predict(data.x_test), data.y_test),
        "test_accuracy": accuracy(net, data.x_test, data.y_test),
    }


HISTORY = {
    "loss": "train_loss",
    "accuracy": "train_accuracy",
    "test_loss": "test_loss",
    "test_accuracy": "test_accuracy",
}


def train(net, data: Data, optimizer, epochs, batch_size=None, seed=0, snapshot_at=(), verbose=0, name="model"):
    """Gradient descent on binary cross-entropy. Returns (history, snapshots): per-epoch
    loss / accuracy / test_loss / test_accuracy, and (epoch, weights, loss, accuracy)
    at the epochs in `snapshot_at` (epoch 0 is the initial network)."""
    rng = np.random.default_rng(seed)
    loss = BinaryCrossEntropy()
    history = {key: [] for key in HISTORY}
    snapshots = []
    for epoch in range(epochs + 1):
        if epoch > 0:
            for idx in minibatches(len(data.x_train), batch_size, rng):
                _, _, grads = net.loss_and_grads(data.x_train[idx], data.y_train[idx], loss)
                optimizer.step(net.params(), grads)
        m = evaluate(net, data)
        if epoch > 0:
            for key, source in HISTORY.items():
                history[key].append(m[source])
        if epoch in snapshot_at:
            snapshots.append((epoch, net.get_weights(), m["train_loss"], m["train_accuracy"]))
        if verbose and epoch > 0 and (epoch % max(epochs // 5, 1) == 0 or epoch == epochs):
            print(
                f"  {name} epoch {epoch}/{epochs}: loss {m['train_loss']:.4f}, accuracy "
                f"{m['train_accuracy']:.3f}, test loss {m['test_loss']:.4f}, "
                f"test accuracy {m['test_accuracy']:.3f}"
            )
    return history, snapshots


def epochs_to(history, target=TARGET_ACCURACY):
    """First epoch whose training accuracy reaches `target` (None if never)."""
    hits = np.flatnonzero(np.asarray(history["accuracy"]) >= target)
    return int(hits[0]) + 1 if len(hits) else None


def compare(data, args, seed):
    """Train one network per hidden activation and per optimizer (same seed, data and
    initial weights per activation). Returns (rows for the table, {run name: history})."""
    runs = [("hidden units", a, args.optimizer) for a in COMPARED_ACTIVATIONS]
    runs += [("optimizer", args.activation, o) for o in COMPARED_OPTIMIZERS]
    rows, histories = [], {}
    for group, act, opt in runs:
        name = f"{act} / {opt}"
        if name in histories:  # the default net appears in both groups: train it once
            rows.append({**next(r for r in rows if r["run"] == name), "group": group})
            continue
        net = build_model(args.hidden, act, seed)
        lr = args.lr if opt == args.optimizer and args.lr else optimizers.DEFAULT_LR[opt]
        hist, _ = train(net, data, optimizers.make(opt, lr), args.epochs, args.batch_size, seed)
        histories[name] = hist
        rows.append(
            {
                "group": group,
                "run": name,
                "hidden": act,
                "optimizer": opt,
                "learning_rate": lr,
                **evaluate(net, data),
                "epochs_to_97%": epochs_to(hist),
            }
        )
    return rows, histories


# --- the command --------------------------------------------------------------------
def hidden_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise UserError(f"--hidden {text!r}: expected comma-separated layer sizes, e.g. 8,8")
    if not sizes or min(sizes) < 1:
        raise UserError(f"--hidden {text!r}: expected at least one positive layer size")
    return sizes


def make_parser():
    p = cli.parser(
        "python -m keras_cases.scratch",
        __doc__.split("\n\n")[0],
        epochs=1000,
        batch_size=1024,
        threads=1,  # tiny tensors: one thread
        quick={"epochs": lambda v: min(v, 300), "frames": lambda v: min(v, 12), "samples": lambda v: min(v, 300)},
    )
    p.epilog = (
        "--batch-size at least the training set size (the default) is full-batch "
        "gradient descent; smaller values train on shuffled minibatches."
    )
    g = p.add_argument_group("network, training and checks")
    g.add_argument("--hidden", default="8,8", help="hidden layer sizes of the circles network: [2, *hidden, 1]")
    g.add_argument(
        "--activation",
        default="tanh",
        choices=sorted(set(ACTIVATIONS) - {"softmax"}),
        help="hidden units of the circles network",
    )
    g.add_argument(
        "--optimizer",
        default="gd",
        choices=sorted(optimizers.DEFAULT_LR),
        help="update rule (gd is plain gradient descent)",
    )
    g.add_argument(
        "--lr",
        type=cli.positive_float,
        default=None,
        help=f"learning rate (default per optimizer: {optimizers.DEFAULT_LR})",
    )
    g.add_argument(
        "--samples", type=cli.positive_int, default=400, help="points per data set (a quarter held out for testing)"
    )
    g.add_argument("--noise", type=cli.nonnegative_float, default=0.1, help="noise of make_circles")
    g.add_argument("--frames", type=cli.positive_int, default=30, help="frames of the GIF")
    g.add_argument(
        "--check-backends",
        default="installed",
        help="backends whose Keras autodiff the gradients are checked against: "
        "'installed', 'none' or a list such as jax,torch",
    )
    return p


def parse_args(argv):
    args = make_parser().parse_args(argv)
    args.hidden = hidden_sizes(args.hidden)
    args.backends = checks.check_backends(args.check_backends)
    if args.samples < 8:
        raise UserError(f"--samples {args.samples}: need at least 8 points to split")
    return args


def snapshot_epochs(epochs, frames) -> set[int]:
    """Frame epochs, denser early on (where the boundary moves most)."""
    return {0, *np.unique(np.geomspace(1, epochs, frames - 1).astype(int)).tolist()}


def train_seed(seed, args, lr, arch) -> dict:
    """The neuron on blobs and the circles network for one seed."""
    verbose = args.verbose > 0
    blobs, circles = load_blobs(args.samples, seed), load_circles(args.samples, args.noise, seed)
    neuron = build_neuron(seed)
    neuron_hist, _ = train(
        neuron, blobs, optimizers.make("gd", 0.5), args.epochs, args.batch_size, seed, verbose=verbose, name="neuron"
    )
    net = build_model(args.hidden, args.activation, seed)
    _, snaps = train(
        net,
        circles,
        optimizers.make(args.optimizer, lr),
        args.epochs,
        args.batch_size,
        seed,
        snapshot_epochs(args.epochs, args.frames),
        verbose,
        f"{arch} net",
    )
    metrics = {
        **{f"blobs_{k}": v for k, v in evaluate(neuron, blobs).items()},
        **{f"circles_{k}": v for k, v in evaluate(net, circles).items()},
    }
    print(
        f"[seed {seed}] neuron on blobs: test accuracy {metrics['blobs_test_accuracy']:.3f}; "
        f"{arch} net on circles: test accuracy {metrics['circles_test_accuracy']:.3f}"
    )
    return dict(
        metrics=metrics,
        blobs=blobs,
        circles=circles,
        neuron=neuron,
        net=net,
        snaps=snaps,
        neuron_history=neuron_hist,
        seed=seed,
    )


def write_figures(run, r, rows, histories, checked, args, arch):
    blobs, circles = r["blobs"], r["circles"]
    fd, keras_results = checked
    errors = {
        "finite differences": fd,
        **{f"Keras {b}": res["gradients"] for b, res in keras_results.items() if "error" not in res},
    }
    figures.decision_boundaries(
        {
            "single neuron, blobs (test)": (r["neuron"], blobs.x_test, blobs.y_test),
            f"{arch} {args.activation} net, circles (test)": (r["net"], circles.x_test, circles.y_test),
        },
        run.path("decision_boundary.png"),
    )
    figures.training_animation(r["net"], r["snaps"], circles.x_train, circles.y_train, run.path("training.gif"))
    curves = {}
    for group, key, title in [
        ("hidden units", "hidden", f"hidden units ({args.optimizer})"),
        ("optimizer", "optimizer", f"optimizers ({args.activation} units)"),
    ]:
        curves[title] = {row[key]: histories[row["run"]]["loss"] for row in rows if row["group"] == group}
    figures.loss_curves(curves, run.path("loss_curves.png"))
    figures.gradient_check(errors, run.path("gradient_check.png"), GRAD_PASS)


def mean_and_std(per_seed: list[dict]) -> dict:
    """Mean of every metric over the seeds, and with several seeds its std as `<key>_std`."""
    stats = {k: mean_std([m[k] for m in per_seed]) for k in per_seed[0]}
    out = {k: mean for k, (mean, _) in stats.items()}
    if len(per_seed) > 1:
        out.update({f"{k}_std": std for k, (_, std) in stats.items()})
    return out


def study_gradients(args, procs) -> tuple[dict, dict]:
    """Finite differences here, then Keras' autodiff: this backend in this process (Keras is
    imported only now), the others collected from the checks started with the run."""
    print(
        "gradient check: finite differences"
        + (f"; Keras autodiff on {', '.join(args.backends)}" if args.backends else "")
    )
    fd = gradcheck.check_all(args.seed)
    runtime.set_threads(args.threads)  # imports Keras and the backend, only now
    return fd, checks.finish_checks(args.backends, procs, args.seed)


def save_artifacts(run, net, circles, rows, fd, keras_results) -> float:
    """The network (float64 Keras model and NumPy weights), the comparison and the check
    results. Returns the largest |p_keras - p_scratch| on the test points."""
    export_diff = checks.export_keras(net, circles, run.path("model.keras"))
    np.savez(run.path("model.npz"), *net.get_weights())
    run.write_text("comparison.csv", report.pd_csv(rows))
    run.write_json(
        "gradient_check.json",
        {
            "finite_differences": fd,
            "keras": keras_results,
            "worked_example_numpy": {h: worked_example.one_step(h) for h in ("linear", "relu")},
        },
    )
    run.write_text("gradient_check.md", report.gradient_report(fd, keras_results))
    return export_diff


@command
def main(argv=None):
    args = parse_args(argv)
    # not cli.start: the case is NumPy, and Keras is imported only for the checks (below)
    run = Run(CASE, args.out, overwrite=args.overwrite)
    procs = checks.start_checks(args.backends)
    lr = args.lr or optimizers.DEFAULT_LR[args.optimizer]
    arch = "-".join(map(str, [2, *args.hidden, 1]))
    print(
        f"scratch: neuron on blobs, {arch} {args.activation} net on circles, {args.optimizer} "
        f"lr {lr}, {args.epochs} epochs; writing {run.dir}"
    )

    results = [train_seed(s, args, lr, arch) for s in range(args.seed, args.seed + args.seeds)]
    first = results[0]
    rows, histories = compare(first["circles"], args, first["seed"])
    fd, keras_results = study_gradients(args, procs)
    passed = checks.summarize_checks(fd, keras_results)

    circles = first["circles"]
    export_diff = save_artifacts(run, first["net"], circles, rows, fd, keras_results)
    write_figures(run, first, rows, histories, (fd, keras_results), args, arch)
    metrics = {
        **mean_and_std([r["metrics"] for r in results]),
        **passed,
        "keras_export_max_abs_diff": export_diff,
        "architecture": arch,
        "activation": args.activation,
        "optimizer": args.optimizer,
        "learning_rate": lr,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "checked_backends": ",".join(args.backends),
        "dataset": f"{circles.name}; {first['blobs'].name}",
        "n_train": len(circles.x_train),
        "n_test": len(circles.x_test),
        "seed": args.seed,
        "seeds": args.seeds,
        "quick": args.quick,
    }
    headline = {k: metrics[f"circles_test_{k}"] for k in ("accuracy", "loss")}
    run.finish(
        metrics,
        report.sections(metrics, rows, fd, keras_results),
        title="From scratch: backpropagation in NumPy",
        headline={**headline, "blobs_accuracy": metrics["blobs_test_accuracy"]},
        history={"neuron (blobs)": first["neuron_history"], **{f"circles {k}": h for k, h in histories.items()}},
        config={**vars(args), "hidden": list(args.hidden)},
        notes=report.notes(metrics),
    )
    print(markdown_table(rows, ROW_COLUMNS))
    print(
        f"gradient check {'passed' if passed['gradcheck_passed'] else 'FAILED'}: "
        f"finite differences {passed['gradcheck_fd_max_rel_error']:.1e}"
        + "".join(f", {b} {passed.get(f'gradcheck_keras_{b}_max_rel_error', float('nan')):.1e}" for b in args.backends)
    )
    return 0 if passed["gradcheck_passed"] else 1  # a failed check fails the command


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
