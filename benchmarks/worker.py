"""One backend's measurements, run in its own process (Keras fixes its backend at import):

    KERAS_BACKEND=jax python -m benchmarks.worker --out jax.json [--quick]

The model is the churn MLP shape (features -> 64 -> 32 -> 1, ReLU, logits, binary
cross-entropy, Adam 1e-3) on the real churn training split, so Keras and the raw loops in
benchmarks/raw.py do exactly the same work.
"""

import argparse
import json
import os
import resource
import statistics
import time


from keras_cases import churn, runtime
from keras_cases.data import batches, split_stratified
from keras_cases.data.tabular import TabularPreprocessor


def churn_arrays():
    d = churn.load_data()
    tr, va, _ = split_stratified(d.y, churn.SPLIT_SEED)
    pre = TabularPreprocessor.infer_and_fit(d.features.iloc[tr])
    return (pre.transform(d.features.iloc[tr]), d.y[tr].astype("float32"),
            pre.transform(d.features.iloc[va]), d.y[va].astype("float32"))


def keras_mlp(n_features, sizes=(64, 32)):
    import keras

    inputs = keras.Input((n_features,))
    x = inputs
    for width in sizes:
        x = keras.layers.Dense(width, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x))


class EpochTimer:
    def __new__(cls):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.times = []

            def on_epoch_begin(self, epoch, logs=None):
                self.t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self.t)

        return _Timer()


def keras_run(x, y, batch_size, epochs, spe=1, jit_compile="auto", pipeline="arrays", seed=0):
    """(first-epoch seconds incl. compile, steady epoch seconds) for one configuration."""
    import keras

    model = keras_mlp(x.shape[1])
    runtime.init_weights(model, seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  steps_per_execution=spe, jit_compile=jit_compile)
    timer = EpochTimer()
    data = batches(x, y, batch_size, seed) if pipeline == "pydataset" else x
    kw = {} if pipeline == "pydataset" else {"y": y, "batch_size": batch_size, "shuffle": True}
    model.fit(data, epochs=1 + epochs, verbose=0, callbacks=[timer], **kw)
    return timer.times[0], timer.times[1:]


def configs(backend, quick):
    if quick:  # a smoke run: one plain and one variant configuration per backend
        return [dict(spe=1), dict(spe=1, threads=1, pipeline="pydataset") if backend == "torch"
                else dict(spe=32)]
    spes = (1, 8, 32)
    if backend == "torch":
        spes = (1,)  # Keras on PyTorch runs one step per call
    out = [dict(spe=s) for s in spes] + [dict(spe=1, pipeline="pydataset")]
    if backend == "tensorflow":
        out += [dict(spe=s, jit_compile=False) for s in (1, 32)]
    if backend == "torch":
        out += [dict(spe=1, threads=1), dict(spe=1, threads=1, pipeline="pydataset")]
    return out


def label(c):
    parts = [f"spe={c['spe']}"]
    if c.get("pipeline") == "pydataset":
        parts.append("PyDataset")
    if c.get("jit_compile") is False:
        parts.append("no XLA")
    if c.get("threads"):
        parts.append(f"{c['threads']} thread")
    return ", ".join(parts)


def row(runner, config, batch_size, n, first, times):
    med = statistics.median(times)
    return {"runner": runner, "config": config, "batch_size": batch_size,
            "compile_s": max(first - med, 0.0), "epoch_s": med,
            "epoch_s_min": min(times), "epoch_s_max": max(times), "samples_per_s": n / med}


def time_to_quality(x, y, xv, yv, target, max_epochs, seed=0):
    """Seconds of the churn case's own training (improved MLP, its defaults) until the
    validation ROC-AUC first reaches `target`; None if it never does within max_epochs."""
    import keras

    class Watch(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t0, self.hit = time.perf_counter(), None

        def on_epoch_end(self, epoch, logs=None):
            if self.hit is None and logs.get("val_auc", 0) >= target:
                self.hit = (time.perf_counter() - self.t0, epoch + 1)

    runtime.set_seed(seed)
    model = churn.compile_model(churn.build_model(x.shape[1]), learning_rate=3e-3)
    watch = Watch()
    runtime.init_weights(model, seed)
    model.fit(batches(x, y, 256, seed, churn.class_weights(y)), validation_data=(xv, yv),
              epochs=max_epochs, verbose=0, callbacks=[watch])
    return {"target_val_auc": target, "seconds": watch.hit[0] if watch.hit else None,
            "epochs": watch.hit[1] if watch.hit else None}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args(argv)
    b = runtime.backend()
    runtime.set_seed(0)
    x, y, xv, yv = churn_arrays()
    epochs = 2 if args.quick else 5
    rows = []
    for c in configs(b, args.quick):
        runtime.set_threads(c.get("threads") or os.cpu_count())
        first, times = keras_run(x, y, args.batch_size, epochs, c["spe"], c.get("jit_compile", "auto"),
                                 c.get("pipeline", "arrays"))
        rows.append(row(f"keras/{b}", label(c), args.batch_size, len(x), first, times))
        print(json.dumps(rows[-1]), flush=True)
    sizes = [x.shape[1], 64, 32, 1]
    if b in ("jax", "torch"):
        from benchmarks import raw

        loops = [("raw jax", lambda: raw.jax_loop(x, y, sizes, args.batch_size, epochs))] if b == "jax" else [
            ("raw torch", lambda: raw.torch_loop(x, y, sizes, args.batch_size, epochs)),
            ("raw torch", lambda: raw.torch_loop(x, y, sizes, args.batch_size, epochs, threads=1))]
        for i, (name, fn) in enumerate(loops):
            runtime.set_threads(os.cpu_count())
            first, times, _ = fn()
            rows.append(row(name, "1 thread" if i == 1 else "jit + optax" if b == "jax" else "default",
                            args.batch_size, len(x), first, times))
            print(json.dumps(rows[-1]), flush=True)
    runtime.set_threads(1)
    ttq = time_to_quality(x, y, xv, yv, 0.82, 3 if args.quick else 30)
    result = {**runtime.backend_report(), "rows": rows, "time_to_quality": ttq,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "n_train": len(x), "epochs_timed": epochs, "quick": args.quick}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
