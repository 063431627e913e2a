"""`python -m benchmarks`: how fast each backend trains the case studies, against the limit.

    python -m benchmarks                          # churn, spam and cifar on every installed backend
    python -m benchmarks --cases churn,spam --backends jax,torch
    python -m benchmarks --quick                  # a smoke run (tiny subsets, low targets)

Per backend, in worker processes (benchmarks/worker.py; Keras fixes its backend at import):

- churn: epoch time of the churn MLP under each Keras configuration (steps_per_execution
  1/8/32/epoch, Keras' array adapter or a PyDataset, XLA on/off, threads) against the same
  model as a hand-written raw JAX (jax.jit + optax) and raw PyTorch loop; the fastest Keras
  configuration again at batch 256; the wall time of `python -m keras_cases.churn`;
- time to quality: seconds of each case's own training (its model, data and defaults) until
  its validation metric first reaches a stated level, with a cap per case;
- spam: each text network's epoch time at steps_per_execution 1 and 32.

Writes `<machine>.md`, `.json` and `.png` into --out (default `./benchmarks-results/`; the committed tables are in the repository's `benchmarks/results/`). Epoch times are
medians over the timed epochs after a first epoch that compiles. The machine's load
average is sampled through the run and reported: on a shared machine the numbers move with it.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.report import CASES, TASKS, add_ratios, chart, report, ttq_rows
from keras_cases import UserError, cli
from keras_cases.runs import read_json
from keras_cases.runtime import installed_backends

# results go to the working directory (an installed package's folder is no place for them);
# the committed tables live in the repository's benchmarks/results/ (pass --out there to refresh)
RESULTS = Path("benchmarks-results")
COMMITTED = Path(__file__).resolve().parent / "results"


def machine() -> str:
    return f"{platform.system().lower()}-{platform.machine()}-{os.cpu_count()}cpu"


class LoadSampler(threading.Thread):
    """The 1-minute load average every `every` seconds while the benchmark runs."""

    def __init__(self, every=5.0):
        super().__init__(daemon=True)
        self.every, self.samples, self.done = every, [], threading.Event()

    def run(self):
        t0 = time.time()
        while not self.done.is_set():
            self.samples.append((round(time.time() - t0, 1), round(os.getloadavg()[0], 2)))
            self.done.wait(self.every)

    def summary(self) -> dict:
        v = [s for _, s in self.samples] or [os.getloadavg()[0]]
        return {"min": min(v), "median": statistics.median(v), "max": max(v), "samples": self.samples}


def run_worker(b, tasks, quick, batch_size, tmp) -> dict:
    path = Path(tmp) / f"{b}-{'-'.join(tasks)}.json"
    env = {**os.environ, "KERAS_BACKEND": b, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.worker",
        "--out",
        str(path),
        "--tasks",
        ",".join(tasks),
        "--batch-size",
        str(batch_size),
    ] + (["--quick"] if quick else [])
    t = time.time()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"error: the {b} benchmark ({', '.join(tasks)}) failed:\n{p.stderr[-3000:]}")
    print(f"   {b} {','.join(tasks)}: {time.time() - t:.0f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    return json.loads(path.read_text())


def churn_default_run(b, quick, tmp) -> dict:
    """Wall time of `python -m keras_cases.churn` (a fresh process: imports included) and the
    `seconds` its metrics.json reports (from data loading to the written report)."""
    out = Path(tmp) / f"churn-run-{b}"
    env = {**os.environ, "KERAS_BACKEND": b, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "keras_cases.churn", "-v", "0", "--out", str(out)] + (["--quick"] if quick else [])
    load, t = os.getloadavg()[0], time.time()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.time() - t
    if p.returncode != 0:
        raise SystemExit(f"error: `python -m keras_cases.churn` failed on {b}:\n{p.stderr[-3000:]}")
    m = json.loads((out / "metrics.json").read_text())
    print(f"   {b} python -m keras_cases.churn{' --quick' if quick else ''}: {wall:.1f} s", flush=True)
    return {
        "command": " ".join(["python -m keras_cases.churn"] + (["--quick"] if quick else [])),
        "wall_s": wall,
        "metrics_seconds": m["seconds"],
        "roc_auc": m.get("roc_auc"),
        "epochs_trained": m.get("epochs_trained"),
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def run_all(backends, cases, quick, batch_size) -> dict:
    """Every backend's results: {backend: {report..., tasks: {task: ...}, peak_rss_mb: {...}}}.

    A full run gives each task its own process (its own threads setting and memory), one at a
    time, and times the full `python -m keras_cases.churn` per backend. A quick run is a smoke
    test of the harness, not a measurement: one process per backend, the backends side by side
    (imports and compiles are most of its time), and no full churn run."""
    tasks = [t for c in cases for t in TASKS[c]]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        if quick:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(backends)) as pool:
                done = {b: pool.submit(run_worker, b, tasks, quick, batch_size, tmp) for b in backends}
                return {b: f.result() for b, f in done.items()}
        for b in backends:
            print(f"== {b}", flush=True)
            res = None
            for task in tasks:
                r = run_worker(b, [task], quick, batch_size, tmp)
                if res is None:
                    res = r
                else:
                    for key in ("tasks", "peak_rss_mb", "task_seconds"):
                        res[key].update(r[key])
            if "churn" in cases:
                res["churn_run"] = churn_default_run(b, quick, tmp)
            out[b] = res
    return out


# --- the command ----------------------------------------------------------------------
RESULT_KEYS = ("results", "wall_s", "load_average", "cases", "quick", "batch_size", "generated_utc")


def parse_backends(text: str) -> list[str]:
    """--backends: known Keras backends that are installed here, or a UserError."""
    from keras_cases import BACKENDS

    backends = cli.parse_list(text, "--backends", BACKENDS, "backend")
    missing = [b for b in backends if b not in installed_backends()]
    if missing:
        raise UserError(
            f"--backends: {', '.join(missing)} is not installed here (installed: "
            f"{', '.join(installed_backends()) or 'none'})"
        )
    return backends


def read_results(path) -> dict:
    """The results .json of an earlier run (for --render); anything else is a UserError."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"--render {p}: {'a directory, not a file' if p.is_dir() else 'file not found'}")
    saved = read_json(p)
    missing = [k for k in RESULT_KEYS if k not in saved]
    backends = saved.get("results")
    if (
        missing
        or not isinstance(backends, dict)
        or not isinstance(saved["cases"], list)
        or not all(isinstance(r, dict) and isinstance(r.get("tasks"), dict) for r in backends.values())
    ):
        raise UserError(
            f"--render {p} is not a benchmark results file (it lacks "
            f"{', '.join(missing) or 'a results table'}); give a .json this command wrote"
        )
    unknown = [c for c in saved["cases"] if c not in CASES]
    if unknown:
        raise UserError(f"--render {p} names unknown case(s) {', '.join(map(str, unknown))}")
    return saved


def results_dir(out) -> Path:
    """--out (default ./benchmarks-results), checked before anything is measured."""
    d = Path(out).expanduser() if out else RESULTS
    if d.exists() and not d.is_dir():
        raise UserError(f"--out {d} is a file, not a directory")
    return d


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default=",".join(installed_backends()), help="comma-separated")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    p.add_argument(
        "--quick", action="store_true", help="a smoke run: fewer configs and epochs, tiny subsets, low targets"
    )
    p.add_argument(
        "--batch-size", type=cli.positive_int, default=64, help="churn MLP batch size for the configuration table"
    )
    p.add_argument(
        "--out",
        default=None,
        help=f"results directory (default ./{RESULTS}; the repository's committed tables are in {COMMITTED.name}/)",
    )
    p.add_argument(
        "--render",
        default=None,
        metavar="JSON",
        help="write the report (.md, .png) again from a results .json, without measuring",
    )
    return p


def main(argv=None):
    p = make_parser()
    args = p.parse_args(argv)
    backends = parse_backends(args.backends)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown or not cases:
        p.error(f"--cases: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(CASES)}")
    cases = [c for c in CASES if c in cases]
    if args.render:
        saved = read_results(args.render)
        results, wall, load, cases = saved["results"], saved["wall_s"], saved["load_average"], saved["cases"]
        args.quick, args.batch_size = saved["quick"], saved["batch_size"]
        args.out = args.out or str(Path(args.render).expanduser().parent)
        when = saved["generated_utc"]
    out = results_dir(args.out)
    if not args.render:
        results, wall, load = measure(backends, cases, args.quick, args.batch_size)
        when = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}"
    write_report(out, args, cases, results, wall, load, when)
    return 0


def measure(backends, cases, quick, batch_size) -> tuple[dict, float, dict]:
    """Every backend's results, the wall seconds, and the load average sampled meanwhile."""
    sampler = LoadSampler()
    sampler.start()
    t0 = time.time()
    results = run_all(backends, cases, quick, batch_size)
    wall = time.time() - t0
    sampler.done.set()
    return results, wall, sampler.summary()


def write_report(out, args, cases, results, wall, load, when) -> None:
    """<machine>[-quick].md, .json and .png in `out`; the report is printed too."""
    churn = [(res["tasks"].get("churn") or {}, b) for b, res in results.items()]
    rows = add_ratios([dict(r, backend=b) for c, b in churn for r in c.get("rows", [])])
    sweep = add_ratios(
        [dict(r, backend=b) for c, b in churn for r in c.get("sweep", [])],
        [r for r in rows if r["runner"] == "raw jax"],
    )
    ab = add_ratios([dict(r, backend=b) for c, b in churn for r in c.get("interleaved", [])])
    ttq = ttq_rows(results)
    out.mkdir(parents=True, exist_ok=True)
    name = machine() + ("-quick" if args.quick else "")
    chart(rows + [r for r in sweep if r["batch_size"] != args.batch_size], ttq, out / f"{name}.png")
    text, extra = report(name, args, cases, results, rows, sweep, ab, ttq, load, wall, when)
    (out / f"{name}.md").write_text(text)
    (out / f"{name}.json").write_text(
        json.dumps(
            {
                "machine": name,
                "generated_utc": when,
                "cases": cases,
                "quick": args.quick,
                "batch_size": args.batch_size,
                "wall_s": wall,
                "load_average": load,
                "results": results,
                "rows": rows,
                "sweep": sweep,
                "interleaved": ab,
                "time_to_quality": ttq,
                **extra,
            },
            indent=2,
        )
    )
    print(text)
    print(f"wrote {out / name}.md, .json, .png")


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
