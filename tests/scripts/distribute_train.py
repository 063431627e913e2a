"""Run in a subprocess by tests/test_distribute.py (one backend per process): trains a small
model with the shared flags (--distribute, --num-processes, ...) and writes result.json into
its run directory (--out) through runs.Run, so with several processes only process 0 does;
every process prints `weights-sha256: ...` and `run-dir: ...` on stdout."""

import hashlib
import sys

import numpy as np

from keras_cases import cli, runtime
from keras_cases.runs import Run, lifecycle

args = cli.parser("dp", "test", epochs=3, batch_size=16).parse_args(sys.argv[1:])
import jax  # noqa: E402  (after the flags: --distribute is set before Keras builds anything)
import keras  # noqa: E402

from keras_cases.data import batches  # noqa: E402

seen = {}  # batch rows -> (fully replicated?, per-device shard shape), recorded while tracing


class Probe(keras.layers.Layer):
    def call(self, t):
        if isinstance(t, jax.core.Tracer) and isinstance(t.shape[0], int):
            rows = int(t.shape[0])
            jax.debug.inspect_array_sharding(
                t,
                callback=lambda s: seen.__setitem__(rows, (bool(s.is_fully_replicated), list(s.shard_shape(t.shape)))),
            )
        return t


runtime.set_seed(args.seed)
rng = np.random.default_rng(0)
x = rng.normal(size=(102, 6)).astype("float32")
y = (x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=102) > 0).astype("float32")
inputs = keras.Input((6,))
h = keras.layers.Dense(16, activation="relu")(Probe()(inputs))
h = keras.layers.Dropout(0.2)(keras.layers.BatchNormalization()(h))
model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))
runtime.init_weights(model, args.seed)
model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
hist = model.fit(
    batches(x, y, args.batch_size, args.seed),
    validation_data=(x[:30], y[:30]),
    batch_size=args.batch_size,
    epochs=args.epochs,
    verbose=0,
).history
pred = model.predict(x[:37], batch_size=args.batch_size, verbose=0)
shardings = [v.value.sharding for v in model.variables + model.optimizer.variables]
info = runtime.backend_report()
weights = [np.asarray(w, dtype="float32") for w in model.get_weights()]
with lifecycle():
    run = Run("dp", args.out)
    print(f"run-dir: {run.dir}")
    print(f"weights-sha256: {hashlib.sha256(b''.join(w.tobytes() for w in weights)).hexdigest()}")
    result = {
        "devices": len(jax.devices()),
        "processes": jax.process_count(),
        "process_id": jax.process_index(),
        "distribution": info["distribution"],
        "distribution_devices": info["distribution_devices"],
        "distribution_processes": info["distribution_processes"],
        "loss": hist["loss"],
        "val_loss": hist["val_loss"],
        "pred": pred.ravel().tolist(),
        "weights": [w.ravel().tolist() for w in weights],
        "n_variables": len(shardings),
        "replicated": sum(bool(s.is_fully_replicated) for s in shardings),
        "on_all_devices": sum(len(s.device_set) == len(jax.devices()) for s in shardings),
        "inputs": {str(k): v for k, v in seen.items()},
    }
    run.write_json("result.json", result)
