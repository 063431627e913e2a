"""Everything that depends on which backend Keras runs on.

This is the only module in keras-cases that imports jax, tensorflow or torch, and it
imports them lazily, only for the backend that is active. Case studies call:

- `select_backend()`      validate / choose KERAS_BACKEND before Keras is imported
- `backend_report()`      backend, versions and devices, for reports and metrics.json
- `set_seed(seed)`        Python, NumPy and backend RNGs (keras.utils.set_random_seed)
- `init_weights(model, seed)`  draw every weight from NumPy, so one seed gives the same
                          initial model on every backend (Keras initialisers use each
                          backend's own random stream)
- `value_and_grad(fn, variables)`  loss and gradients w.r.t. Keras variables, per backend
- `enable_float64()`      float64 everywhere (JAX needs x64 switched on)
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform

import numpy as np

from keras_cases import BACKENDS, UserError

_BACKEND_PACKAGE = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}


def installed_backends() -> list[str]:
    """The Keras backends whose framework can be imported here."""
    return [b for b in BACKENDS if importlib.util.find_spec(_BACKEND_PACKAGE[b]) is not None]


def _keras_json_backend() -> str | None:
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend")
    except (OSError, ValueError):
        return None


def select_backend() -> str:
    """Set KERAS_BACKEND to a valid, installed backend, or raise UserError.

    Must run before `import keras`; `import keras_cases` calls it.
    """
    name = os.environ.get("KERAS_BACKEND") or _keras_json_backend()
    if not name:
        found = installed_backends()
        if not found:
            raise UserError(
                "no Keras backend is installed: pip install 'keras-cases[jax]' "
                "(or [tensorflow], [torch], [all])"
            )
        name = found[0]
    name = name.strip().lower()
    if name not in BACKENDS:
        raise UserError(
            f"unknown Keras backend {name!r}: choose one of {', '.join(BACKENDS)} "
            "(KERAS_BACKEND=... or --backend ...)"
        )
    if importlib.util.find_spec(_BACKEND_PACKAGE[name]) is None:
        raise UserError(
            f"backend {name!r} is not installed: pip install 'keras-cases[{name}]'"
        )
    os.environ["KERAS_BACKEND"] = name
    return name


def backend() -> str:
    import keras

    return keras.config.backend()


def _framework():
    name = backend()
    if name == "jax":
        import jax

        return jax
    if name == "tensorflow":
        import tensorflow

        return tensorflow
    import torch

    return torch


def devices() -> list[str]:
    """Accelerators and CPUs the active backend can see, as short strings."""
    name = backend()
    fw = _framework()
    if name == "jax":
        return [f"{d.platform}:{d.id}" for d in fw.devices()]
    if name == "tensorflow":
        return [d.name.replace("/physical_device:", "").lower() for d in fw.config.list_physical_devices()]
    out = ["cpu:0"]
    if fw.cuda.is_available():
        out += [f"cuda:{i}" for i in range(fw.cuda.device_count())]
    return out


def backend_report() -> dict:
    """Backend, versions and devices: written into every run's metrics.json."""
    import keras

    fw = _framework()
    return {
        "backend": backend(),
        "keras_version": keras.__version__,
        "framework_version": fw.__version__,
        "devices": devices(),
        "python": platform.python_version(),
        "numpy_version": np.__version__,
    }


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the backend's RNG."""
    import keras

    # keras.utils.set_random_seed also seeds tf.random whenever TensorFlow is importable,
    # which imports TensorFlow (seconds) even on JAX or torch; nothing on those paths
    # draws from tf.random, so skip it there.
    with without_tensorflow():
        keras.utils.set_random_seed(int(seed))


def set_threads(n: int | None) -> None:
    """Limit the backend's intra-op CPU threads (None: leave the framework's default).

    Tiny models (the churn MLP) run faster on one thread: on PyTorch, per-op thread
    hand-offs cost more than the work, and on a busy 2-core machine they spin; measured on
    the churn MLP under load, 10-20 ms/step on 1 thread against 60-450 ms/step on the
    default. JAX/XLA sizes its pool at start-up (XLA_FLAGS), so this is a no-op there.
    """
    if not n:
        return
    name = backend()
    if name == "torch":
        import torch

        torch.set_num_threads(int(n))
    elif name == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(n))
            tf.config.threading.set_inter_op_parallelism_threads(int(n))
        except RuntimeError:  # TensorFlow already started: keep its pool
            pass


def enable_float64() -> None:
    """Make float64 the default float type (and switch on x64 on JAX)."""
    import keras

    if backend() == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    keras.config.set_floatx("float64")


def init_weights(model, seed: int) -> None:
    """Re-draw the model's weights from a NumPy generator.

    Glorot-uniform for kernels (fan_in/fan_out from the shape, receptive field included),
    zeros for biases and beta, ones for gamma and moving variance, zeros for moving means.
    The same seed gives bit-identical initial weights on every backend.
    """
    rng = np.random.default_rng(seed)
    values = []
    for v in model.weights:
        shape = tuple(v.shape)
        name = v.path.rsplit("/", 1)[-1]
        if name in ("gamma", "moving_variance"):
            w = np.ones(shape)
        elif name == "bias":  # zeros whatever the shape (a GRU's bias is (2, 3 units))
            w = np.zeros(shape)
        elif len(shape) >= 2:
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=shape)
        else:
            w = np.zeros(shape)
        values.append(w.astype(v.dtype))
    model.set_weights(values)


def value_and_grad(fn, variables):
    """Evaluate the scalar `fn()` and its gradient w.r.t. Keras `variables`.

    `fn` takes no arguments and computes a loss from the variables (e.g. by calling a
    model). Returns `(loss, grads)` as a Python float and a list of NumPy arrays, using
    the active backend's own autodiff: jax.value_and_grad (through Keras' StatelessScope),
    tf.GradientTape, or torch autograd.
    """
    import keras

    name = backend()
    variables = list(variables)
    if name == "jax":
        import jax

        def pure(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn()

        loss, grads = jax.value_and_grad(pure)([v.value for v in variables])
    elif name == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = fn()
        grads = tape.gradient(loss, [v.value for v in variables])
    else:
        import torch

        for v in variables:
            v.value.grad = None
        with torch.enable_grad():
            loss = fn()
            grads = torch.autograd.grad(loss, [v.value for v in variables])
    to_np = keras.ops.convert_to_numpy
    return float(to_np(loss)), [np.asarray(to_np(g)) for g in grads]


def saved_model_predict(path, x) -> np.ndarray:
    """Run an exported TensorFlow SavedModel (model.export(..., "tf_saved_model")) on x."""
    try:
        import tensorflow as tf
    except ImportError:
        raise UserError("checking a SavedModel needs TensorFlow: pip install 'keras-cases[tensorflow]'")
    loaded = tf.saved_model.load(str(path))
    return np.asarray(loaded.serve(tf.constant(x)))


class without_tensorflow:
    """A `with` block in which Keras does not import TensorFlow on JAX or torch.

    Keras' serializer asks `tf.available` for every object it serializes, which imports
    TensorFlow (seconds of CPU) whenever it is installed, even when the backend is JAX or
    torch: on every `model.save`, and when a `Bidirectional` layer copies its inner layer.
    Inside this block the answer is False (the switch `set_seed` uses); a no-op on
    TensorFlow or once TensorFlow is imported anyway.
    """

    def __enter__(self):
        import sys

        self.lazy_tf = None
        if backend() != "tensorflow" and "tensorflow" not in sys.modules:
            try:
                from keras.src.utils import module_utils

                self.lazy_tf = module_utils.tensorflow
                self.saved, self.lazy_tf._available = self.lazy_tf._available, False
            except (ImportError, AttributeError):
                self.lazy_tf = None
        return self

    def __exit__(self, *exc):
        if self.lazy_tf is not None:
            self.lazy_tf._available = self.saved
        return False


def save_model(model, path) -> None:
    """`model.save(path)` without importing TensorFlow on JAX or torch."""
    with without_tensorflow():
        model.save(path)


def scalar_writer(logdir):
    """A function (step, {tag: value}) that appends TensorBoard scalars to `logdir` (tf.summary;
    TensorBoard's event format needs TensorFlow installed, whatever the Keras backend)."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(logdir))

    def write(step: int, values: dict) -> None:
        with writer.as_default():
            for tag, v in values.items():
                tf.summary.scalar(tag, float(v), step=int(step))
        writer.flush()

    return write
