"""Compress a saved run: `python -m keras_cases compress --run DIR --method int8|distill|prune`.

- `int8`     Keras' post-training quantization (`model.quantize("int8")`) of the layers
             Keras supports; the report names the layers left in float (`int8`)
- `prune`    magnitude pruning to `--sparsity` with fine-tuning, the mask held by a Keras
             constraint (`prune`)
- `distill`  a smaller student of the teacher's family trained on its softened outputs
             (`--temperature`, `--alpha`; size `--width` or `--params`) (`distill`)

The result is a normal run of the same case (cifar or spam): servable with `python -m
keras_cases serve --run`, exportable with `python -m keras_cases export`. Its report and
metrics.json hold the comparison table (parameters, bytes on disk and gzipped, non-zero
weights, latency per example at batch 1 and 256 with `predict_on_batch`, median of
repeats, and the test metric against the original, on the same test set); its
config.json names the teacher run, the method and its settings. Fine-tuning and
distillation use the teacher's own training split; the test set is scored once per model.

    python -m keras_cases compress --run runs/cifar/<stamp> --method int8
    python -m keras_cases compress --run runs/cifar/<stamp> --method prune --sparsity 0.5 --epochs 2
    python -m keras_cases compress --run runs/cifar/<stamp> --method distill --params 75000 --epochs 8
"""

from __future__ import annotations

import argparse
import importlib

from keras_cases import UserError, cli

METHODS = ("int8", "prune", "distill")


def _open_fraction(text: str) -> float:
    return cli._number(text, float, lambda v: 0 < v < 1, "must be above 0 and below 1")


def _unit_interval(text: str) -> float:
    return cli._number(text, float, lambda v: 0 <= v <= 1, "must be between 0 and 1")


def _width(text: str) -> float:
    return cli._number(text, float, lambda v: 0 < v <= 1, "must be above 0 and at most 1")


def make_parser():
    p = argparse.ArgumentParser(
        prog="python -m keras_cases compress",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--run", required=True, help="the run to compress (a cifar or spam run)")
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--out", default=None, help="where the compressed run goes (default runs/<case>/<UTC timestamp>/)")
    p.add_argument("--overwrite", action="store_true", help="let --out name an earlier run directory")
    p.add_argument(
        "--epochs", type=cli.positive_int, default=None, help="training epochs (prune: 2; distill: the teacher's)"
    )
    p.add_argument("--batch-size", type=cli.positive_int, default=None, help="(default: the teacher's)")
    p.add_argument("--lr", type=cli.positive_float, default=None, help="peak learning rate (default: per case)")
    p.add_argument("--seed", type=cli.seed, default=0)
    g = p.add_argument_group("prune")
    g.add_argument("--sparsity", type=_open_fraction, default=0.5, help="fraction of each weight matrix set to zero")
    g.add_argument("--rounds", type=cli.positive_int, default=2, help="pruning rounds up to the target sparsity")
    g = p.add_argument_group("distill")
    g.add_argument(
        "--temperature", type=cli.positive_float, default=4.0, help="softmax temperature of the soft targets"
    )
    g.add_argument(
        "--alpha", type=_unit_interval, default=0.9, help="weight of the soft-target loss (1 - alpha: labels)"
    )
    g.add_argument("--width", type=_width, default=None, help="student width as a multiplier of the teacher's")
    g.add_argument(
        "--params", type=cli.positive_int, default=None, help="most parameters for the student (default: teacher's / 4)"
    )
    p.add_argument("--backend", default=None, choices=("jax", "tensorflow", "torch"), help="Keras backend")
    p.add_argument(
        "--threads",
        type=cli.nonnegative_int,
        default=None,
        help="CPU threads (0: the framework's; default: the teacher's)",
    )
    p.add_argument("-v", "--verbose", type=int, choices=(0, 1, 2), default=2, help="Keras fit verbosity")
    return p


def open_teacher(run_dir):
    """The case adapter around a complete cifar or spam run (its model and data loaded)."""
    from keras_cases.compress.cases import CASES
    from keras_cases.runs import load_run, run_case

    d = load_run(run_dir, ("model.keras", "metrics.json"))
    case = run_case(d)
    if case not in CASES:
        raise UserError(f"the {case} case cannot be compressed here: compress takes runs of {', '.join(CASES)}")
    return CASES[case](d)


def defaults(args, case) -> None:
    """Fill the flags left at None from the teacher run."""
    m, c = case.metrics, case.config
    if args.threads is None:  # spam runs on one thread: small models are fastest so on a busy CPU
        args.threads = int(c.get("threads") or 0)
    if args.batch_size is None:
        args.batch_size = int(c.get("batch_size") or m.get("recipe_batch_size") or 64)
    if args.epochs is None:
        per = (m.get("models") or {}).get(getattr(case, "kind", ""), {})
        teacher = m.get("epochs_trained") or per.get("epochs_trained") or 5
        args.epochs = 2 if args.method == "prune" else max(1, round(teacher))


def compress_main(argv):
    from keras_cases import runs

    args = make_parser().parse_args(argv)
    runs.check_out(args.out, args.overwrite)
    runs.ARGV[:] = list(argv)
    if args.method != "distill" and (args.width is not None or args.params is not None):
        raise UserError("--width and --params size a distillation student: use them with --method distill")
    case = open_teacher(args.run)
    defaults(args, case)
    from keras_cases import runtime
    from keras_cases.compress import measure
    from keras_cases.runs import Run

    runtime.set_seed(args.seed)
    runtime.set_threads(args.threads)
    before = case.evaluate(case.model)
    original = measure.row("original", case.model, case, before)
    run = Run(case.name, args.out, overwrite=args.overwrite)
    print(f"{args.method} of {case.dir} ({case.name}); backend {runtime.backend()}; writing {run.dir}", flush=True)
    model, info, text, history = importlib.import_module(f"keras_cases.compress.{args.method}").compress(case, args)
    if getattr(model, "optimizer", None) is not None:
        model.compile()  # the saved run holds the model, not its training state
    runtime.save_model(model, run.path("model.keras"))
    after = case.evaluate(model)
    case.save_extras(run, after)
    row = measure.row(args.method, model, case, after)
    agreement = float((before["_pred"] == after["_pred"]).mean())
    table, numbers = measure.compare([original, row], agreement)
    title = f"{case.name} {args.method} of {case.dir} ({runtime.backend()})"
    run.write_text("compression.md", f"### {title}\n\n{table}\n")
    print(table, flush=True)
    metrics = {
        **case.run_metrics(after),
        "compress": {"method": args.method, "teacher_run": str(case.dir), **info, **numbers},
    }
    own = {"int8": (), "prune": ("sparsity", "rounds"), "distill": ("temperature", "alpha", "width", "params")}
    keys = ("seed", "backend", *(() if args.method == "int8" else ("epochs", "batch_size", "lr")), *own[args.method])
    settings = {k: getattr(args, k) for k in keys}
    run.finish(
        metrics,
        [(f"Compression: {args.method}", f"{text}\n\n{table}")],
        title=f"{case.name}: {args.method} of {case.dir.name}",
        headline={k: after[k] for k in after if not k.startswith("_")},
        history={args.method: history} if history else None,
        config={"method": args.method, "teacher_run": str(case.dir), **settings, "teacher_config": case.config},
        notes=[f"compressed from `{case.dir}` by `{args.method}` ({runtime.backend()})"],
    )
    return 0
