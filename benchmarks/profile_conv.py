"""Where a CIFAR training step spends its time, op by op, on JAX, TensorFlow and PyTorch.

    python -m benchmarks.profile_conv [--batch 256] [--repeats 5] [--frameworks jax,torch]
    python -m benchmarks.profile_conv --quick          # a smoke run: batch 16, 2 repeats
    python -m benchmarks.profile_conv --ab 3           # then: the whole step of AB_VARIANTS, interleaved
    python -m benchmarks.profile_conv --render benchmarks/results/linux-x86_64-2cpu-convprofile.json

Issue 19: on the CPU, Keras on JAX trains the cifar net at a third of TensorFlow's speed, and
the hand-written jax.jit step (benchmarks/raw_cifar.py) is no faster, so the gap is the
framework's own. This takes the default `keras_cases.cifar` network apart into the ops its
training step runs, at its shapes, and times each alone in each framework (warm-up call,
then the median of --repeats calls, each synchronised): per convolution the forward, the
backward-data (gradient w.r.t. the input) and the backward-filter (w.r.t. the kernel);
batch norm with batch statistics, exact GELU and the 2x2 max-pool, each forward+backward;
the SGD-Nesterov update of every weight; and the whole step (raw_cifar's jax.jit and
torch.nn.functional steps, and the same step as one tf.function). The frozen whitening conv
runs forward only, and the first block conv needs no input gradient (nothing below it
trains), as in the real step. Then the same convolutions under variants: NCHW against NHWC,
bfloat16, one intra-op thread, and XLA:CPU flags (YNNPACK conv fusion off, oneDNN on); and,
from an XLA dump of the JAX step (--xla_dump_to), which kernels XLA:CPU emits. `--ab N`
adds N interleaved rounds of the whole step under the fixes that helped (XLA:CPU's
convolutions off YNNPACK, the max-pool as strided slices; PyTorch's threads) to the saved
run; the report keeps its hand-written `## Conclusions` section when it is rewritten.

Each framework and variant runs in its own process (XLA reads XLA_FLAGS at start-up); the
machine's load average is sampled through the run. Writes `<machine>-convprofile.md` and
`.json` to --out (default ./benchmarks-results/; the committed table is
benchmarks/results/). Like benchmarks/raw_cifar.py, this module imports the frameworks
itself: measuring them without Keras is the point.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from keras_cases import UserError, cli

FRAMEWORKS = ("jax", "tensorflow", "torch")
CONV_OPS = ("fwd", "bwd_data", "bwd_filter")
OTHER_OPS = ("bn", "gelu", "pool")
NO_YNN = "--xla_cpu_experimental_ynn_fusion_type="  # an empty list: XLA:CPU's own (Eigen) convolutions
# only the convolutions off YNNPACK (its matmuls stay): the change proposed for keras_cases/runtime.py
NO_YNN_CONV = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
ONEDNN = "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true"
# (framework, variant, environment variables, layout, dtype, threads, what runs: "all" ops or "conv" only (+ "step"))
VARIANTS = [
    ("jax", "default", {}, "NHWC", "float32", None, "all"),
    ("jax", "NCHW", {}, "NCHW", "float32", None, "conv"),
    ("jax", "bfloat16", {}, "NHWC", "bfloat16", None, "conv"),
    ("jax", "1 thread", {"XLA_FLAGS": ONE_THREAD}, "NHWC", "float32", 1, "conv+step"),
    ("jax", "YNNPACK conv off", {"XLA_FLAGS": NO_YNN}, "NHWC", "float32", None, "all"),
    ("jax", "oneDNN on", {"XLA_FLAGS": ONEDNN}, "NHWC", "float32", None, "conv+step"),
    ("tensorflow", "default", {}, "NHWC", "float32", None, "all"),
    ("tensorflow", "NCHW", {}, "NCHW", "float32", None, "conv"),
    ("tensorflow", "bfloat16", {}, "NHWC", "bfloat16", None, "conv"),
    ("tensorflow", "1 thread", {}, "NHWC", "float32", 1, "conv+step"),
    ("torch", "default", {}, "NCHW", "float32", None, "all"),
    ("torch", "channels_last", {}, "NHWC", "float32", None, "conv"),
    ("torch", "bfloat16", {}, "NCHW", "bfloat16", None, "conv"),
    ("torch", "1 thread", {}, "NCHW", "float32", 1, "conv+step"),
    ("torch", "mkldnn off", {}, "NCHW", "float32", None, "conv"),
    # OpenMP threads that sleep instead of spinning while they wait (libgomp/libiomp read it at start-up)
    ("torch", "passive OpenMP wait", {"OMP_WAIT_POLICY": "PASSIVE"}, "NCHW", "float32", None, "conv+step"),
]


# the whole step alone, each variant in turn in its own process, --ab rounds (a fairer A/B on a
# machine whose load moves: every variant sees every phase of it)
AB_VARIANTS = [
    ("jax", "default", {}, "NHWC", "float32", None, "step"),
    ("jax", "YNNPACK conv off", {"XLA_FLAGS": NO_YNN_CONV}, "NHWC", "float32", None, "step"),
    ("jax", "slices max-pool", {}, "NHWC", "float32", None, "step"),
    ("jax", "YNNPACK conv off, slices max-pool", {"XLA_FLAGS": NO_YNN_CONV}, "NHWC", "float32", None, "step"),
    ("tensorflow", "default", {}, "NHWC", "float32", None, "step"),
    ("torch", "default", {}, "NCHW", "float32", None, "step"),
    ("torch", "1 thread", {}, "NCHW", "float32", 1, "step"),
    ("torch", "passive OpenMP wait", {"OMP_WAIT_POLICY": "PASSIVE"}, "NCHW", "float32", None, "step"),
]


def network(widths=(32, 64, 128), side: int = 32, channels: int = 3) -> list[dict]:
    """The ops of the cifar net's training step (keras_cases/cifar/model.py, the recipe with
    whitening and batch norm), in order: {"op", "layer", "shape" (h, w, c of the op's
    input), and for a conv "cout", "k", "pad"}."""
    h, c, ops = side - 1, 2 * 2 * 2 * channels, []
    ops.append({"op": "fwd", "layer": "whiten", "shape": (side, side, channels), "cout": c, "k": 2, "pad": "VALID"})
    ops.append({"op": "gelu", "layer": "whiten_gelu", "shape": (h, h, c)})
    for b, width in enumerate(widths, start=1):
        for n in (1, 2):
            conv = {"layer": f"block{b}_conv{n}", "shape": (h, h, c), "cout": width, "k": 3, "pad": "SAME"}
            # the first conv's input gradient would only feed the frozen whitening layer
            ops += [{"op": op, **conv} for op in CONV_OPS if not (b == 1 and n == 1 and op == "bwd_data")]
            c = width
            if n == 1:
                ops.append({"op": "pool", "layer": f"block{b}_pool", "shape": (h, h, c)})
                h //= 2
            ops.append({"op": "bn", "layer": f"block{b}_bn{n}", "shape": (h, h, c)})
            ops.append({"op": "gelu", "layer": f"block{b}_gelu{n}", "shape": (h, h, c)})
    return ops


def conv_out(op: dict) -> tuple:
    h, w, _ = op["shape"]
    if op["pad"] == "VALID":
        h, w = h - op["k"] + 1, w - op["k"] + 1
    return h, w, op["cout"]


def flops(op: dict, batch: int) -> int:
    """2 x multiply-adds of a conv op (forward, backward-data and backward-filter each do the
    same number); 0 for the others (memory-bound, reported in ms only)."""
    if op["op"] not in CONV_OPS:
        return 0
    ho, wo, cout = conv_out(op)
    return 2 * batch * ho * wo * cout * op["k"] ** 2 * op["shape"][2]


def synthetic_weights(widths=(32, 64, 128), channels: int = 3, n_classes: int = 10, seed: int = 0) -> dict:
    """Weights in benchmarks/raw_cifar.py's format ({Keras layer name: [arrays]}, HWIO
    kernels), drawn at random: the step's speed does not depend on their values."""
    rng = np.random.default_rng(seed)
    c = 2 * 2 * 2 * channels

    def kernel(k, cin, cout):
        return (rng.standard_normal((k, k, cin, cout)) * np.sqrt(2 / (k * k * cin))).astype("float32")

    w = {"whiten": [kernel(2, channels, c), np.zeros(c, "float32")]}
    for b, width in enumerate(widths, start=1):
        for n in (1, 2):
            w[f"block{b}_conv{n}"] = [kernel(3, c, width)]
            c = width
            ones, zeros = np.ones(c, "float32"), np.zeros(c, "float32")
            w[f"block{b}_bn{n}"] = [ones, zeros, zeros.copy(), ones.copy()]
    w["logits"] = [kernel(1, c, n_classes)[0, 0], np.zeros(n_classes, "float32")]
    return w


STEP_ARGS = dict(lr=0.2, momentum=0.9, weight_decay=5e-4, smoothing=0.2, train_whiten=False)


def timed(fn, repeats: int) -> dict:
    """Median and min wall seconds and median process CPU seconds of `fn()` (which returns
    once its result is computed), after one warm-up call that compiles."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        c, t = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return {"median_s": statistics.median(walls), "min_s": min(walls), "cpu_s": statistics.median(cpus)}


def batch_data(batch: int, side: int = 32, n_classes: int = 10):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch, side, side, 3), dtype=np.uint8)
    return x, np.eye(n_classes, dtype="float32")[rng.integers(0, n_classes, batch)]


# ---------------------------------------------------------------- JAX


def jax_conv(op: str, pad: str, layout: str):
    """The jitted conv op f(x, kernel, dy) (HWIO kernel; the input and dy in `layout`): the
    forward, or the gradient w.r.t. the input or the kernel as jax.vjp computes it."""
    import jax
    from jax import lax

    def conv(x, k):
        return lax.conv_general_dilated(x, k, (1, 1), pad, dimension_numbers=(layout, "HWIO", layout))

    return jax.jit(
        {
            "fwd": lambda x, k, dy: conv(x, k),
            "bwd_data": lambda x, k, dy: jax.vjp(lambda x: conv(x, k), x)[1](dy)[0],
            "bwd_filter": lambda x, k, dy: jax.vjp(lambda k: conv(x, k), k)[1](dy)[0],
        }[op]
    )


def jax_ops(batch: int, layout: str, dtype: str):
    """{op name: a function (spec -> zero-argument callable that runs it and waits)}."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    from benchmarks.raw_cifar import EPS

    dt, rng, nchw = jnp.dtype(dtype), np.random.default_rng(0), layout == "NCHW"
    axes = (0, 2, 3) if nchw else (0, 1, 2)

    def arr(shape):
        return jnp.asarray(rng.standard_normal(shape, dtype=np.float32), dt)

    def img(h, w, c):
        return arr((batch, c, h, w) if nchw else (batch, h, w, c))

    def conv_fn(s):
        x, k, dy = (img(*s["shape"]), arr((s["k"], s["k"], s["shape"][2], s["cout"])), img(*conv_out(s)))
        f = jax_conv(s["op"], s["pad"], layout)
        return lambda: f(x, k, dy).block_until_ready()

    def channel_shape(c):
        return (1, c, 1, 1) if nchw else (c,)

    def bn(x, g, b):
        mean, var = (jnp.mean(x, axis=axes, keepdims=True), jnp.var(x, axis=axes, keepdims=True))
        return (x - mean) * lax.rsqrt(var + EPS) * g + b

    def pool(x):
        window = (1, 1, 2, 2) if nchw else (1, 2, 2, 1)
        return lax.reduce_window(x, -jnp.inf, lax.max, window, window, "VALID")

    def elementwise_fn(s):
        h, w, c = s["shape"]
        x = img(h, w, c)
        if s["op"] == "bn":
            f, args = bn, (x, arr(channel_shape(c)), arr(channel_shape(c)))
        elif s["op"] == "gelu":
            f, args = (lambda x: jax.nn.gelu(x, approximate=False)), (x,)
        else:
            f, args = pool, (x,)
        dy = jnp.ones_like(f(*args))
        g = jax.jit(lambda dy, *a: jax.vjp(f, *a)[1](dy) + (f(*a),))  # forward and backward
        return lambda: jax.block_until_ready(g(dy, *args))

    return {**{op: conv_fn for op in CONV_OPS}, **{op: elementwise_fn for op in OTHER_OPS}}


def use_slices_max_pool() -> None:
    """Route this process' 2x2 stride-2 max `lax.reduce_window` (Keras' MaxPooling2D and the
    raw step's pool) to the max of strided slices: the same values and (but for exact ties)
    gradients, and a backward pass of elementwise selects instead of the reduce-window over
    value/gradient pairs JAX differentiates reduce_window(max) into. A what-if for the
    "slices max-pool" variants."""
    import jax.numpy as jnp
    from jax import lax

    original = lax.reduce_window

    def pool(x, init, computation, window, strides, padding, *args, **kwargs):
        axes = [a for a, n in enumerate(window) if n != 1]
        if computation is not lax.max or padding != "VALID" or any(window[a] != 2 or strides[a] != 2 for a in axes):
            return original(x, init, computation, window, strides, padding, *args, **kwargs)
        for a in axes:  # crop to even, then the max of the even and the odd positions
            n = x.shape[a] // 2 * 2
            x = jnp.maximum(lax.slice_in_dim(x, 0, n, 2, a), lax.slice_in_dim(x, 1, n, 2, a))
        return x

    lax.reduce_window = pool


def jax_optimizer(w: dict):
    import jax
    import optax

    a = STEP_ARGS
    params = {k: [jax.numpy.asarray(v) for v in vs[:2]] for k, vs in w.items() if k != "whiten"}
    grads = jax.tree.map(lambda v: v * 1e-3, params)
    opt = optax.chain(
        optax.sgd(a["lr"], momentum=a["momentum"], nesterov=True),
        optax.add_decayed_weights(-a["lr"] * a["weight_decay"]),
    )
    state = opt.init(params)
    update = jax.jit(lambda p, s, g: (lambda u, s: (optax.apply_updates(p, u), s))(*opt.update(g, s, p)))
    return lambda: jax.block_until_ready(update(params, state, grads))


def jax_step(w: dict, batch: int):
    from benchmarks import raw_cifar

    a = STEP_ARGS
    step, p, s, stats = raw_cifar.jax_trainer(
        w, a["lr"], a["momentum"], a["weight_decay"], a["smoothing"], a["train_whiten"]
    )
    x, y = batch_data(batch)
    box = [p, s, stats]

    def one():
        box[0], box[1], box[2], loss = step(*box, x, y)
        loss.block_until_ready()

    return one


# ---------------------------------------------------------------- TensorFlow


def tf_conv(op: str, pad: str, layout: str):
    """The conv op f(x, kernel, dy) as a tf.function: tf.nn.conv2d, Conv2DBackpropInput or
    Conv2DBackpropFilter (the kernels TensorFlow's conv gradient runs)."""
    import tensorflow as tf

    kw = dict(strides=[1, 1, 1, 1], padding=pad, data_format=layout)
    return tf.function(
        {
            "fwd": lambda x, k, dy: tf.nn.conv2d(x, k, **kw),
            "bwd_data": lambda x, k, dy: tf.raw_ops.Conv2DBackpropInput(
                input_sizes=list(x.shape), filter=k, out_backprop=dy, **kw
            ),
            "bwd_filter": lambda x, k, dy: tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=list(k.shape), out_backprop=dy, **kw
            ),
        }[op]
    )


def tf_ops(batch: int, layout: str, dtype: str):
    import tensorflow as tf

    dt, rng, nchw = tf.as_dtype(dtype), np.random.default_rng(0), layout == "NCHW"
    fmt, axes = ("NCHW" if nchw else "NHWC"), ([0, 2, 3] if nchw else [0, 1, 2])

    def arr(shape):
        return tf.cast(tf.constant(rng.standard_normal(shape, dtype=np.float32)), dt)

    def dims(h, w, c):
        return (batch, c, h, w) if nchw else (batch, h, w, c)

    def conv_fn(s):
        x, k = arr(dims(*s["shape"])), arr((s["k"], s["k"], s["shape"][2], s["cout"]))
        dy, f = arr(dims(*conv_out(s))), tf_conv(s["op"], s["pad"], fmt)
        return lambda: f(x, k, dy)

    def elementwise(op, x, g, b):
        if op == "bn":
            mean, var = tf.nn.moments(x, axes, keepdims=True)
            return tf.nn.batch_normalization(x, mean, var, b, g, 1e-3)
        if op == "gelu":
            return tf.nn.gelu(x, approximate=False)
        return tf.nn.max_pool2d(x, 2, 2, "VALID", data_format=fmt)

    def elementwise_fn(s):
        h, w, c = s["shape"]
        x, cs = arr(dims(h, w, c)), ((1, c, 1, 1) if nchw else (c,))
        g, b = arr(cs), arr(cs)

        @tf.function
        def f(x, g, b):
            with tf.GradientTape() as tape:
                tape.watch([x, g, b])
                y = elementwise(s["op"], x, g, b)
            return y, tape.gradient(y, [x, g, b], output_gradients=tf.ones_like(y))

        return lambda: f(x, g, b)

    return {**{op: conv_fn for op in CONV_OPS}, **{op: elementwise_fn for op in OTHER_OPS}}


def tf_sgd(variables, grads, velocities):
    """Keras' SGD with Nesterov momentum and decoupled weight decay (constant rate)."""
    a = STEP_ARGS
    for v, g, m in zip(variables, grads, velocities):
        v.assign(v * (1 - a["lr"] * a["weight_decay"]))
        m.assign(a["momentum"] * m - a["lr"] * g)
        v.assign_add(a["momentum"] * m - a["lr"] * g)


def tf_optimizer(w: dict):
    import tensorflow as tf

    vs = [tf.Variable(a) for k, arrs in w.items() if k != "whiten" for a in arrs[:2]]
    ms = [tf.Variable(tf.zeros_like(v)) for v in vs]
    gs = [tf.constant(np.full(v.shape, 1e-3, "float32")) for v in vs]
    f = tf.function(lambda: tf_sgd(vs, gs, ms))
    return lambda: f()


def tf_step(w: dict, batch: int):
    """raw_cifar's step as one tf.function (tf.nn ops, NHWC): TensorFlow's own speed."""
    import tensorflow as tf

    from benchmarks.raw_cifar import BN_MOMENTUM, EPS, _smooth

    p = {k: [tf.Variable(a) for a in arrs] for k, arrs in w.items()}
    trained = [v for k, vs in p.items() if k != "whiten" for v in (vs[:2] if "_bn" in k else vs)]
    moms = [tf.Variable(tf.zeros_like(v)) for v in trained]
    blocks = sum(1 for k in w if k.endswith("_conv1"))

    def forward(x):
        h = tf.nn.gelu(tf.nn.conv2d(x, p["whiten"][0], 1, "VALID") + p["whiten"][1], approximate=False)
        for b in range(1, blocks + 1):
            for n in (1, 2):
                h = tf.nn.conv2d(h, p[f"block{b}_conv{n}"][0], 1, "SAME")
                if n == 1:
                    h = tf.nn.max_pool2d(h, 2, 2, "VALID")
                g, beta, mm, mv = p[f"block{b}_bn{n}"]
                mean, var = tf.nn.moments(h, [0, 1, 2])
                mm.assign(BN_MOMENTUM * mm + (1 - BN_MOMENTUM) * mean)
                mv.assign(BN_MOMENTUM * mv + (1 - BN_MOMENTUM) * var)
                h = tf.nn.gelu(tf.nn.batch_normalization(h, mean, var, beta, g, EPS), approximate=False)
        return tf.reduce_max(h, [1, 2]) @ p["logits"][0] + p["logits"][1]

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = forward(tf.cast(x, tf.float32) / 255.0)
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(y, logits))
        tf_sgd(trained, tape.gradient(loss, trained), moms)
        return loss

    x, y = batch_data(batch)
    x, y = tf.constant(x), tf.constant(_smooth(y, STEP_ARGS["smoothing"]))
    return lambda: step(x, y).numpy()


# ---------------------------------------------------------------- PyTorch


def torch_conv(op: str, pad: int):
    """The conv op f(x, kernel, dy) (NCHW, OIHW kernel): F.conv2d, or aten's
    convolution_backward (what autograd runs) for the input or the kernel gradient alone."""
    import torch
    import torch.nn.functional as F

    mask = [op == "bwd_data", op == "bwd_filter", False]

    def run(x, k, dy):
        with torch.no_grad():
            if op == "fwd":
                return F.conv2d(x, k, padding=pad)
            out = torch.ops.aten.convolution_backward(
                dy, x, k, None, [1, 1], [pad, pad], [1, 1], False, [0, 0], 1, mask
            )
            return out[0 if op == "bwd_data" else 1]

    return run


def conv_numpy(framework: str, op: str, pad: str, x, k, dy, layout: str = "NHWC") -> np.ndarray:
    """A timed conv op run on NumPy arrays (x and dy NHWC, k HWIO; the result in the same
    layouts), through the framework's own layout (`layout` for JAX/TensorFlow, NCHW and
    OIHW for PyTorch): what tests/test_benchmarks.py checks against a reference."""

    def nchw(a):
        return np.ascontiguousarray(a.transpose(0, 3, 1, 2))

    if framework == "torch":
        import torch

        f = torch_conv(op, k.shape[0] // 2 if pad == "SAME" else 0)
        kt = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
        out = f(torch.from_numpy(nchw(x)), kt, torch.from_numpy(nchw(dy))).numpy()
        return out.transpose(2, 3, 1, 0) if op == "bwd_filter" else out.transpose(0, 2, 3, 1)
    to = nchw if layout == "NCHW" else np.ascontiguousarray
    out = np.asarray((jax_conv if framework == "jax" else tf_conv)(op, pad, layout)(to(x), k, to(dy)))
    return out if op == "bwd_filter" or layout == "NHWC" else out.transpose(0, 2, 3, 1)


def torch_ops(batch: int, layout: str, dtype: str):
    import torch
    import torch.nn.functional as F

    dt, gen = getattr(torch, dtype), torch.Generator().manual_seed(0)
    fmt = torch.channels_last if layout == "NHWC" else torch.contiguous_format

    def arr(*shape):
        return torch.randn(*shape, generator=gen).to(dt)

    def img(h, w, c):
        return arr(batch, c, h, w).contiguous(memory_format=fmt)

    def conv_fn(s):
        x, k = (img(*s["shape"]), arr(s["cout"], s["shape"][2], s["k"], s["k"]).contiguous(memory_format=fmt))
        dy, f = (img(*conv_out(s)), torch_conv(s["op"], s["k"] // 2 if s["pad"] == "SAME" else 0))
        return lambda: f(x, k, dy)

    def elementwise_fn(s):
        h, w, c = s["shape"]
        x, g, b = (img(h, w, c).requires_grad_(), arr(c).requires_grad_(), arr(c).requires_grad_())
        f = {
            "bn": lambda: F.batch_norm(x, None, None, g, b, training=True, eps=1e-3),
            "gelu": lambda: F.gelu(x),
            "pool": lambda: F.max_pool2d(x, 2),
        }[s["op"]]

        def run():
            y = f()
            return torch.autograd.grad(y, [x, g, b] if s["op"] == "bn" else [x], torch.ones_like(y))

        return run

    return {**{op: conv_fn for op in CONV_OPS}, **{op: elementwise_fn for op in OTHER_OPS}}


def torch_optimizer(w: dict):
    import torch

    a = STEP_ARGS
    ps = [torch.tensor(x, requires_grad=True) for k, arrs in w.items() if k != "whiten" for x in arrs[:2]]
    for q in ps:
        q.grad = torch.full_like(q, 1e-3)
    opt = torch.optim.SGD(ps, lr=a["lr"], momentum=a["momentum"], nesterov=True)

    def run():
        with torch.no_grad():
            for q in ps:
                q.mul_(1 - a["lr"] * a["weight_decay"])
        opt.step()

    return run


def torch_step(w: dict, batch: int):
    from benchmarks import raw_cifar

    a = STEP_ARGS
    step, _ = raw_cifar.torch_trainer(w, a["lr"], a["momentum"], a["weight_decay"], a["smoothing"], a["train_whiten"])
    x, y = batch_data(batch)
    return lambda: step(x, y)


# ---------------------------------------------------------------- one process: a framework, a variant

BUILDERS = {
    "jax": (jax_ops, jax_optimizer, jax_step),
    "tensorflow": (tf_ops, tf_optimizer, tf_step),
    "torch": (torch_ops, torch_optimizer, torch_step),
}


def set_threads(framework: str, threads, mkldnn: bool = True) -> None:
    """TensorFlow's and PyTorch's intra-op pools (JAX's is sized by XLA_FLAGS at start-up)."""
    if framework == "tensorflow" and threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    if framework == "torch":
        import torch

        if threads:
            torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = mkldnn


def measure(framework: str, variant: str, layout: str, dtype: str, threads, what: str, batch: int, repeats: int):
    """Rows {op, layer, median_s, min_s, cpu_s, flops, gflops} (or an "error") for one variant."""
    set_threads(framework, threads, mkldnn=variant != "mkldnn off")
    if framework == "jax" and "slices max-pool" in variant:
        use_slices_max_pool()
    ops_of, optimizer, step = BUILDERS[framework]
    builders, rows = ops_of(batch, layout, dtype), []
    for spec in network():
        if what == "step" or (what != "all" and spec["op"] not in CONV_OPS):
            continue
        rows.append(time_row(lambda s=spec: builders[s["op"]](s), spec, batch, repeats))
    w = synthetic_weights()
    if what == "all":
        rows.append(time_row(lambda: optimizer(w), {"op": "optimizer", "layer": "all weights"}, batch, repeats))
    if what != "conv":
        rows.append(time_row(lambda: step(w, batch), {"op": "step", "layer": "whole step"}, batch, repeats))
    return rows


def time_row(build, spec: dict, batch: int, repeats: int) -> dict:
    row = {"op": spec["op"], "layer": spec["layer"], "flops": flops(spec, batch) if "shape" in spec else 0}
    try:
        row.update(timed(build(), repeats))
    except Exception as e:  # an op a framework does not run in this layout/dtype: recorded
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
        return row
    row["gflops"] = row["flops"] / row["median_s"] / 1e9 if row["flops"] else None
    return row


def versions(framework: str) -> str:
    mod = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}[framework]
    return __import__(mod).__version__


# ---------------------------------------------------------------- the XLA dump


def xla_kernels(dump_dir: str) -> dict:
    """What XLA:CPU compiled the JAX step to, from its optimised HLO: how many convolutions
    (and how many inside YNNPACK fusions), oneDNN custom calls, fusions, the transposes it
    adds, the max-pool backward (select-and-scatter) and the reductions (batch statistics)."""
    files = sorted(glob.glob(os.path.join(dump_dir, "*jit_step*after_optimizations.txt")))
    if not files:
        return {}
    text = Path(files[-1]).read_text()
    comps = re.split(r"\n(?=%|ENTRY)", text)
    in_ynn = {m for m in re.findall(r"kind=kCustom, calls=(%[\w.\-]+)[^\n]*__ynn_fusion", text)}
    ynn_convs = sum(c.count(" convolution(") for c in comps if c.split(" ", 1)[0] in in_ynn)
    return {
        "file": os.path.basename(files[-1]),
        "convolutions": text.count(" convolution("),
        "convolutions_in_ynn_fusions": ynn_convs,
        "ynn_fusions": text.count('"kind":"__ynn_fusion"'),
        "onednn_custom_calls": len(re.findall(r'custom_call_target="__onednn', text)),
        "custom_calls": text.count(" custom-call("),
        "fusions": len(re.findall(r" fusion\(", text)),
        "transposes": text.count(" transpose("),
        "select_and_scatter": text.count(" select-and-scatter("),
        "reduce_window": text.count(" reduce-window("),
        "reduces": text.count(" reduce("),
        "conv_dim_labels": sorted(set(re.findall(r"convolution\([^\n]*dim_labels=([\w>\-]+)", text))),
    }


def worker(spec: dict) -> dict:
    dump = spec.get("dump")
    rows = measure(
        spec["framework"],
        spec["variant"],
        spec["layout"],
        spec["dtype"],
        spec["threads"],
        spec["what"],
        spec["batch"],
        spec["repeats"],
    )
    out = {**spec, "rows": rows, "version": versions(spec["framework"]), "load_end": os.getloadavg()[0]}
    if dump:
        out["xla"] = xla_kernels(dump)
    return out


def run_variant(v: tuple, batch: int, repeats: int, tmp: str) -> dict:
    """One variant in its own process (XLA_FLAGS, threads and framework state are per process)."""
    framework, variant, extra_env, layout, dtype, threads, what = v
    spec = dict(framework=framework, variant=variant, env=extra_env, layout=layout, dtype=dtype, threads=threads)
    spec.update(what=what, batch=batch, repeats=repeats, load_start=os.getloadavg()[0])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "XLA_FLAGS": "", **extra_env}
    if framework == "jax" and what != "conv":  # what XLA compiled the step to (the dump costs no run time)
        spec["dump"] = os.path.join(tmp, f"xla-dump-{len(os.listdir(tmp))}")
        env["XLA_FLAGS"] = f"{env['XLA_FLAGS']} --xla_dump_to={spec['dump']} --xla_dump_hlo_as_text".strip()
    path = os.path.join(tmp, "result.json")
    cmd = [sys.executable, "-m", "benchmarks.profile_conv", "--worker", json.dumps(spec), "--json", path]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {**spec, "rows": [], "failed": proc.stderr.strip().splitlines()[-1:]}
    r = json.loads(Path(path).read_text())
    r["wall_s"] = time.perf_counter() - t
    return r


# ---------------------------------------------------------------- the report


def ms(v):
    return None if v is None else 1000 * v


def total(r: dict, ops, key="median_s") -> float | None:
    rows = [x for x in r["rows"] if x["op"] in ops]
    if not rows or any("error" in x for x in rows):
        return None
    return sum(x[key] for x in rows)


def gflops_of(r: dict, ops) -> float | None:
    t = total(r, ops)
    return None if t is None else sum(x["flops"] for x in r["rows"] if x["op"] in ops) / t / 1e9


def cell(v, fmt="{:.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def op_table(defaults: dict) -> list[str]:
    """Per op kind (summed over the layers), per framework: ms (GFLOP/s for convs)."""
    fws = list(defaults)
    lines = ["| op (all layers) | " + " | ".join(f"{f} ms | {f} GFLOP/s" for f in fws) + " |"]
    lines.append("|---|" + "---|---|" * len(fws))
    for op in (*CONV_OPS, *OTHER_OPS, "optimizer"):
        cells = [
            f"{cell(ms(total(defaults[f], [op])), '{:.1f}')} | {cell(gflops_of(defaults[f], [op]), '{:.1f}')}"
            for f in fws
        ]
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    parts = [f"{cell(ms(total(defaults[f], [*CONV_OPS, *OTHER_OPS, 'optimizer'])), '{:.1f}')} | " for f in fws]
    lines.append("| sum of the parts | " + " | ".join(parts) + " |")
    steps = [f"{cell(ms(total(defaults[f], ['step'])), '{:.1f}')} | " for f in fws]
    lines.append("| whole step | " + " | ".join(steps) + " |")
    return lines


def layer_table(defaults: dict) -> list[str]:
    """GFLOP/s of each conv op of each layer, per framework."""
    fws = list(defaults)
    head = [f"{f} {op}" for f in fws for op in CONV_OPS]
    lines = ["| layer | GFLOP | " + " | ".join(head) + " |", "|---|---|" + "---|" * len(head)]
    any_rows = next(iter(defaults.values()))["rows"]
    for layer in dict.fromkeys(x["layer"] for x in any_rows if x["op"] in CONV_OPS):
        by = {(f, x["op"]): x for f in fws for x in defaults[f]["rows"] if x["layer"] == layer}
        gf = next(x["flops"] for x in any_rows if x["layer"] == layer) / 1e9
        cells = [cell(by[(f, op)].get("gflops") if (f, op) in by else None, "{:.1f}") for f in fws for op in CONV_OPS]
        lines.append(f"| {layer} | {gf:.2f} | " + " | ".join(cells) + " |")
    return lines


def kernels(xla) -> str:
    if not xla:
        return "-"
    return (
        f"{xla['convolutions']}: {xla['convolutions_in_ynn_fusions']} YNNPACK, "
        f"{xla['onednn_custom_calls']} oneDNN, {xla['convolutions'] - xla['convolutions_in_ynn_fusions']} Eigen"
    )


def env_cell(r: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in r.get("env", {}).items() if v) or "-"


def variant_table(results: list[dict]) -> list[str]:
    lines = [
        "| framework | variant | environment | conv fwd ms | bwd-data ms | bwd-filter ms | all convs ms | "
        "convs GFLOP/s | conv CPU s / wall s | whole step ms | images/s | step's convs (XLA) | load start-end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        convs, cpu = total(r, CONV_OPS), total(r, CONV_OPS, "cpu_s")
        step = total(r, ["step"])
        err = next((x["error"] for x in r["rows"] if "error" in x), None) or " ".join(r.get("failed", []))
        lines.append(
            f"| {r['framework']} | {r['variant']} | {env_cell(r)} | "
            + " | ".join(cell(ms(total(r, [op])), "{:.1f}") for op in CONV_OPS)
            + f" | {cell(ms(convs), '{:.1f}')} | {cell(gflops_of(r, CONV_OPS), '{:.1f}')} | "
            f"{cell(None if convs is None else cpu / convs, '{:.2f}')} | {cell(step and 1000 * step, '{:.0f}')} | "
            f"{cell(step and r['batch'] / step)} | {kernels(r.get('xla'))} | {r['load_start']:.1f}-{r.get('load_end', 0):.1f} |"
            + (f" {err[:120]}" if err else "")
        )
    return lines


def findings(defaults: dict, results: list[dict]) -> list[str]:
    """The conclusions the numbers support, per framework (computed, so a rerun updates them)."""
    out = []
    steps = {f: total(r, ["step"]) for f, r in defaults.items() if total(r, ["step"])}
    if steps:
        best = min(steps, key=steps.get)
        out.append(
            f"- Fastest whole step: {best} ({defaults[best]['batch'] / steps[best]:.0f} images/s); "
            + ", ".join(f"{f} {steps[f] / steps[best]:.1f}x its time" for f in steps if f != best)
            + "."
        )
    for f, r in defaults.items():
        parts = {op: total(r, [op]) for op in (*CONV_OPS, *OTHER_OPS, "optimizer")}
        parts = {k: v for k, v in parts.items() if v}
        s = sum(parts.values())
        if not s:
            continue
        share = ", ".join(f"{op} {100 * v / s:.0f}%" for op, v in sorted(parts.items(), key=lambda kv: -kv[1]))
        out.append(f"- {f}: of the summed op time ({1000 * s:.0f} ms), {share}.")
    for f in defaults:
        own = [r for r in results if r["framework"] == f and total(r, CONV_OPS)]
        if len(own) > 1:
            best = min(own, key=lambda r: total(r, CONV_OPS))
            base = total(defaults[f], CONV_OPS)
            out.append(
                f"- {f}: fastest convolutions under variant '{best['variant']}' "
                f"({1000 * total(best, CONV_OPS):.0f} ms against {1000 * base:.0f} ms by default)."
            )
    return out


def xla_lines(xla: dict) -> list[str]:
    if not xla:
        return ["(no XLA dump of the step was found)"]
    return [
        f"From `{xla['file']}` (XLA_FLAGS=--xla_dump_to, the default flags): "
        f"{xla['convolutions']} convolutions, {xla['convolutions_in_ynn_fusions']} of them inside "
        f"YNNPACK fusions (`__ynn_fusion`, XNNPACK's successor library; {xla['ynn_fusions']} YNNPACK fusions in "
        "all, the others elementwise and reductions; a convolution outside one runs on XLA's Eigen kernel), "
        f"{xla['onednn_custom_calls']} oneDNN custom calls, "
        f"{xla['custom_calls']} custom calls in all; {xla['fusions']} fusions, {xla['transposes']} transposes "
        f"(layout copies around the backward convolutions), {xla['select_and_scatter']} select-and-scatter "
        f"(max-pool backward), {xla['reduce_window']} reduce-window, {xla['reduces']} reduces "
        f"(batch statistics and their gradients). Conv dimension labels: "
        + ", ".join(f"`{d}`" for d in xla["conv_dim_labels"])
        + "."
    ]


def ab_section(sessions: list[dict]) -> list[str]:
    lines = []
    for i, ab in enumerate(sessions, start=1):
        load = ab["load"]
        lines += [
            f"## Whole step, interleaved ({ab['rounds']} rounds, each variant in turn in its own process; run {i})",
            "",
            f"`--ab {ab['rounds']}`; load average through it: min {load['min']:.1f}, median {load['median']:.1f}, "
            f"max {load['max']:.1f}.",
            "",
            *ab_table(ab),
            "",
        ]
    return lines


def write_report(
    out: Path, results: list[dict], load: dict, batch: int, repeats: int, name: str, ab: list | None = None
) -> Path:
    defaults = {r["framework"]: r for r in results if r["variant"] == "default" and r["rows"]}
    xla = next((r.get("xla") for r in results if r.get("xla") and r["variant"] == "default"), {})
    ver = ", ".join(f"{r['framework']} {r['version']}" for r in results if r["variant"] == "default" and "version" in r)
    text = [
        f"# Where the CIFAR training step spends its time ({name})",
        "",
        f"`python -m benchmarks.profile_conv --batch {batch} --repeats {repeats}`: the default `keras_cases.cifar` "
        f"network's ops at batch {batch}, each timed alone (median of {repeats} after a warm-up call), {ver}. "
        f"Load average (1 min) through the run: min {load['min']:.1f}, median {load['median']:.1f}, "
        f"max {load['max']:.1f} on {os.cpu_count()} cores: every number is slowed by the other work on the machine.",
        "",
        "## Per op, default configuration (float32; NHWC on JAX/TensorFlow, NCHW on PyTorch)",
        "",
        *op_table(defaults),
        "",
        "## Per layer, conv GFLOP/s",
        "",
        *layer_table(defaults),
        "",
        "## Variants (the convolutions summed over the layers; whole step where it ran)",
        "",
        *variant_table(results),
        "",
        *ab_section(ab or []),
        "## What XLA:CPU emits for the JAX step",
        "",
        *xla_lines(xla),
        "",
        "## Findings (computed from the tables above)",
        "",
        *findings(defaults, results),
        "",
    ]
    path = out / f"{name}.md"
    path.write_text("\n".join(text) + kept_conclusions(path))
    return path


CONCLUSIONS = "## Conclusions"


def kept_conclusions(path: Path) -> str:
    """The hand-written conclusions of an earlier report at `path` (from its `## Conclusions`
    heading on), kept when the tables are rewritten."""
    old = path.read_text() if path.is_file() else ""
    return "\n" + old[old.index(CONCLUSIONS) :] if CONCLUSIONS in old else ""


# ---------------------------------------------------------------- command line


def render(path: Path) -> int:
    if not path.is_file():
        raise UserError(f"--render: {path} is not a file")
    d = json.loads(path.read_text())
    r0 = d["results"][0]
    print(
        f"wrote {write_report(path.parent, d['results'], d['load'], r0['batch'], r0['repeats'], path.stem, ab_sessions(d))}"
    )
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_conv", description=__doc__.split("\n\n")[0])
    p.add_argument("--frameworks", default=None, help="comma-separated (default: every installed one)")
    p.add_argument("--batch", type=cli.positive_int, default=256)
    p.add_argument("--repeats", type=cli.positive_int, default=5)
    p.add_argument("--defaults-only", action="store_true", help="only each framework's default configuration")
    p.add_argument("--quick", action="store_true", help="a smoke run: batch 16, 2 repeats (written as *-quick.*)")
    p.add_argument("--out", default=None, help="results folder (default ./benchmarks-results)")
    p.add_argument(
        "--ab",
        type=cli.positive_int,
        default=None,
        help="ROUNDS of the interleaved whole-step A/B, added to the saved run",
    )
    p.add_argument("--render", default=None, help="rewrite the .md from a saved .json (nothing is measured)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help=argparse.SUPPRESS)
    return p


def parse_frameworks(text: str | None) -> list[str]:
    import importlib.util

    installed = [f for f in FRAMEWORKS if importlib.util.find_spec(f) is not None]
    chosen = cli.parse_list(text, "--frameworks", FRAMEWORKS, "framework") if text else installed
    missing = [f for f in chosen if f not in installed]
    if missing:
        raise UserError(f"--frameworks: {', '.join(missing)} is not installed here (installed: {', '.join(installed)})")
    return chosen


def main(argv=None):
    args = make_parser().parse_args(argv)
    if args.worker:
        Path(args.json).write_text(json.dumps(worker(json.loads(args.worker))))
        return 0
    from benchmarks.__main__ import LoadSampler, machine, results_dir

    if args.render:
        return render(Path(args.render))
    frameworks, out = parse_frameworks(args.frameworks), results_dir(args.out)
    batch, repeats = (16, 2) if args.quick else (args.batch, args.repeats)
    name = f"{machine()}-convprofile" + ("-quick" if args.quick else "")
    if args.ab:
        return ab_main(out / f"{name}.json", [v for v in AB_VARIANTS if v[0] in frameworks], args.ab, batch, repeats)
    chosen = [
        v for v in VARIANTS if v[0] in frameworks and (v[1] == "default" or not (args.defaults_only or args.quick))
    ]
    out.mkdir(parents=True, exist_ok=True)
    sampler, results = LoadSampler(), []
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        for v in chosen:
            results.append(run_variant(v, batch, repeats, tmp))
            r = results[-1]
            print(
                f"{v[0]:10s} {v[1]:18s} convs {cell(total(r, CONV_OPS), '{:.3f}')} s  "
                f"step {cell(total(r, ['step']), '{:.3f}')} s  {' '.join(r.get('failed', []))}",
                flush=True,
            )
    sampler.done.set()
    load = sampler.summary()
    (out / f"{name}.json").write_text(json.dumps({"load": load, "results": results}, indent=2) + "\n")
    print(f"wrote {write_report(out, results, load, batch, repeats, name)}")
    return 0


def ab_main(path: Path, variants: list, rounds: int, batch: int, repeats: int) -> int:
    """--ab ROUNDS: the whole step of each of `variants` in turn, ROUNDS times over, added to
    the profile's .json at `path` (which must exist) and its .md rewritten."""
    from benchmarks.__main__ import LoadSampler

    if not path.is_file():
        raise UserError(f"--ab adds to {path}: run the profile (without --ab) first")
    data, sampler, runs = json.loads(path.read_text()), LoadSampler(), []
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            for v in variants:
                r = run_variant(v, batch, repeats, tmp)
                runs.append({**r, "round": i, "step_s": total(r, ["step"])})
                print(f"round {i + 1}: {v[0]:10s} {v[1]:20s} step {cell(runs[-1]['step_s'], '{:.3f}')} s", flush=True)
    sampler.done.set()
    session = {"rounds": rounds, "load": sampler.summary(), "runs": [{k: r.get(k) for k in AB_KEYS} for r in runs]}
    data["ab_sessions"] = ab_sessions(data) + [session]
    data.pop("ab", None)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return render(path)


def ab_sessions(data: dict) -> list[dict]:
    """Every --ab run saved with the profile (an older .json kept one, as "ab")."""
    return data.get("ab_sessions") or ([data["ab"]] if "ab" in data else [])


AB_KEYS = ("framework", "variant", "env", "threads", "batch", "round", "step_s", "load_start", "load_end", "xla")


def ab_kernels(xla) -> str:
    """The step's convolutions by library and its reduce-windows (JAX only)."""
    return "-" if not xla else f"convs {kernels(xla)}; {xla['reduce_window']} reduce-window"


def ab_table(ab: dict) -> list[str]:
    """Per variant: each round's step time, their median, images/s, and against the
    framework's default in the same rounds."""
    groups: dict = {}
    for r in ab["runs"]:
        groups.setdefault((r["framework"], r["variant"]), []).append(r)
    med = {k: statistics.median([r["step_s"] for r in g if r["step_s"]] or [float("nan")]) for k, g in groups.items()}
    lines = [
        "| framework | variant | environment | step ms, each round | median ms | images/s | vs default | XLA kernels |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (f, v), g in groups.items():
        each = ", ".join(cell(ms(r["step_s"])) for r in g)
        base = med.get((f, "default"))
        lines.append(
            f"| {f} | {v} | {env_cell(g[0])} | {each} | {1000 * med[(f, v)]:.0f} | {g[0]['batch'] / med[(f, v)]:.0f} | "
            f"{cell(base and base / med[(f, v)], '{:.2f}x')} | {ab_kernels(g[0].get('xla'))} |"
        )
    return lines


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
