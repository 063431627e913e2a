"""The flags every case study shares, and the one place user mistakes become one line."""

from __future__ import annotations

import argparse
import sys

from keras_cases import BACKENDS, UserError


class CaseParser(argparse.ArgumentParser):
    quick: dict = {}  # the --quick preset: {dest: value or callable(value) -> value}

    """An ArgumentParser that also applies `--distribute` once the command line is parsed.

    Every case calls `make_parser().parse_args(argv)` before it builds a model, which is
    where Keras needs its distribution set; doing it here keeps the case modules unaware
    of it. A batch size that does not split evenly over the devices is a UserError.
    """

    def parse_args(self, args=None, namespace=None):
        from keras_cases import runs

        argv = list(sys.argv[1:] if args is None else args)
        ns = super().parse_args(argv, namespace)
        cluster = processes(ns)  # (coordinator, processes, process id): (None, 1, 0) alone
        if getattr(ns, "resume", None):
            if cluster[1] > 1:
                raise UserError("--resume is for one process: continue a run without --num-processes")
            # the command recorded in the run, continued in the same directory
            recorded = runs.resume_into(ns.resume, self.prog.rsplit(".", 1)[-1])
            ns = super().parse_args([*recorded, "--out", ns.resume], namespace)
            ns.resume = ns.out
            if processes(ns)[1] > 1:
                raise UserError(f"--resume {ns.out}: that run was trained by several processes; --resume is for one")
        elif hasattr(ns, "overwrite"):  # refuse an unusable --out before any data is loaded
            if cluster[2] == 0:  # only process 0 writes the run (the others: a scratch folder)
                runs.check_out(getattr(ns, "out", None), ns.overwrite)
            runs.ARGV[:] = argv
        if getattr(ns, "quick", False):
            self.apply_quick(ns, argv)
        if hasattr(ns, "mlflow"):
            from keras_cases import tracking

            if tracking.requested(ns.mlflow):
                tracking.check_installed()
            runs.PARAMS[:] = [ns]  # read when the run opens, after presets like --quick
        if hasattr(ns, "distribute"):
            from keras_cases import runtime

            n = runtime.set_distribution(ns.distribute, *cluster)
            if ns.distribute != "none":
                batch = getattr(ns, "batch_size", None)
                if batch is not None and batch % n:
                    runtime.set_distribution("none")
                    raise UserError(
                        f"--batch-size {batch} does not split evenly over {n} devices "
                        f"(--distribute {ns.distribute}): use a multiple of {n}, "
                        f"e.g. {max(n, batch - batch % n)}"
                    )
                names = runtime.distribution()["names"]
                shown = ", ".join(names) if len(names) <= 8 else f"{names[0]} ... {names[-1]}"
                if cluster[1] > 1:
                    shown += f"; {cluster[1]} processes, this is process {cluster[2]}"
                print(
                    f"distribution: {ns.distribute} over {n} device{'s' * (n != 1)} ({shown})"
                    + (f", {batch // n} examples per device per batch of {batch}" if batch else ""),
                    flush=True,
                )
        return ns

    def apply_quick(self, ns, argv):
        """Clamp every flag of the --quick preset that the user did not type (a callable
        preset value maps the current value, e.g. `lambda v: min(v, 2)`, or the value and
        the parsed flags, e.g. `lambda v, ns: v if ns.distribute != "none" else 40`)."""
        import inspect

        flags = {a.dest: a.option_strings for a in self._actions}
        for dest, value in self.quick.items():
            if any(given(argv, f) for f in flags.get(dest, ()) if f.startswith("--")):
                continue
            if callable(value):
                two = len(inspect.signature(value).parameters) == 2
                value = value(getattr(ns, dest), ns) if two else value(getattr(ns, dest))
            setattr(ns, dest, value)


def parser(
    prog: str, description: str, epochs: int, batch_size: int, threads: int = 0, quick: dict | None = None
) -> argparse.ArgumentParser:
    """The shared parser; `quick` is the case's --quick preset: {dest: value or callable},
    applied after parsing to the flags the user did not type."""
    p = CaseParser(prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.quick = dict(quick or {})
    g = p.add_argument_group("shared by every case study")
    g.add_argument("--epochs", type=positive_int, default=epochs, help="(maximum) training epochs")
    g.add_argument("--batch-size", type=positive_int, default=batch_size, help="minibatch size")
    g.add_argument("--seed", type=seed, default=0, help="random seed (weights, shuffling, dropout)")
    g.add_argument(
        "--seeds", type=positive_int, default=1, help="repeat with seeds seed..seed+N-1 and report mean and std"
    )
    _run_flags(g)
    g.add_argument("--quick", action="store_true", help="a small smoke run (under a minute on 2 CPU cores)")
    _backend_flags(g, threads)
    return p


def _run_flags(g) -> None:
    """Where a run goes, what it may replace, where else it is tracked, and resuming it."""
    g.add_argument(
        "--out", default=None, help="run directory (default runs/<case>/<UTC timestamp>/); must be new or empty"
    )
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="let --out name an earlier run directory: its old contents are removed first",
    )
    g.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        default=None,
        metavar="URI",
        help="also track the run in MLflow (params, per-epoch metrics of every model, "
        "final metrics, report, plots and model as artifacts): a tracking server "
        "URI, or no URI for a local store (sqlite:///mlruns.db, ./mlruns); also "
        "$KERAS_CASES_MLFLOW. View with: mlflow ui --backend-store-uri sqlite:///mlruns.db",
    )
    g.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue an interrupted or failed run in its directory, with the flags "
        "it was started with: each model's training goes on from its last "
        "finished epoch (what was already trained is restored, not redone)",
    )
    g.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard logs to <run>/tensorboard/<model> "
        "(view with: tensorboard --logdir <run>/tensorboard)",
    )


def _backend_flags(g, threads: int) -> None:
    """Which backend, how many threads and devices, how much fit prints."""
    g.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="Keras backend (same as KERAS_BACKEND=...; must come before Keras is "
        "imported, so use it on the command line)",
    )
    g.add_argument(
        "--threads",
        type=nonnegative_int,
        default=threads,
        help="CPU threads for the backend's ops (0: the framework's default)",
    )
    g.add_argument(
        "--distribute",
        choices=("none", "data-parallel"),
        default="none",
        help="data-parallel: train on every GPU/TPU (or CPU device) at once with "
        "keras.distribution.DataParallel; weights are replicated and each "
        "batch of --batch-size is split evenly over the devices (so use a "
        "multiple of the device count). JAX backend only",
    )
    g.add_argument(
        "--num-processes",
        type=positive_int,
        default=None,
        metavar="N",
        help="with --distribute data-parallel: train one model in N JAX processes (e.g. one "
        "per GPU host or TPU pod host), each running this same command on the same data "
        "with its own --process-id; --batch-size is the global batch "
        "(when not given: $KERAS_DISTRIBUTION_NUM_PROCESSES, else 1)",
    )
    g.add_argument(
        "--process-id",
        type=nonnegative_int,
        default=None,
        metavar="I",
        help="this process' index, 0 to N-1; process 0 coordinates and is the only one that "
        "writes the run directory (when not given: $KERAS_DISTRIBUTION_PROCESS_ID)",
    )
    g.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        default=None,
        help="with --num-processes: process 0's address and a free port, the same on every "
        "process (when not given: the first of $KERAS_DISTRIBUTION_JOB_ADDRESSES)",
    )
    g.add_argument(
        "-v",
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=2,
        help="Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch",
    )


PROCESS_ENV = {
    "coordinator": "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "num_processes": "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "process_id": "KERAS_DISTRIBUTION_PROCESS_ID",
}


def processes(ns) -> tuple:
    """(coordinator, number of processes, this process' id) from --coordinator /
    --num-processes / --process-id, else the environment variables keras.distribution
    reads (KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_PROCESSES, _PROCESS_ID); (None, 1, 0) for
    one process. Every mistake is a UserError naming the flag or variable."""
    import os

    if not hasattr(ns, "num_processes"):
        return None, 1, 0
    got, source = {}, {}
    for dest, env in PROCESS_ENV.items():
        flag = "--" + dest.replace("_", "-")
        value, source[dest] = getattr(ns, dest), flag
        if value is None and os.environ.get(env, "").strip():
            value, source[dest] = os.environ[env].strip(), f"${env}"
            least = int(dest == "num_processes")
            if dest != "coordinator" and not (value.isdigit() and int(value) >= least):
                raise UserError(f"${env}={value!r}: expected an integer of at least {least}")
            value = value if dest == "coordinator" else int(value)
        got[dest] = value
    n, pid, address = got["num_processes"] or 1, got["process_id"], got["coordinator"]
    if n == 1:
        for dest in ("coordinator", "process_id"):
            if got[dest] not in (None, 0):
                raise UserError(f"{source[dest]} is for several processes: also give --num-processes N (N >= 2)")
        return None, 1, 0
    if getattr(ns, "distribute", "none") == "none":
        raise UserError(f"{source['num_processes']} {n}: several processes need --distribute data-parallel")
    if pid is None:
        raise UserError(f"{source['num_processes']} {n} needs --process-id (0 to {n - 1}) on every process")
    if pid >= n:
        raise UserError(f"{source['process_id']} {pid} is out of range: with {n} processes use 0 to {n - 1}")
    if not address:
        raise UserError(f"{source['num_processes']} {n} needs --coordinator HOST:PORT (process 0's address)")
    addresses = address.split(",")
    for a in addresses:
        host, _, port_text = a.strip().rpartition(":")
        if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise UserError(
                f"{source['coordinator']} {address!r}: expected HOST:PORT with a port from 1 to 65535, "
                "e.g. 10.0.0.1:8476"
            )
    if len(addresses) > 1 and len(addresses) != n:
        raise UserError(f"{source['coordinator']} lists {len(addresses)} addresses for {n} processes")
    return address, n, pid


def _number(text: str, cast, ok, rule: str, what: str = "a number"):
    """`text` as int/float if `ok(value)`, else argparse's one-line error naming `rule`."""
    import math

    try:
        v = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    if (cast is float and not math.isfinite(v)) or not ok(v):
        raise argparse.ArgumentTypeError(f"{text!r} {rule}")
    return v


MAX_SEED = 2**32 - 1 - 10_000  # NumPy seeds are < 2**32; room left for --seeds N


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "must be at least 1", "an integer")


def nonnegative_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 0, "must be 0 or more", "an integer")


def seed(text: str) -> int:
    """A random seed NumPy, Python and every backend accept: 0 <= seed <= MAX_SEED."""
    return _number(text, int, lambda v: 0 <= v <= MAX_SEED, f"is out of range: a seed is 0 to {MAX_SEED}", "an integer")


def port(text: str) -> int:
    return _number(text, int, lambda v: 0 <= v <= 65535, "is not a TCP port (0 to 65535)", "a port number")


def positive_float(text: str) -> float:
    """A finite number above 0 (a budget, a rate): 'nan', 'inf', 0 and negatives are refused."""
    return _number(text, float, lambda v: v > 0, "must be a finite number above 0")


def nonnegative_float(text: str) -> float:
    return _number(text, float, lambda v: v >= 0, "must be a finite number, 0 or more")


def fraction(text: str) -> float:
    """A finite number in [0, 1)."""
    return _number(text, float, lambda v: 0 <= v < 1, "must be at least 0 and below 1")


def parse_list(text: str, flag: str, choices=None, what: str = "choice") -> list:
    """A comma-separated flag value as a list without repeats, in the order given.

    `choices`: None for positive integers; a sequence of allowed names; or a dict
    {short key: name} where either form is accepted and the keys are returned."""
    names = {v: k for k, v in choices.items()} if isinstance(choices, dict) else {}
    out = []
    for part in (t.strip().lower() for t in text.split(",") if t.strip()):
        if choices is None:
            try:
                v = int(part)
            except ValueError:
                raise UserError(f"{flag}: {part!r} is not an integer")
            if v < 1:
                raise UserError(f"{flag}: {v} must be at least 1")
        else:
            v = names.get(part, part)
            if v not in choices:
                shown = [f"{k} ({n})" for k, n in choices.items()] if names else list(choices)
                raise UserError(f"{flag}: unknown {what} {part!r}; choose from {', '.join(shown)}")
        if v not in out:
            out.append(v)
    if not out:
        raise UserError(f"{flag} is empty")
    return out


def given(argv, flag: str) -> bool:
    """Whether the user typed `flag` (as `--flag N` or `--flag=N`) on the command line; for
    `--resume RUN_DIR`, on the command line that run was started with (runs.ARGV)."""
    argv = sys.argv[1:] if argv is None else argv
    if flag != "--resume" and any(a == "--resume" or a.startswith("--resume=") for a in argv):
        from keras_cases import runs

        argv = runs.ARGV
    return any(a == flag or a.startswith(flag + "=") for a in argv)


def start(case: str, args, what: str):
    """The opening every multi-seed study shares: seed the run, set the CPU threads, open the
    run directory, and print what runs where. Returns (run, backend report, seeds)."""
    from keras_cases import runtime
    from keras_cases.runs import Run

    runtime.set_seed(args.seed)
    runtime.set_threads(args.threads)
    seeds = list(range(args.seed, args.seed + args.seeds))
    run = Run(case, args.out, tensorboard=args.tensorboard, overwrite=args.overwrite)
    info = runtime.backend_report()
    print(f"{what}; seeds {seeds}; backend {info['backend']}; writing {run.dir}", flush=True)
    return run, info, seeds


def run(main, argv=None) -> int:
    """Call `main(argv)`; a UserError becomes `error: ...` on stderr and exit code 2."""
    from keras_cases.runs import lifecycle

    try:
        with lifecycle():
            return main(argv) or 0
    except UserError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)  # always one line
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
