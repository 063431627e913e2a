"""Load test of `python -m keras_cases serve`: a few hundred requests from a second process.

    python -m benchmarks.serve_load --run runs/churn/<stamp> [--requests 300] [--concurrency 4]

Starts the server on 127.0.0.1 (a free port), sends bounded numbers of POST /predict
requests (one row each, and batches of 32 rows) from this process with a thread pool,
and writes latency percentiles to <machine>-serve.md and .json in --out (default ./benchmarks-results/).
Loopback only; every loop is bounded in count and time.
"""

import argparse
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from benchmarks.__main__ import machine, results_dir
from keras_cases import cli


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run, backend):
    import httpx

    port = free_port()
    env = {**__import__("os").environ, "KERAS_BACKEND": backend}
    proc = subprocess.Popen(
        [sys.executable, "-m", "keras_cases", "serve", "--run", str(run), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("error: the server did not start within 90 s")


def hammer(url, body, n, concurrency):
    import httpx

    def one(_):
        with httpx.Client(timeout=30) as c:
            t = time.perf_counter()
            r = c.post(url + "/predict", json=body)
            return time.perf_counter() - t, r.status_code

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        out = list(pool.map(one, range(n)))
    wall = time.perf_counter() - t0
    lat = np.array([o[0] for o in out]) * 1000
    return {
        "requests": n,
        "concurrency": concurrency,
        "ok": sum(o[1] == 200 for o in out),
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
        "requests_per_s": n / wall,
    }


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.serve_load", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True)
    p.add_argument("--backend", default="jax")
    p.add_argument("--requests", type=cli.positive_int, default=300)
    p.add_argument("--concurrency", type=cli.positive_int, default=4)
    p.add_argument("--out", default=None, help="results folder (default ./benchmarks-results)")
    args = p.parse_args(argv)
    import httpx

    proc, url = start_server(args.run, args.backend)
    try:
        fields = httpx.get(url + "/model").json()["fields"]
        row = {f["name"]: f["example"] for f in fields}
        httpx.post(url + "/predict", json={"instances": [row]})  # warm-up (first call compiles)
        results = {
            "1 row": hammer(url, {"instances": [row]}, args.requests, args.concurrency),
            "32 rows": hammer(url, {"instances": [row] * 32}, max(args.requests // 3, 1), args.concurrency),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    out = results_dir(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{machine()}-serve"
    lines = ["| request | n | ok | p50 ms | p90 ms | p99 ms | max ms | req/s |", "|---|---|---|---|---|---|---|---|"]
    for k, r in results.items():
        lines.append(
            f"| {k} | {r['requests']} | {r['ok']} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['requests_per_s']:.0f} |"
        )
    text = (
        f"# Serving latency on {machine()}\n\n`python -m keras_cases serve` on the {args.backend} backend, "
        f"{args.concurrency} concurrent clients on loopback, churn model.\n\n" + "\n".join(lines) + "\n"
    )
    (out / f"{name}.md").write_text(text)
    (out / f"{name}.json").write_text(json.dumps({"backend": args.backend, "results": results}, indent=2))
    print(text)
    return 0 if all(r["ok"] == r["requests"] for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
