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

Writes `benchmarks/results/<machine>.md`, `.json` and `.png` (or into --out). Epoch times are
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

from keras_cases import UserError, cli
from keras_cases.runs import read_json
from keras_cases.runtime import installed_backends

RESULTS = Path(__file__).resolve().parent / "results"
CASES = ("churn", "spam", "cifar")
TASKS = {"churn": ("churn", "churn_ttq"), "spam": ("spam",), "cifar": ("cifar",)}
RATIO_TARGET = 1.3  # Keras within 1.3x of the hand-written JAX loop
CHURN_RUN_TARGET_S = 30.0  # `python -m keras_cases.churn`, full default run


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


# --- tables ---------------------------------------------------------------------------
def fmt_s(s, digits=2):
    return "-" if s is None else f"{s:.{digits}f}"


def add_ratios(rows, more_raw=()):
    """x raw JAX and the Keras per-step overhead (µs) against the raw JAX loop at the same batch."""
    raw = {r["batch_size"]: r for r in [*more_raw, *rows] if r["runner"] == "raw jax"}
    for r in rows:
        ref = raw.get(r["batch_size"])
        r["vs_raw_jax"] = r["epoch_s"] / ref["epoch_s"] if ref else None
        r["overhead_us_per_step"] = (
            1e6 * (r["epoch_s"] - ref["epoch_s"]) / r["steps"] if ref and r["runner"].startswith("keras") else None
        )
    return rows


def churn_table(rows, by_batch=False) -> str:
    lines = [
        "| runner | config | batch | compile s | epoch s (min-max) | samples/s | x raw JAX | µs/step over raw JAX |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["batch_size"] if by_batch else 0, r["epoch_s"])):
        ratio = f"{r['vs_raw_jax']:.2f}" if r["vs_raw_jax"] else "-"
        over = f"{r['overhead_us_per_step']:.0f}" if r.get("overhead_us_per_step") is not None else "-"
        lines.append(
            f"| {r['runner']} | {r['config']} | {r['batch_size']} | {r['compile_s']:.2f} | {r['epoch_s']:.3f} "
            f"({r['epoch_s_min']:.3f}-{r['epoch_s_max']:.3f}) | {r['samples_per_s']:,.0f} | {ratio} | {over} |"
        )
    return "\n".join(lines)


def ttq_rows(results) -> list[dict]:
    out = []
    for b, res in results.items():
        t = res["tasks"]
        for case, r in (
            ("churn", t.get("churn_ttq")),
            ("spam", (t.get("spam") or {}).get("time_to_quality")),
            ("cifar", t.get("cifar")),
        ):
            if r:
                out.append(dict(r, backend=b, case=case))
    return out


def ttq_table(rows) -> str:
    lines = [
        "| case | model | target | backend | seconds | epochs | threads | load avg | result |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        load = f"{r['load_before']:.1f}-{r['load_after']:.1f}"
        if r["reached"]:
            verdict = f"reached at epoch {r['epochs']}"
        else:
            last = r["trace"][-1] if r["trace"] else None
            best = max((v for _, _, v in r["trace"] if v is not None), default=None)
            why = (
                f"not reached within {r['cap_s']:.0f} s" if r["capped"] else f"not reached in {r['epochs_run']} epochs"
            )
            verdict = why + (f" (best {best:.3f}; {last[1]:.0f} s run)" if best is not None else "")
        lines.append(
            f"| {r['case']} | {r['model']} | {r['monitor']} ≥ {r['target']} | {r['backend']} | "
            f"{fmt_s(r['seconds'], 1)} | {r['epochs'] or '-'} | {r['threads'] or 'default'} | {load} | {verdict} |"
        )
    return "\n".join(lines)


def spe_table(results) -> tuple[str, list[dict]]:
    rows = [dict(r, backend=b) for b, res in results.items() for r in (res["tasks"].get("spam") or {}).get("spe", [])]
    if not rows:
        return "", rows
    lines = [
        "| model | backend | spe=1 epoch s | spe=32 epoch s | spe=32 speed-up | spe=1 first epoch s | spe=32 first epoch s |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in dict.fromkeys(r["model"] for r in rows):
        for b in dict.fromkeys(r["backend"] for r in rows):
            by = {r["spe"]: r for r in rows if r["model"] == model and r["backend"] == b}
            if 1 not in by:
                continue
            one, many = by[1], by.get(32)
            speedup = f"{one['epoch_s'] / many['epoch_s']:.2f}x" if many else "n/a (torch: spe must be 1)"
            lines.append(
                f"| {model} | {b} | {one['epoch_s']:.3f} | {fmt_s(many and many['epoch_s'], 3)} | {speedup} | "
                f"{one['first_epoch_s']:.2f} | {fmt_s(many and many['first_epoch_s'])} |"
            )
    return "\n".join(lines), rows


def targets(rows, ab, results) -> tuple[str, dict]:
    """The two stated targets, each with the measured numbers and a verdict. The ratio to raw
    JAX comes from the interleaved measurement (`ab`: raw loop and Keras configurations in
    alternation, so both see the same load)."""
    out, text = {}, []
    keras_rows = [r for r in rows if r["runner"].startswith("keras/")]
    fastest_b = min(keras_rows, key=lambda r: r["epoch_s"])["runner"].split("/", 1)[1] if keras_rows else None
    if ab:
        per_batch = []
        for bs in sorted({r["batch_size"] for r in ab}):
            raw = next(r for r in ab if r["runner"] == "raw jax" and r["batch_size"] == bs)
            mine = [r for r in ab if r["runner"] == "keras/jax" and r["batch_size"] == bs]
            default = next(r for r in mine if r["config"] == "spe=1")
            best = min(mine, key=lambda r: r["epoch_s"])
            per_batch.append(
                {
                    "batch_size": bs,
                    "steps": raw["steps"],
                    "raw_epoch_ms": 1e3 * raw["epoch_s"],
                    "raw_us_per_step": 1e6 * raw["epoch_s"] / raw["steps"],
                    "default_ratio": default["vs_raw_jax"],
                    "default_us": default["overhead_us_per_step"],
                    "best_config": best["config"],
                    "best_ratio": best["vs_raw_jax"],
                    "best_us": best["overhead_us_per_step"],
                    "best_extra_ms": 1e3 * (best["epoch_s"] - raw["epoch_s"]),
                    "load": raw["load"],
                }
            )
        out["ratio"] = {"target": RATIO_TARGET, "fastest_backend": fastest_b, "per_batch": per_batch}
        reached_default = any(p["default_ratio"] <= RATIO_TARGET for p in per_batch)
        reached_best = [p for p in per_batch if p["best_ratio"] <= RATIO_TARGET]
        verdict = (
            "**reached** with Keras' defaults"
            if reached_default
            else "**reached** only with steps_per_execution > 1, at batch "
            + ", ".join(str(p["batch_size"]) for p in reached_best)
            if reached_best
            else "**not reached**"
        )
        nums = "; ".join(
            f"batch {p['batch_size']} ({p['steps']} steps, raw {p['raw_epoch_ms']:.1f} ms an epoch): "
            f"Keras' default (`fit` on arrays, steps_per_execution=1) {p['default_ratio']:.2f}x, the best "
            f"setting ({p['best_config']}) {p['best_ratio']:.2f}x"
            for p in per_batch
        )
        over = "; ".join(
            f"{p['default_us']:.0f} -> {p['best_us']:.0f} µs at batch {p['batch_size']}" for p in per_batch
        )
        conclusion = (
            ""
            if len(reached_best) == len(per_batch)
            else " On a model this small (a few thousand multiply-adds per row, a raw step of "
            f"{per_batch[0]['raw_us_per_step']:.0f} µs at batch {per_batch[0]['batch_size']}) these fixed "
            "costs are the size of the training itself, and the Python part of them slows down most when the "
            "machine is busy; a larger model, where compute dominates, would be within the bound."
        )
        text.append(
            f"- **Keras within {RATIO_TARGET}x of the raw JAX loop** (churn MLP on JAX, the fastest backend for "
            f"it{'' if fastest_b in (None, 'jax') else ' -- here ' + fastest_b}; raw loop and Keras measured in "
            f"alternation, {ab[0]['rounds']} rounds, load average {per_batch[0]['load']:.1f}): {verdict}. "
            f"{nums}. Why: Keras' extra time per step over the raw loop, default -> best setting: {over}. "
            "steps_per_execution removes most of it: the Python work around each step (callbacks' "
            "on_train_batch_begin/end, the logs dict, progress bookkeeping) then runs once per execution. What "
            "stays: per epoch, Keras makes a new data iterator and shuffles, resets metrics, writes the training state "
            "back into the Keras variables and turns the logs into Python floats; per step, it still calls one jitted "
            "train step per batch from a Python loop on JAX (keras/src/backend/jax/trainer.py, `_make_function`, "
            "even with steps_per_execution > 1), passing the whole state (weights, Adam slots, loss tracker) in and "
            "out, on a batch its data adapter sliced in Python. The raw loop shuffles and slices in NumPy too, but "
            "its jitted step carries only weights and Adam state and nothing happens between epochs." + conclusion
        )
    runs = {b: r["churn_run"] for b, r in results.items() if r.get("churn_run")}
    if runs:
        b = min(runs, key=lambda k: runs[k]["wall_s"])
        r = runs[b]
        out["churn_run"] = {
            "backend": b,
            "target_s": CHURN_RUN_TARGET_S,
            **r,
            "all": {k: {"wall_s": v["wall_s"], "metrics_seconds": v["metrics_seconds"]} for k, v in runs.items()},
        }
        ok = r["wall_s"] < CHURN_RUN_TARGET_S
        each = ", ".join(
            f"{k} {v['wall_s']:.1f} s ({v['metrics_seconds']:.1f} s in metrics.json)" for k, v in runs.items()
        )
        text.append(
            f"- **`{r['command']}` under {CHURN_RUN_TARGET_S:.0f} s** on its fastest backend: "
            f"{'**reached**' if ok else '**not reached**'}: {b}, {r['wall_s']:.1f} s wall clock for the whole command "
            f"(a fresh process: imports, data, logistic regression, baseline and improved MLP, plots, report; "
            f"metrics.json `seconds` {r['metrics_seconds']:.1f} s, from data loading to the report; ROC-AUC "
            f"{fmt_s(r['roc_auc'], 3)}; load average {r['load_before']:.1f} before, {r['load_after']:.1f} after). "
            f"Every backend: {each}."
        )
    return "\n".join(text), out


def chart(rows, ttq, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in (rows, ttq) if p]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(7 * len(panels), 0.3 * max(len(rows), len(ttq), 4) + 1.6), squeeze=False
    )
    axes = list(axes[0])
    if rows:
        ax = axes.pop(0)
        rows = sorted(rows, key=lambda r: r["epoch_s"])
        names = [f"{r['runner']} ({r['config']}, b{r['batch_size']})" for r in rows]
        colors = ["C3" if r["runner"].startswith("raw") else "C0" for r in rows]
        ax.barh(names, [r["epoch_s"] for r in rows], color=colors)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("churn MLP: seconds per epoch (log; red: hand-written loops)")
    if ttq:
        ax = axes.pop(0)
        ttq = sorted(ttq, key=lambda r: (CASES.index(r["case"]) if r["case"] in CASES else 9, r["backend"]))
        names = [f"{r['case']}: {r['backend']}" for r in ttq]
        secs = [r["seconds"] if r["reached"] else (r["trace"][-1][1] if r["trace"] else r["cap_s"]) for r in ttq]
        colors = [{"jax": "C0", "tensorflow": "C1", "torch": "C2"}.get(r["backend"], "C7") for r in ttq]
        bars = ax.barh(names, secs, color=colors)
        for bar, r, sec in zip(bars, ttq, secs):
            if not r["reached"]:
                bar.set_hatch("//")
                bar.set_alpha(0.5)
            ax.text(
                sec,
                bar.get_y() + bar.get_height() / 2,
                f" {sec:.1f} s" + ("" if r["reached"] else " (not reached)"),
                va="center",
                fontsize=8,
            )
        ax.set_xscale("log")
        ax.set_xlim(right=max(secs) * 8)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
        ax.set_xlabel("time to quality, seconds (log; hatched: not reached, time run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(name, args, cases, results, rows, sweep, ab, ttq, load, wall, when) -> tuple[str, dict]:
    any_b = next(iter(results.values()))
    versions = ", ".join(f"{b} {r['framework_version']}" for b, r in results.items())
    cmd = (
        "python -m benchmarks"
        + (" --quick" if args.quick else "")
        + (f" --cases {','.join(cases)}" if tuple(cases) != CASES else "")
    )
    parts = [
        f"""# Benchmarks on {name}

Generated by `{cmd}` on {when} UTC in {wall / 60:.1f} minutes.
Keras {any_b["keras_version"]}, Python {any_b["python"]}; {versions}.
The machine's {os.cpu_count()} CPU cores were shared with other work while this ran: the 1-minute load
average, sampled every 5 s, was {load["min"]:.1f}-{load["max"]:.1f} (median {load["median"]:.1f}); each
time-to-quality row gives its own before/after. Times on a busy machine are slower and noisier
than on an idle one; ratios measured side by side in one process move less."""
    ]
    target_text, target_data = targets(rows, ab, results)
    if target_text:
        parts.append("## Targets\n\n" + target_text)
    if ttq:
        about = {
            "churn": "churn: the improved MLP (class weights, early stopping and learning-rate halving on "
            "validation ROC-AUC, the per-epoch threshold tuner), batch {batch_size}, up to {max_epochs} epochs",
            "spam": "spam: the {model} network (the default `--model all` run trains five and picks the Transformer "
            "on validation), class weights, per-epoch validation scoring, early stopping; validation "
            "PR-AUC is average precision; batch {batch_size}, up to {max_epochs} epochs, {n_train} training texts",
            "cifar": "cifar: the recipe ({model}: fixed whitening layer, flip+crop, label smoothing, SGD-Nesterov "
            "with warmup + cosine) with its one-cycle schedule planned over {max_epochs} epochs, batch "
            "{batch_size}, {n_train} training images; validation accuracy without flip TTA, as the case's "
            "own time-to-80%",
        }
        seen = {}
        for r in ttq:
            seen.setdefault(r["case"], r)
        cases_text = "\n".join(
            f"- {about[c].format(**r)}; threads: {r['threads'] or 'the framework default'}." for c, r in seen.items()
        )
        parts.append(f"""## Time to quality

Seconds from the start of `fit` (compiling and each epoch's validation included) of each case's
own training (its data, model, compile and `train()` with the case's defaults) until the
validation metric first reaches the target; training stops there, or at the cap. Same seed on
every backend, weights drawn from NumPy and batches shuffled in NumPy, so every backend follows
nearly the same learning curve and the seconds compare speed.

{cases_text}

{ttq_table(ttq)}

![time to quality and churn epoch times]({name}.png)""")
    if rows:
        parts.append(f"""## Churn MLP: Keras configurations against hand-written loops

The churn MLP shape ({any_b["tasks"]["churn"]["n_train"]} training rows, features -> 64 -> 32 -> 1, Adam 1e-3),
batch {args.batch_size}; median of {any_b["tasks"]["churn"]["epochs_timed"]} epochs after a first epoch that
compiles. *x raw JAX* and *µs/step over raw JAX* compare with the jax.jit + optax loop at the same batch
size. spe = steps_per_execution; `epoch` = all steps of an epoch in one execution. Keras on PyTorch
accepts only spe=1.

{churn_table(rows)}

Batch size: each backend's fastest configuration at batch {args.batch_size} again at the other
batch sizes (raw loops alongside):

{churn_table(sweep, by_batch=True)}""")
    if ab:
        parts.append(f"""The ratio to the raw loop, measured in alternation (the rows above run one after another, so
a change in the machine's load between them moves their ratios): the raw JAX loop and each Keras
configuration compiled once, then {ab[0]["rounds"]} rounds in which each trains {len(ab[0]["epoch_s_all"]) // ab[0]["rounds"]} more epochs; median
epoch over all rounds.

{churn_table(ab, by_batch=True)}""")
    spe_md, spe_rows = spe_table(results)
    if spe_md:
        parts.append(f"""## Spam text networks: steps_per_execution 1 vs 32

Each network of the spam case (its builder and compile, class-weighted NumPy batches of
{spe_rows[0]["batch_size"]}, 1 thread), median training-epoch seconds over {spe_rows[0]["epochs_timed"]} epoch(s) after
the first (the first epoch includes compiling; validation not included). Keras on PyTorch accepts
only spe=1.

{spe_md}""")
    rss = "\n".join(
        f"| {b} | " + " | ".join(f"{r['peak_rss_mb'].get(t, 0):.0f}" for t in task_names(cases)) + " |"
        for b, r in results.items()
    )
    parts.append(
        "## Peak memory (MB, each worker process)\n\n| backend | "
        + " | ".join(task_names(cases))
        + " |\n|---|"
        + "---|" * len(task_names(cases))
        + "\n"
        + rss
    )
    return "\n\n".join(parts) + "\n", {"targets": target_data, "spam_spe": spe_rows}


def task_names(cases):
    return [t for c in cases for t in TASKS[c]]


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
    """--out (default benchmarks/results), checked before anything is measured."""
    d = Path(out).expanduser() if out else RESULTS
    if d.exists() and not d.is_dir():
        raise UserError(f"--out {d} is a file, not a directory")
    return d


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default=",".join(installed_backends()), help="comma-separated")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    p.add_argument(
        "--quick", action="store_true", help="a smoke run: fewer configs and epochs, tiny subsets, low targets"
    )
    p.add_argument(
        "--batch-size", type=cli.positive_int, default=64, help="churn MLP batch size for the configuration table"
    )
    p.add_argument("--out", default=None, help=f"results directory (default {RESULTS})")
    p.add_argument(
        "--render",
        default=None,
        metavar="JSON",
        help="write the report (.md, .png) again from a results .json, without measuring",
    )
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
    out = results_dir(args.out)
    if not args.render:
        sampler = LoadSampler()
        sampler.start()
        t0 = time.time()
        results = run_all(backends, cases, args.quick, args.batch_size)
        wall = time.time() - t0
        sampler.done.set()
        load = sampler.summary()
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
    when = saved["generated_utc"] if args.render else f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}"
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
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
