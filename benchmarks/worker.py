"""One backend's measurements, run in its own process (Keras fixes its backend at import):

    KERAS_BACKEND=jax python -m benchmarks.worker --out jax.json --tasks churn,churn_ttq,spam,cifar [--quick]

Tasks:

- `churn`: throughput of the churn MLP shape (features -> 64 -> 32 -> 1, ReLU, logits,
  binary cross-entropy, Adam 1e-3) on the real churn training split under each Keras
  configuration (steps_per_execution 1/8/32/epoch, PyDataset, XLA off, threads), the
  hand-written loops of benchmarks/raw.py doing exactly the same work, and the fastest
  Keras configuration again at the batch sizes of the sweep;
- `churn_ttq`: the churn case's own training (improved MLP, its defaults) until validation
  ROC-AUC first reaches the target;
- `spam`: the spam case's time to quality and its networks at steps_per_execution 1 and 32
  (benchmarks/quality.py);
- `cifar`: the CIFAR case's recipe until validation accuracy first reaches the target.
"""

import argparse
import json
import math
import os
import resource
import statistics
import time

from keras_cases import churn, cli, runtime
from keras_cases.data import batches, split_stratified
from keras_cases.data.tabular import TabularPreprocessor

TASKS = ("churn", "churn_ttq", "spam", "cifar")
SWEEP_BATCHES = (64, 256)  # 256 is the churn case's default batch
CHURN_TARGET = {"monitor": "val_auc", "target": 0.82, "cap_s": 120}


def churn_arrays():
    d = churn.load_data()
    tr, va, _ = split_stratified(d.y, churn.SPLIT_SEED)
    pre = TabularPreprocessor.infer_and_fit(d.features.iloc[tr])
    return (
        pre.transform(d.features.iloc[tr]),
        d.y[tr].astype("float32"),
        pre.transform(d.features.iloc[va]),
        d.y[va].astype("float32"),
    )


def keras_mlp(n_features, sizes=(64, 32)):
    import keras

    inputs = keras.Input((n_features,))
    x = inputs
    for width in sizes:
        x = keras.layers.Dense(width, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def steps(n, batch_size):
    return math.ceil(n / batch_size)


def keras_run(x, y, batch_size, epochs, spe=1, jit_compile="auto", pipeline="arrays", seed=0):
    """(first-epoch seconds incl. compile, steady epoch seconds) for one configuration.
    spe="epoch": every step of an epoch in one execution."""
    import keras

    from benchmarks.quality import epoch_times

    model = keras_mlp(x.shape[1])
    runtime.init_weights(model, seed)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        steps_per_execution=steps(len(x), batch_size) if spe == "epoch" else spe,
        jit_compile=jit_compile,
    )
    data = batches(x, y, batch_size, seed) if pipeline == "pydataset" else x
    kw = {} if pipeline == "pydataset" else {"y": y, "batch_size": batch_size, "shuffle": True}
    return epoch_times(model, data, epochs, **kw)


def configs(backend, quick):
    if quick:  # a smoke run: one plain and one variant configuration per backend
        return [
            dict(spe=1, threads=1),
            dict(spe=1, threads=1, pipeline="pydataset") if backend == "torch" else dict(spe="epoch"),
        ]
    if backend == "torch":  # Keras on PyTorch runs one step per call (steps_per_execution must be 1)
        return [
            dict(spe=1),
            dict(spe=1, pipeline="pydataset"),
            dict(spe=1, threads=1),
            dict(spe=1, threads=1, pipeline="pydataset"),
        ]
    out = [dict(spe=s) for s in (1, 8, 32, "epoch")] + [dict(spe=s, pipeline="pydataset") for s in (1, 32, "epoch")]
    if backend == "tensorflow":
        out += [dict(spe=s, jit_compile=False) for s in (1, 32, "epoch")]
    return out


def label(c, n=None, batch_size=None):
    spe = c["spe"]
    parts = [f"spe=epoch ({steps(n, batch_size)})" if spe == "epoch" and n else f"spe={spe}"]
    if c.get("pipeline") == "pydataset":
        parts.append("PyDataset")
    if c.get("jit_compile") is False:
        parts.append("no XLA")
    if c.get("threads"):
        parts.append(f"{c['threads']} thread")
    return ", ".join(parts)


def row(runner, config, batch_size, n, first, times, **extra):
    med = statistics.median(times)
    return {
        "runner": runner,
        "config": config,
        "batch_size": batch_size,
        "steps": steps(n, batch_size),
        "compile_s": max(first - med, 0.0),
        "epoch_s": med,
        "epoch_s_min": min(times),
        "epoch_s_max": max(times),
        "epoch_s_all": [round(t, 6) for t in times],
        "samples_per_s": n / med,
        "load": round(os.getloadavg()[0], 2),
        **extra,
    }


def raw_rows(b, x, y, batch_size, epochs, quick):
    from benchmarks import raw

    sizes = [x.shape[1], 64, 32, 1]
    if b == "jax":
        loops = [("raw jax", "jit + optax", lambda: raw.jax_loop(x, y, sizes, batch_size, epochs))]
    elif b == "torch":
        loops = [("raw torch", "1 thread", lambda: raw.torch_loop(x, y, sizes, batch_size, epochs, threads=1))]
        if not quick:  # the framework's default threads: spins on a busy 2-core machine
            loops.insert(
                0,
                (
                    "raw torch",
                    "default",
                    lambda: raw.torch_loop(x, y, sizes, batch_size, epochs, threads=os.cpu_count()),
                ),
            )
    else:
        return []
    out = []
    for name, config, fn in loops:
        first, times, _ = fn()
        out.append(row(name, config, batch_size, len(x), first, times))
        print(json.dumps(out[-1]), flush=True)
    return out


AB_CONFIGS = (dict(spe=1), dict(spe=32), dict(spe="epoch"), dict(spe="epoch", pipeline="pydataset"))


def ratio_interleaved(x, y, quick, rounds=8, epochs=10, seed=0):
    """Keras on JAX against the raw JAX loop, measured in alternation: every round trains
    the raw loop and each Keras configuration (each compiled once, before the rounds)
    `epochs` more epochs, so all of them see the same load on a shared machine. Returns one
    row per (runner, config, batch) with the median epoch over all rounds."""
    import keras

    from benchmarks import raw
    from benchmarks.quality import epoch_times

    def keras_epochs(model, data, kw):
        def run(n):
            first, rest = epoch_times(model, data, n - 1, **kw)
            return [first, *rest]

        return run

    rounds, epochs = (1, 2) if quick else (rounds, epochs)
    out = []
    for bs in SWEEP_BATCHES:
        first, run_raw = raw.jax_trainer(x, y, [x.shape[1], 64, 32, 1], bs, seed)
        arms = [("raw jax", "jit + optax", first, lambda n, r=run_raw: r(n)[0], [])]
        for c in AB_CONFIGS[::2] if quick else AB_CONFIGS:  # quick: spe=1 and spe=epoch
            model = keras_mlp(x.shape[1])
            runtime.init_weights(model, seed)
            model.compile(
                optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.BinaryCrossentropy(from_logits=True),
                steps_per_execution=steps(len(x), bs) if c["spe"] == "epoch" else c["spe"],
            )
            data = batches(x, y, bs, seed) if c.get("pipeline") == "pydataset" else x
            kw = {} if c.get("pipeline") == "pydataset" else {"y": y, "batch_size": bs, "shuffle": True}
            run = keras_epochs(model, data, kw)
            compile_s = run(1)[0]
            arms.append(("keras/jax", label(c, len(x), bs), compile_s, run, []))
        for _ in range(rounds):
            for _, _, _, run, times in arms:
                times += run(epochs)
        for name, config, compile_s, _, times in arms:
            r = row(name, config, bs, len(x), 0.0, times, measured="interleaved", rounds=rounds)
            out.append(dict(r, compile_s=compile_s))  # raw: the first step; Keras: the first epoch
    return out


def churn_throughput(b, batch_size, quick):
    """Rows for each configuration at `batch_size`, the raw loops, then the fastest Keras
    configuration and the raw loops at every batch size of the sweep."""
    x, y, _, _ = churn_arrays()
    epochs = 2 if quick else 20  # epochs of 3-150 ms: many, for a median that holds on a shared machine
    rows, best = [], None
    for c in configs(b, quick):
        runtime.set_threads(c.get("threads") or os.cpu_count())
        first, times = keras_run(
            x, y, batch_size, epochs, c["spe"], c.get("jit_compile", "auto"), c.get("pipeline", "arrays")
        )
        rows.append(row(f"keras/{b}", label(c, len(x), batch_size), batch_size, len(x), first, times))
        print(json.dumps(rows[-1]), flush=True)
        if best is None or rows[-1]["epoch_s"] < best[1]:
            best = (c, rows[-1]["epoch_s"])
    rows += raw_rows(b, x, y, batch_size, epochs, quick)
    sweep = []
    for bs in (s for s in SWEEP_BATCHES if s != batch_size):
        c = best[0]
        runtime.set_threads(c.get("threads") or os.cpu_count())
        first, times = keras_run(x, y, bs, epochs, c["spe"], c.get("jit_compile", "auto"), c.get("pipeline", "arrays"))
        sweep.append(row(f"keras/{b}", label(c, len(x), bs), bs, len(x), first, times))
        print(json.dumps(sweep[-1]), flush=True)
        sweep += raw_rows(b, x, y, bs, epochs, quick=True)
    best_row = next(r for r in rows if r["runner"] == f"keras/{b}" and r["epoch_s"] == best[1])
    sweep = [dict(r, best_of=best_row["config"]) for r in [best_row] + sweep]
    ab = ratio_interleaved(x, y, quick) if b == "jax" else []
    return {"rows": rows, "sweep": sweep, "interleaved": ab, "n_train": len(x), "epochs_timed": epochs}


def churn_time_to_quality(quick, seed=0):
    """Seconds of the churn case's `train()` for its improved MLP (class weights, early
    stopping and learning-rate halving on validation ROC-AUC, the per-epoch threshold tuner;
    its defaults: batch 256, learning rate 3e-3, up to 60 epochs, 1 thread) until the
    validation ROC-AUC first reaches the target."""
    from benchmarks.quality import load_avg, target_watch

    args = churn.make_parser().parse_args([])
    x, y, xv, yv = churn_arrays()
    runtime.set_threads(args.threads)
    runtime.set_seed(seed)
    model = churn.compile_model(churn.build_model(x.shape[1]), learning_rate=3e-3)
    watch = target_watch(**CHURN_TARGET)
    load = load_avg()
    epochs = 3 if quick else args.epochs
    churn.train(
        model,
        x,
        y,
        xv,
        yv,
        epochs=epochs,
        batch_size=args.batch_size,
        seed=seed,
        verbose=0,
        objective=churn.parse_objective(args.objective),
        weighted=True,
        patience=10,
        extra_callbacks=[watch],
    )
    return watch.result(
        case="churn",
        model="improved MLP",
        max_epochs=epochs,
        batch_size=args.batch_size,
        threads=args.threads,
        n_train=len(x),
        load_before=load,
        load_after=load_avg(),
    )


def run_task(task, b, args):
    from benchmarks import quality

    if task == "churn":
        return churn_throughput(b, args.batch_size, args.quick)
    if task == "churn_ttq":
        return churn_time_to_quality(args.quick)
    if task == "spam":
        ttq = quality.spam_time_to_quality(args.quick)
        return {"time_to_quality": ttq, "spe": quality.spam_spe(args.quick)}
    if task == "cifar":
        return quality.cifar_time_to_quality(args.quick)
    raise SystemExit(f"unknown task {task!r}: choose from {', '.join(TASKS)}")


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--batch-size", type=cli.positive_int, default=64)
    args = p.parse_args(argv)
    b = runtime.backend()
    runtime.set_seed(0)
    result = {**runtime.backend_report(), "quick": args.quick, "tasks": {}, "peak_rss_mb": {}, "task_seconds": {}}
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        t = time.perf_counter()
        result["tasks"][task] = run_task(task, b, args)
        result["task_seconds"][task] = time.perf_counter() - t
        result["peak_rss_mb"][task] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
