"""CIFAR recipe throughput per backend, against the machine's measured matmul peak.

    python -m benchmarks.cifar [--backends jax,tensorflow,torch] [--quick]

Each backend runs in its own process (Keras fixes its backend at import): the default
`keras_cases.cifar` network, batch 256, real training steps on random uint8 images (the
speed of a step does not depend on the pixels). Reported: steady-state images/s (median of
repeats), one epoch of 45,000 images extrapolated, the achieved FLOP/s (forward FLOPs
counted from the layers, training = 3x forward) and the fraction of a float32 matmul peak
measured in the same process (the better of NumPy's and the backend's 2048x2048 float32
matmul). On JAX and PyTorch the same network and step written in the framework itself
(benchmarks/raw_cifar.py, from the same weights) is timed the same way beside it, so Keras'
overhead and the framework's own convolution speed are told apart. `--mixed-precision on`
times bfloat16/float16 compute (no raw loop then). Results go to
`<machine>-cifar[-mixed].md` and `.json` in --out (default `./benchmarks-results/`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from keras_cases import cli


def forward_flops(model) -> int:
    """Multiply-adds x 2 of the convolutions and dense layers (the rest is negligible)."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, h, w, cout = layer.output.shape
            kh, kw, cin, _ = layer.kernel.shape
            total += 2 * h * w * cout * kh * kw * cin
        elif kind == "Dense":
            cin, cout = layer.kernel.shape
            total += 2 * cin * cout
    return int(total)


def matmul_peak(n=2048, repeats=5) -> tuple[float, float]:
    """FLOP/s of a float32 n x n matmul: (NumPy's BLAS, the Keras backend's own kernel)."""
    import keras
    import numpy as np

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = keras.ops.convert_to_tensor(a)

    def best(f):
        f()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            f()
            times.append(time.perf_counter() - t)
        return 2 * n**3 / min(times)

    return best(lambda: a @ a), best(lambda: keras.ops.convert_to_numpy(keras.ops.matmul(b, b)))


def worker(steps: int, repeats: int, batch_size: int, mixed_precision: bool = False) -> dict:
    import keras
    import numpy as np

    from keras_cases import cifar, runtime

    r = cifar.Recipe(batch_size=batch_size, mixed_precision=mixed_precision)
    cifar.set_precision(mixed_precision)
    model = cifar.build_model(r)
    cifar.initialise(model, r, 0)
    cifar.compile_model(model, r, 10_000)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch_size, 32, 32, 3), dtype=np.uint8)
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, batch_size)]
    t = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - t
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        rates.append(steps * batch_size / (time.perf_counter() - t))
    ips = statistics.median(rates)
    raw = (
        raw_rate(model, r, x, y, steps, repeats)
        if runtime.backend() in ("jax", "torch") and not mixed_precision
        else None
    )
    flops = 3 * forward_flops(model)
    numpy_peak, backend_peak = matmul_peak()
    peak = max(numpy_peak, backend_peak)
    return {
        "backend": runtime.backend(),
        "devices": runtime.devices(),
        "mixed_precision": mixed_precision,
        "policy": keras.mixed_precision.global_policy().name,
        "params": model.count_params(),
        "batch_size": batch_size,
        "first_step_s": first,
        "images_per_s": ips,
        "images_per_s_all": rates,
        "raw_runner": None if raw is None else f"raw {runtime.backend()}",
        "raw_images_per_s": None if raw is None else raw[0],
        "raw_first_step_s": None if raw is None else raw[1],
        "epoch_45k_s": 45_000 / ips,
        "train_flops_per_image": flops,
        "achieved_gflops": ips * flops / 1e9,
        "matmul_peak_gflops": peak / 1e9,
        "numpy_matmul_gflops": numpy_peak / 1e9,
        "backend_matmul_gflops": backend_peak / 1e9,
        "fraction_of_peak": ips * flops / peak,
        "load_average": os.getloadavg()[0],
    }


def raw_rate(model, r, x, y, steps: int, repeats: int) -> tuple[float, float]:
    """(images/s, first step s) of the same network and step written in the framework itself
    (benchmarks/raw_cifar.py: jax.jit + lax.conv + optax, or torch.nn.functional), from the
    Keras model's weights, timed like Keras' steps."""
    import numpy as np

    from benchmarks import raw_cifar
    from keras_cases import runtime

    w = raw_cifar.weights_of(model)
    args = (r.lr, r.momentum, r.weight_decay, r.label_smoothing, not r.whiten)
    if runtime.backend() == "jax":
        step, p, s, stats = raw_cifar.jax_trainer(w, *args)
        box = [p, s, stats]

        def one():
            box[0], box[1], box[2], loss = step(*box, x, y)
            return loss

        def sync(loss):
            return np.asarray(loss)
    else:
        step, _ = raw_cifar.torch_trainer(w, *args)

        def one():
            return step(x, y)

        def sync(loss):
            return loss

    t = time.perf_counter()
    sync(one())
    first = time.perf_counter() - t
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            loss = one()
        sync(loss)
        rates.append(steps * len(x) / (time.perf_counter() - t))
    return statistics.median(rates), first


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cifar", description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default=None, help="comma-separated (default: every installed backend)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 steps x 2 repeats (written as *-quick.*)")
    p.add_argument("--out", default=None, help="results folder (default ./benchmarks-results)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help=argparse.SUPPRESS)
    p.add_argument("--batch-size", type=cli.positive_int, default=256)
    p.add_argument(
        "--mixed-precision",
        choices=("on", "off"),
        default="off",
        help="bfloat16/float16 compute (the recipe's choice on a GPU; on a CPU faster only with AMX-BF16 on TensorFlow)",
    )
    return p


def main(argv=None):
    args = make_parser().parse_args(argv)
    steps, repeats = (2, 2) if args.quick else (10, 5)
    if args.worker:
        Path(args.json).write_text(json.dumps(worker(steps, repeats, args.batch_size, args.mixed_precision == "on")))
        return 0
    from benchmarks.__main__ import parse_backends, results_dir
    from keras_cases.runtime import installed_backends

    backends = parse_backends(args.backends) if args.backends else installed_backends()
    out = results_dir(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for b in backends:
        results[b] = run_backend(b, out, args)
        if results[b] is None:
            return 1
    write_results(out, results, args.quick, steps, repeats, args.mixed_precision == "on")
    return 0


def run_backend(b, out, args) -> dict | None:
    """One backend's worker process; its results, printed as one line (None if it failed)."""
    tmp = out / f".cifar-{b}.json"
    env = dict(os.environ, KERAS_BACKEND=b, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.cifar", "--worker", "--json", str(tmp), "--batch-size", str(args.batch_size)]
        + ["--mixed-precision", args.mixed_precision]
        + (["--quick"] if args.quick else []),
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        print(f"{b}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    r = json.loads(tmp.read_text())
    tmp.unlink()
    print(
        f"{b:10s} {r['images_per_s']:7.0f} img/s  epoch {r['epoch_45k_s']:6.0f} s  "
        f"{r['achieved_gflops']:6.1f} GFLOP/s = {100 * r['fraction_of_peak']:4.1f}% of the "
        f"{r['matmul_peak_gflops']:.0f} GFLOP/s matmul peak (load {r['load_average']:.1f})",
        flush=True,
    )
    return r


def raw_cell(r) -> str:
    """'raw img/s | Keras / raw' (a dash where no raw loop ran: TensorFlow, mixed precision)."""
    if not r.get("raw_images_per_s"):
        return "- | -"
    return f"{r['raw_images_per_s']:.0f} ({r['raw_runner']}) | {r['images_per_s'] / r['raw_images_per_s']:.2f}"


def write_results(out, results, quick, steps, repeats, mixed=False) -> None:
    """<machine>-cifar[-mixed][-quick].json and .md in `out`."""
    from benchmarks.__main__ import machine

    name = f"{machine()}-cifar" + ("-mixed" if mixed else "") + ("-quick" if quick else "")
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "| backend | images/s | epoch (45k) s | first step s | GFLOP/s | matmul peak GFLOP/s | of peak "
        "| raw loop images/s | Keras / raw | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b, r in results.items():
        lines.append(
            f"| {b} | {r['images_per_s']:.0f} | {r['epoch_45k_s']:.0f} | {r['first_step_s']:.1f} | "
            f"{r['achieved_gflops']:.1f} | {r['matmul_peak_gflops']:.0f} | {100 * r['fraction_of_peak']:.1f}% | "
            f"{raw_cell(r)} | {r['load_average']:.1f} |"
        )
    any_r = next(iter(results.values()))
    (out / f"{name}.md").write_text(
        f"# CIFAR recipe training throughput ({name})\n\nThe default `keras_cases.cifar` network "
        f"({any_r['params']:,} parameters, {any_r['train_flops_per_image'] / 1e6:.0f} MFLOP per training image), "
        f"batch {any_r['batch_size']}, {'mixed' if mixed else 'float32'} precision, median of {repeats} x {steps} steps. The load average is the machine's "
        "when the backend ran: on a shared machine the numbers fall with it.\n\n" + "\n".join(lines) + "\n"
    )
    print(f"wrote {out / (name + '.md')}")


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
