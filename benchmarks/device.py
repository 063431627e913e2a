"""`python -m benchmarks.device`: what to run the day a GPU machine is at hand.

    python -m benchmarks.device                 # every installed backend, ~10 minutes on a GPU
    python -m benchmarks.device --quick         # the CPU smoke test of this script

One process per step and backend (Keras fixes its backend at import), each with its share of
`--minutes`; a step that overruns it is stopped and recorded as over the limit, and the
script goes on to the next:

- time to quality of churn, spam and cifar: each case's own training until its validation
  metric first reaches a stated level (the harness's tasks, `benchmarks.worker`);
- CIFAR recipe training throughput with mixed precision off and on (`benchmarks.cifar`).

It appends a dated section (devices, versions, both tables) to `<machine>.md` in --out
(default `./benchmarks-results/`) and writes the raw numbers to `<machine>-device-<UTC>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from keras_cases import cli
from keras_cases.runs import write_text

TTQ_TASKS = ("churn_ttq", "spam", "cifar")


def run_step(cmd: list, backend: str, limit_s: float) -> tuple[int | None, float, str]:
    """(exit code or None when it ran past `limit_s`, seconds, the end of its stderr)."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    t = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, *cmd], env=env, capture_output=True, text=True, timeout=limit_s)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - t, ""
    return p.returncode, time.perf_counter() - t, p.stderr[-1500:]


def status(code, seconds, limit) -> str:
    if code is None:
        return f"over the {limit:.0f} s limit"
    return "ok" if code == 0 else f"failed (exit {code})"


def time_to_quality(b: str, quick: bool, limit: float, tmp: Path) -> dict:
    path = tmp / f"ttq-{b}.json"
    cmd = ["-m", "benchmarks.worker", "--out", str(path), "--tasks", ",".join(TTQ_TASKS)] + (
        ["--quick"] if quick else []
    )
    code, s, err = run_step(cmd, b, limit)
    res = json.loads(path.read_text()) if code == 0 else {}
    return {"status": status(code, s, limit), "seconds": s, "stderr": err if code else "", "result": res}


def throughput(b: str, mixed: bool, quick: bool, limit: float, tmp: Path) -> dict:
    path = tmp / f"cifar-{b}-{mixed}.json"
    cmd = ["-m", "benchmarks.cifar", "--worker", "--json", str(path), "--mixed-precision", "on" if mixed else "off"]
    code, s, err = run_step(cmd + (["--quick"] if quick else []), b, limit)
    res = json.loads(path.read_text()) if code == 0 else {}
    return {"status": status(code, s, limit), "seconds": s, "stderr": err if code else "", "result": res}


def ttq_table(runs: dict) -> list[str]:
    """The harness's own time-to-quality table, and a line per backend that did not finish."""
    from benchmarks import report

    done = {b: r["result"] for b, r in runs.items() if r["result"]}
    lines = report.ttq_table(report.ttq_rows(done)).splitlines() if done else []
    return lines + [f"- {b}: {r['status']} after {r['seconds']:.0f} s" for b, r in runs.items() if not r["result"]]


def throughput_table(runs: dict) -> list[str]:
    lines = ["| backend | precision | images/s | GFLOP/s | devices | status |", "|---|---|---|---|---|---|"]
    for (b, mixed), r in runs.items():
        x = r["result"]
        ips = f"{x['images_per_s']:.0f}" if x else "-"
        gf = f"{x['achieved_gflops']:.0f}" if x else "-"
        devs = ", ".join(x.get("devices", [])) if x else "-"
        lines.append(f"| {b} | {'mixed' if mixed else 'float32'} | {ips} | {gf} | {devs} | {r['status']} |")
    return lines


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.device", description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default=None, help="comma-separated (default: every installed backend)")
    p.add_argument("--quick", action="store_true", help="the CPU smoke test: tiny subsets, 2 timed steps")
    p.add_argument("--minutes", type=cli.positive_float, default=10.0, help="the whole script's time limit")
    p.add_argument("--out", default=None, help="results folder (default ./benchmarks-results)")
    return p


def main(argv=None):
    args = make_parser().parse_args(argv)
    from benchmarks.__main__ import machine, parse_backends, results_dir
    from keras_cases.runtime import installed_backends

    backends = parse_backends(args.backends) if args.backends else installed_backends()
    out = results_dir(args.out)
    out.mkdir(parents=True, exist_ok=True)
    share = args.minutes * 60 / (3 * len(backends))  # three steps per backend
    when = datetime.now(timezone.utc)
    ttq, tput = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for b in backends:
            ttq[b] = time_to_quality(b, args.quick, share, Path(tmp))
            print(f"{b} time to quality: {ttq[b]['status']} ({ttq[b]['seconds']:.0f} s)", flush=True)
            for mixed in (False, True):
                tput[(b, mixed)] = r = throughput(b, mixed, args.quick, share, Path(tmp))
                print(f"{b} cifar {'mixed' if mixed else 'float32'}: {r['status']} ({r['seconds']:.0f} s)", flush=True)
    section = "\n".join(
        [
            f"## Device run, {when:%Y-%m-%d %H:%M} UTC" + (" (--quick smoke test)" if args.quick else ""),
            "",
            f"`python -m benchmarks.device{' --quick' if args.quick else ''}`, limit {args.minutes:g} min "
            f"({share:.0f} s per step).",
            "",
            "Time to quality (each case's own training until its validation metric reaches the level):",
            "",
            *ttq_table(ttq),
            "",
            "CIFAR recipe training throughput, batch 256:",
            "",
            *throughput_table(tput),
            "",
        ]
    )
    md = out / f"{machine()}.md"
    write_text(md, (md.read_text().rstrip("\n") + "\n\n" if md.exists() else "") + section)
    raw = {"ttq": ttq, "throughput": {f"{b}-{'mixed' if m else 'float32'}": r for (b, m), r in tput.items()}}
    write_text(out / f"{machine()}-device-{when:%Y%m%dT%H%M}.json", json.dumps(raw, indent=2) + "\n")
    print(section)
    print(f"appended to {md}")
    bad = [r for r in [*ttq.values(), *tput.values()] if r["status"].startswith("failed")]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
