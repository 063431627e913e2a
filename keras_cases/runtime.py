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
- `set_distribution(kind, coordinator, processes, process_id)`  `--distribute
                          data-parallel`: keras.distribution.DataParallel over every device,
                          of one or several JAX processes (JAX only)
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

    KERAS_BACKEND (and --backend, which sets it) is the user's explicit choice: strict, a
    one-line error when unknown or not installed. ~/.keras/keras.json is not: Keras writes
    "tensorflow" there on its first import whatever is installed, so a keras.json backend
    that is not installed falls back to the first installed one, with a one-line note.
    Must run before `import keras`; `import keras_cases` calls it.
    """
    found = installed_backends()
    name = (os.environ.get("KERAS_BACKEND") or "").strip().lower()
    if name:
        if name not in BACKENDS:
            raise UserError(
                f"unknown Keras backend {name!r}: choose one of {', '.join(BACKENDS)} "
                "(KERAS_BACKEND=... or --backend ...)"
            )
        if name not in found:
            raise UserError(
                f"backend {name!r} is not installed: pip install 'keras-cases[{name}]'"
                + (f" (installed: {', '.join(found)})" if found else "")
            )
    else:
        if not found:
            raise UserError(
                "no Keras backend is installed: pip install 'keras-cases[jax]' (or [tensorflow], [torch], [all])"
            )
        configured = (_keras_json_backend() or "").strip().lower()
        name = configured if configured in found else found[0]
        if configured and configured != name:
            import sys

            print(
                f"note: ~/.keras/keras.json names backend {configured!r}, which is not "
                f"installed here; using {name} (set KERAS_BACKEND or --backend to choose)",
                file=sys.stderr,
            )
    os.environ["KERAS_BACKEND"] = name
    _cpu_defaults(name)
    return name


# jaxlib 0.10's XLA:CPU hands convolutions to YNNPACK, whose kernel-gradient convolution ran
# the cifar net at 9 GFLOP/s against ~30 for XLA's own kernel (benchmarks/results/
# linux-x86_64-2cpu-convprofile.md): "-individual_convolution" moves only the convolutions
# back; YNNPACK keeps the rest. The flag is unknown to other XLA versions (which abort on an
# unknown flag), hence the exact version guard.
NO_YNN_CONV = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"


def _cpu_defaults(name: str) -> None:
    """Measured CPU defaults, set before the framework loads and never over the user's own
    choice of the same setting (XLA_FLAGS, OMP_WAIT_POLICY)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if name == "jax" and "ynn_fusion_type" not in flags and _version_prefix("jaxlib") == (0, 10):
        os.environ["XLA_FLAGS"] = f"{flags} {NO_YNN_CONV}".strip()
    if name == "torch":  # OpenMP threads that sleep while they wait: spinning made a step 4x slower under load
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _version_prefix(package: str) -> tuple:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return tuple(int(p) for p in version(package).split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return ()


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
    """Backend, versions, devices and distribution: written into every run's metrics.json."""
    import keras

    fw = _framework()
    return {
        "backend": backend(),
        "keras_version": keras.__version__,
        "framework_version": fw.__version__,
        "devices": devices(),
        "distribution": _distribution["kind"],
        "distribution_devices": _distribution["devices"],
        "distribution_processes": _distribution["processes"],
        "python": platform.python_version(),
        "numpy_version": np.__version__,
    }


DISTRIBUTIONS = ("none", "data-parallel")
_distribution = {"kind": "none", "devices": 1, "names": [], "ours": None, "processes": 1, "process_id": 0}


def set_distribution(
    kind: str = "none", coordinator: str | None = None, processes: int = 1, process_id: int = 0
) -> int:
    """Train on one device ("none") or data-parallel over every device; returns the count.

    "data-parallel" sets keras.distribution.DataParallel over keras.distribution.list_devices()
    (all GPUs or TPUs, else the CPU devices): each variable is replicated on every device,
    each batch is split along its first axis, one slice per device, and XLA all-reduces the
    gradients, so `--batch-size` is the global batch. Call it before any model is built
    (the shared CLI does, right after parsing). JAX only: Keras' distribution API has no
    TensorFlow or PyTorch implementation. Test it on a CPU with
    XLA_FLAGS=--xla_force_host_platform_device_count=4.

    With `processes` > 1 this process first joins the others through
    keras.distribution.initialize (jax.distributed: `coordinator` is process 0's HOST:PORT;
    on CPU the processes all-reduce with gloo), and the mesh spans every process' devices.
    Every process runs the same command on the same data, so each holds every global
    batch; JAX is told so (`_allow_ragged_batches`) and puts on each local device only its
    slice, which makes 2 processes x 2 devices compute what 1 process x 4 devices does.

    Batches whose size does not split evenly over the devices (the last, partial batch of
    an epoch, a validation or predict remainder) would stop Keras with a JAX sharding
    error; here they run replicated instead (every device computes the whole small batch),
    so no row is dropped and the numbers match a one-device run.
    """
    if kind not in DISTRIBUTIONS:
        raise UserError(f"unknown distribution {kind!r}: choose one of {', '.join(DISTRIBUTIONS)}")
    import keras

    if kind == "none":
        # undo only a distribution this function set; leave one the caller set themselves
        if _distribution["ours"] is not None and keras.distribution.distribution() is _distribution["ours"]:
            keras.distribution.set_distribution(None)
        _distribution.update(kind="none", devices=1, names=[], ours=None)
        return 1
    name = backend()
    if name != "jax":
        raise UserError(
            f"--distribute {kind} needs the JAX backend (Keras' distribution API is JAX-only); "
            f"run with KERAS_BACKEND=jax, or leave out --distribute to train on one {name} device"
        )
    if processes > 1:
        _join_processes(coordinator, processes, process_id)
    _allow_ragged_batches()
    devs = keras.distribution.list_devices()
    # several processes: Keras would shard only a tf.data.Dataset (and refuse anything
    # else); here every process reads all the data and `_allow_ragged_batches` slices it
    dist = keras.distribution.DataParallel(devices=devs, auto_shard_dataset=processes == 1)
    keras.distribution.set_distribution(dist)
    _distribution.update(kind=kind, devices=len(devs), names=list(devs), ours=dist)
    return len(devs)


def _join_processes(coordinator: str, processes: int, process_id: int) -> None:
    """keras.distribution.initialize once per process (jax.distributed cannot be set up
    twice); a coordinator that cannot be reached is one line, not a traceback."""
    import keras

    joined = (_distribution["processes"], _distribution["process_id"])
    if joined != (1, 0):
        if joined != (processes, process_id):
            raise UserError(f"this Python process already joined {joined[0]} JAX processes as process {joined[1]}")
        return
    try:  # initialize agrees on a seed and sets it: keep that from importing TensorFlow
        with without_tensorflow():
            keras.distribution.initialize(coordinator, processes, process_id)
    except (RuntimeError, ValueError) as e:  # XlaRuntimeError is a RuntimeError
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(
            f"process {process_id} of {processes} could not join the others at --coordinator {coordinator}: {first}"
        )
    _distribution.update(processes=processes, process_id=process_id)
    _gather_predictions()
    # Keras runs batch-end callbacks in a thread pool on JAX (IS_THREAD_SAFE), reading each
    # step's logs while the main thread dispatches the next computations. Across processes
    # that deadlocked fit in 4 runs of 4 on 2 CPU cores (churn --quick; a 4-epoch fit with
    # an AUC metric): every process waiting in an eager metric op, its callback thread in
    # np.asarray. With callbacks run in the training thread, as Keras does on TensorFlow,
    # 3 runs of 3 finished. The root cause is not pinned down; keras.src is Keras-internal.
    from keras.src import backend as keras_backend

    keras_backend.IS_THREAD_SAFE = False


def distribution() -> dict:
    """{"kind": "none" | "data-parallel", "devices": n, "names": [...], "processes": p,
    "process_id": i} as last set by `set_distribution` (names: the devices it spans, empty
    for "none"; processes: how many JAX processes share them, this one being process_id)."""
    return {k: _distribution[k] for k in ("kind", "devices", "names", "processes", "process_id")}


def process_id() -> int:
    """This process' index among the JAX processes training together (0 when alone): only
    process 0 writes a run's files."""
    return _distribution["process_id"]


def _allow_ragged_batches() -> None:
    """Let batches that do not split over the devices run replicated under DataParallel,
    and let every process hand over the whole global batch.

    Keras (3.x) shards every batch of fit/evaluate/predict along the batch mesh axis with
    the layout of the epoch's first batch, and JAX refuses a batch whose size that axis
    does not divide (IndivisibleError on the last partial batch). This wraps Keras' JAX
    `distribute_data_input` so such a batch gets a fully replicated sharding instead.

    With several JAX processes Keras expects each process to pass its own slice of the
    global batch; here every process reads the same data and holds the same whole batch,
    so the global shape is given as that batch's shape: JAX then copies to each local
    device only the rows that device owns (and the whole batch, for a replicated one).

    `distribute_data_input` is Keras-internal (keras.src); tests/test_distribute.py fails
    if a Keras release moves or changes it, and here a missing one leaves Keras as it is.
    """
    import math

    import jax
    from jax.sharding import NamedSharding, PartitionSpec
    from keras.distribution import TensorLayout

    try:
        from keras.src.backend.jax import distribution_lib as jax_dist

        original = jax_dist.distribute_data_input
    except (ImportError, AttributeError):
        return
    if getattr(original, "_keras_cases_ragged", False):
        return

    def distribute_data_input(batch, layout, batch_dim_name):
        sharding = layout.backend_layout if isinstance(layout, TensorLayout) else layout
        shape = tuple(getattr(batch, "shape", ()))
        if isinstance(sharding, NamedSharding) and len(shape) and len(sharding.spec):
            axis = sharding.spec[0]
            names = axis if isinstance(axis, tuple) else (axis,)
            parts = math.prod(sharding.mesh.shape[a] for a in names if a is not None)
            if shape[0] % parts:
                sharding = NamedSharding(sharding.mesh, PartitionSpec())
        if jax.process_count() > 1 and len(shape):
            return jax.make_array_from_process_local_data(sharding, batch, shape)
        return original(batch, sharding, batch_dim_name)

    distribute_data_input._keras_cases_ragged = True
    jax_dist.distribute_data_input = distribute_data_input


def _gather_predictions() -> None:
    """With several JAX processes, make `model.predict` return NumPy arrays of the whole
    global batch on every process. Keras' JAX trainer concatenates the batch outputs with
    np.concatenate, which cannot read an array whose rows live on another process' devices
    (every process runs predict, so the all-gather is a collective they all take part in)."""
    from jax.experimental import multihost_utils
    from keras.src.backend.jax.trainer import JAXTrainer

    original = JAXTrainer.make_predict_function
    if getattr(original, "_keras_cases_gather", False):
        return

    def make_predict_function(self, force=False):
        if self.predict_function is not None and not force:
            return self.predict_function
        original(self, force)
        step = self.predict_function

        def gathered(state, iterator):
            outputs, state = step(state, iterator)
            return multihost_utils.process_allgather(outputs, tiled=True), state

        self.predict_function = gathered
        return gathered

    make_predict_function._keras_cases_gather = True
    JAXTrainer.make_predict_function = make_predict_function


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the backend's RNG."""
    import keras

    # keras.utils.set_random_seed also seeds tf.random whenever TensorFlow is importable,
    # which imports TensorFlow (seconds) even on JAX or torch; nothing on those paths
    # draws from tf.random, so skip it there.
    with without_tensorflow():
        keras.utils.set_random_seed(int(seed))


# Training steps per compiled call, per kind of workload and backend, chosen by measurement
# (`python -m benchmarks`, benchmarks/results/linux-x86_64-2cpu.md). A small model's step is
# mostly per-step Python overhead (callbacks, logs, the data adapter) that grouping steps into
# one call removes: the churn MLP's epoch on JAX goes from 3.6x to 1.9x the hand-written
# jax.jit loop at batch 64, on TensorFlow from about 0.10 s to 0.05 s. The text networks gain
# about 1.1x (median) on TensorFlow but nothing reliable on JAX (0.91-1.18x over five runs).
# Keras on PyTorch accepts only 1. Everything else keeps Keras' default of 1: the conv nets
# are compute-bound (benchmarks/cifar.py), where steps_per_execution was not measured.
STEPS_PER_EXECUTION = {"dense": {"jax": 32, "tensorflow": 32}, "text": {"tensorflow": 32}}


def steps_per_execution(workload: str) -> int:
    """The measured best `steps_per_execution` for a workload ("dense", "text") on the
    active backend (1 where grouping steps did not pay)."""
    return STEPS_PER_EXECUTION.get(workload, {}).get(backend(), 1)


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


def input_gradient(fn, x):
    """Per-example scores `fn(x)` (shape (n,)) and the gradient of their sum w.r.t. the input
    array `x`, as NumPy arrays, with the active backend's own autodiff (jax.value_and_grad,
    tf.GradientTape, torch.autograd). Since example i's score depends only on x[i], row i of
    the gradient is d score_i / d x[i]. `fn` calls models in inference mode."""
    import keras

    name = backend()
    to_np = keras.ops.convert_to_numpy
    if name == "jax":
        import jax
        import jax.numpy as jnp

        def total(t):
            s = fn(t)
            return jnp.sum(s), s

        (_, scores), grad = jax.value_and_grad(total, has_aux=True)(jnp.asarray(x))
    elif name == "tensorflow":
        import tensorflow as tf

        t = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(t)
            scores = fn(t)
            total = tf.reduce_sum(scores)
        grad = tape.gradient(total, t)
    else:
        import torch

        t = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        with torch.enable_grad():
            scores = fn(t)
            (grad,) = torch.autograd.grad(scores.sum(), t)
    return np.asarray(to_np(scores)), np.asarray(to_np(grad))


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


def framework_rng_state():
    """The framework's own global random state where Keras draws from it (PyTorch: unseeded
    dropout uses torch's global generator), as a NumPy array; None elsewhere."""
    if backend() != "torch":
        return None
    import torch

    return torch.get_rng_state().numpy().copy()


def set_framework_rng_state(state) -> None:
    if state is None or backend() != "torch":
        return
    import torch

    torch.set_rng_state(torch.from_numpy(np.asarray(state, dtype=np.uint8)))


def save_model(model, path) -> None:
    """`model.save(path)` without importing TensorFlow on JAX or torch, atomically (a
    temporary file renamed into place, so a reader never sees half a model)."""
    from keras_cases.runs import atomic

    with without_tensorflow(), atomic(path) as tmp:
        model.save(tmp)


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
