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

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_cases import UserError, cli, runtime
from keras_cases.runs import Run, command, markdown_table
from keras_cases.scratch import figures, gradcheck, optimizers, worked_example
from keras_cases.scratch.layers import ACTIVATIONS, Network, mlp
from keras_cases.scratch.losses import BinaryCrossEntropy

CASE = "scratch"
COMPARED_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid")
COMPARED_OPTIMIZERS = ("gd", "momentum", "rmsprop", "adam")
GRAD_PASS = 1e-7  # max relative error of a hand-written gradient
OPT_PASS = 1e-10  # max |w_scratch - w_keras| after the optimizer steps
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


# --- the gradient check -------------------------------------------------------------
def check_backends(text: str) -> list[str]:
    """--check-backends: 'installed', 'none' or a comma-separated list."""
    if text == "installed":
        return runtime.installed_backends()
    if text == "none":
        return []
    names = [b.strip().lower() for b in text.split(",") if b.strip()]
    installed = runtime.installed_backends()
    for b in names:
        if b not in installed:
            raise UserError(
                f"--check-backends: {b!r} is not an installed Keras backend "
                f"(installed: {', '.join(installed) or 'none'})"
            )
    return names


def start_check(backend: str) -> subprocess.Popen:
    """`python -m keras_cases.scratch.keras_check` with KERAS_BACKEND=backend."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, "-m", "keras_cases.scratch.keras_check"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def collect_check(proc: subprocess.Popen, timeout=600) -> dict:
    """The JSON a started check printed, or {"error": its last line of stderr}."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": f"timed out after {timeout} s"}
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": (err.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]}
    try:
        return json.loads(lines[-1])
    except ValueError:
        return {"error": f"no JSON result; its output ended with {lines[-1][:200]!r}"}


def start_checks(backends) -> dict:
    """Launch the Keras checks of the other backends: they run while this one trains.
    (Keras fixes its backend at import, so each backend needs its own process.)"""
    active = os.environ["KERAS_BACKEND"]  # set by `import keras_cases`
    return {b: start_check(b) for b in backends if b != active}


def finish_checks(backends, procs, seed) -> dict:
    """{backend: keras_check result}: the active backend in this process, the others
    collected from their subprocesses."""
    from keras_cases.scratch import keras_check

    return {b: collect_check(procs[b]) if b in procs else keras_check.run_all(seed) for b in backends}


def summarize_checks(fd: dict, keras_results: dict) -> dict:
    """Flat pass/fail numbers for metrics.json."""
    out = {"gradcheck_fd_max_rel_error": max(fd.values())}
    for b, r in keras_results.items():
        if "error" in r:
            out[f"gradcheck_{b}_error"] = r["error"]
            continue
        out[f"gradcheck_keras_{b}_max_rel_error"] = max(r["gradients"].values())
        out[f"optimizer_keras_{b}_max_abs_diff"] = max(r["optimizers"].values())
    ok = out["gradcheck_fd_max_rel_error"] < GRAD_PASS and all(
        "error" not in r
        and max(r["gradients"].values()) < GRAD_PASS
        and max(r["optimizers"].values()) < OPT_PASS
        and not any(r["optimizer_defaults"].values())
        for r in keras_results.values()
    )
    return {**out, "gradcheck_passed": bool(ok)}


def export_keras(net, data, path) -> float:
    """Save the trained scratch network as a float64 Keras model; returns the largest
    |p_keras - p_scratch| on the test set."""
    import keras

    from keras_cases.scratch import keras_check

    with keras_check.float64():
        model, _ = keras_check.to_keras(net, (data.x_train.shape[1],), weights=False)
        runtime.save_model(model, path)  # without importing TensorFlow on JAX or torch
        p = keras.ops.convert_to_numpy(model(data.x_test))
    return float(np.max(np.abs(p - net.predict(data.x_test))))


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
        "python -m keras_cases.scratch", __doc__.split("\n\n")[0], epochs=1000, batch_size=1024, threads=1
    )  # tiny tensors: one thread
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
    args.backends = check_backends(args.check_backends)
    if args.lr is not None and args.lr <= 0:
        raise UserError(f"--lr {args.lr}: the learning rate must be positive")
    if args.quick:
        args.epochs = min(args.epochs, 300)
        args.frames = min(args.frames, 12)
        args.samples = min(args.samples, 300)
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


def write_figures(run, r, rows, histories, errors, args, arch):
    blobs, circles = r["blobs"], r["circles"]
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
    out = {k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]}
    if len(per_seed) > 1:
        out.update({f"{k}_std": float(np.std([m[k] for m in per_seed], ddof=1)) for k in per_seed[0]})
    return out


@command
def main(argv=None):
    args = parse_args(argv)
    t0 = time.time()
    run = Run(CASE, args.out, overwrite=args.overwrite)
    procs = start_checks(args.backends)
    lr = args.lr or optimizers.DEFAULT_LR[args.optimizer]
    arch = "-".join(map(str, [2, *args.hidden, 1]))
    print(
        f"scratch: neuron on blobs, {arch} {args.activation} net on circles, {args.optimizer} "
        f"lr {lr}, {args.epochs} epochs; writing {run.dir}"
    )

    results = [train_seed(s, args, lr, arch) for s in range(args.seed, args.seed + args.seeds)]
    first = results[0]
    rows, histories = compare(first["circles"], args, first["seed"])

    print(
        "gradient check: finite differences"
        + (f"; Keras autodiff on {', '.join(args.backends)}" if args.backends else "")
    )
    fd = gradcheck.check_all(args.seed)
    runtime.set_threads(args.threads)  # imports Keras and the backend, only now
    info = runtime.backend_report()
    keras_results = finish_checks(args.backends, procs, args.seed)
    checks = summarize_checks(fd, keras_results)
    errors = {
        "finite differences": fd,
        **{f"Keras {b}": r["gradients"] for b, r in keras_results.items() if "error" not in r},
    }

    circles, net = first["circles"], first["net"]
    export_diff = export_keras(net, circles, run.path("model.keras"))
    np.savez(run.path("model.npz"), *net.get_weights())
    write_figures(run, first, rows, histories, errors, args, arch)
    metrics = {
        **mean_and_std([r["metrics"] for r in results]),
        **checks,
        "keras_export_max_abs_diff": export_diff,
        "architecture": arch,
        "activation": args.activation,
        "optimizer": args.optimizer,
        "learning_rate": lr,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        **info,
        "checked_backends": ",".join(args.backends),
        "dataset": f"{circles.name}; {first['blobs'].name}",
        "n_train": len(circles.x_train),
        "n_test": len(circles.x_test),
        "seed": args.seed,
        "seeds": args.seeds,
        "quick": args.quick,
    }
    run.write_json("config.json", {**vars(args), "hidden": list(args.hidden)})
    run.write_history({"neuron (blobs)": first["neuron_history"], **{f"circles {k}": h for k, h in histories.items()}})
    run.write_text("comparison.csv", pd_csv(rows))
    run.write_json(
        "gradient_check.json",
        {
            "finite_differences": fd,
            "keras": keras_results,
            "worked_example_numpy": {h: worked_example.one_step(h) for h in ("linear", "relu")},
        },
    )
    metrics["seconds"] = round(time.time() - t0, 2)
    run.write_json("metrics.json", metrics)
    run.write_text("gradient_check.md", gradient_report(fd, keras_results))
    run.write_text("report.md", report(metrics, rows, fd, keras_results))
    print(markdown_table(rows, ROW_COLUMNS))
    print(
        f"gradient check {'passed' if checks['gradcheck_passed'] else 'FAILED'}: "
        f"finite differences {checks['gradcheck_fd_max_rel_error']:.1e}"
        + "".join(f", {b} {checks.get(f'gradcheck_keras_{b}_max_rel_error', float('nan')):.1e}" for b in args.backends)
    )
    print(f"wrote {run.dir}/ (metrics.json, report.md, gradient_check.md, plots, training.gif)")
    return 0 if checks["gradcheck_passed"] else 1  # a failed check fails the command


# --- reports ------------------------------------------------------------------------
ROW_COLUMNS = [
    "group",
    "hidden",
    "optimizer",
    "learning_rate",
    "train_loss",
    "train_accuracy",
    "test_accuracy",
    "epochs_to_97%",
]


def pd_csv(rows) -> str:
    import pandas as pd

    return pd.DataFrame(rows).to_csv(index=False)


def gradient_report(fd, keras_results, h="#") -> str:
    """The gradient-check tables; `h` is the markdown heading level of the title."""
    ok = {b: r for b, r in keras_results.items() if "error" not in r}
    failed = "".join(
        f"\n- {b}: the check did not run: {r['error']}\n" for b, r in keras_results.items() if "error" in r
    )
    grad_rows = [{"case": c, "finite differences": fd[c], **{b: r["gradients"][c] for b, r in ok.items()}} for c in fd]
    first = next(iter(ok.values()), None)
    opt_rows = [
        {"update rule": o, **{b: r["optimizers"][o] for b, r in ok.items()}}
        for o in (first["optimizers"] if first else [])
    ]
    mine = {hidden: worked_example.one_step(hidden) for hidden in ("linear", "relu")}
    we_rows = []
    for hidden, m in mine.items():
        theirs = {b: r["worked_example"][hidden] for b, r in ok.items()}
        for q, key in [("y_hat", "y_hat"), ("loss", "loss"), ("loss after 1 step", "loss_after")]:
            we_rows.append(
                {"hidden": hidden, "quantity": q, "scratch": m[key], **{b: t[key] for b, t in theirs.items()}}
            )
        for i in range(6):
            we_rows.append(
                {
                    "hidden": hidden,
                    "quantity": f"dL/dW{i + 1}",
                    "scratch": m["grads"][i],
                    **{b: t["grads"][i] for b, t in theirs.items()},
                }
            )
    backends = list(ok)
    differ = {b: d for b, r in ok.items() for d in r["optimizer_defaults"].values() if d}
    defaults = differ or "none"
    steps = first["optimizer_steps"] if first else "n"
    return f"""{h} Gradient check

Max relative error |a - n| / max(|a|, |n|, 1e-8) of the hand-written gradients, per
case: against centered finite differences (float64, h = 1e-5, parameters) and against
Keras' autodiff in float64 on each backend (loss, input and parameter gradients).
Pass: < {GRAD_PASS:g}.
{failed}
{markdown_table(grad_rows, ["case", "finite differences", *backends], fmt="{:.1e}")}

![gradient check](gradient_check.png)

{h}# Optimizers

Max |w_scratch - w_keras| after {steps} steps from the same weights with the same
gradients (float64). Pass: < {OPT_PASS:g}. Constructor defaults that differ from
keras.optimizers: {defaults}.

{markdown_table(opt_rows, ["update rule", *backends], fmt="{:.1e}")}

{h}# The worked 2-2-1 example

Inputs (2, 4), target 1, loss 1/2 (y - y_hat)^2, SGD with learning rate 0.05.

{markdown_table(we_rows, ["hidden", "quantity", "scratch", *backends], fmt="{:.10f}")}
"""


def report(m, rows, fd, keras_results) -> str:
    backends = m["checked_backends"] or "none"
    return f"""# From scratch: backpropagation in NumPy

- data: {m["dataset"]}; {m["n_train"]} train / {m["n_test"]} test points each
- single neuron on the blobs; a {m["architecture"]} network with {m["activation"]} hidden
  units on the circles; {m["optimizer"]} (learning rate {m["learning_rate"]}),
  {m["epochs"]} epochs, batch size {m["batch_size"]} (full batch when >= the training set)
- seeds: {m["seeds"]} from {m["seed"]}; backend {m["backend"]} (Keras {m["keras_version"]});
  gradients checked against Keras on: {backends}
- wall time: {m["seconds"]} s

## Results (test set)

| model | test accuracy | test loss |
|---|---|---|
| single neuron, blobs | {m["blobs_test_accuracy"]:.4f} | {m["blobs_test_loss"]:.4f} |
| {m["architecture"]} {m["activation"]} net, circles | {m["circles_test_accuracy"]:.4f} | {m["circles_test_loss"]:.4f} |

![decision boundaries](decision_boundary.png)

Training, frame by frame: ![decision boundary during training](training.gif)

The trained network saved as a float64 Keras model (`model.keras`) predicts the test
points within {m["keras_export_max_abs_diff"]:.1e} of the NumPy network.

## Hidden units and optimizers (circles)

{markdown_table(rows, ROW_COLUMNS)}

![loss curves](loss_curves.png)

{gradient_report(fd, keras_results, h="##")}
**Gradient check {"passed" if m["gradcheck_passed"] else "FAILED"}.**
"""


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
