"""The scratch networks and optimizers against Keras, on the active backend, in float64.

    KERAS_BACKEND=torch python -m keras_cases.scratch.keras_check     # prints one JSON line

For every gradient case (`gradcheck.cases()`) the scratch network is rebuilt as a
keras.Sequential with the same weights; Keras' autodiff (`runtime.value_and_grad`:
jax.grad, tf.GradientTape or torch.autograd) gives the loss and the gradients w.r.t. the
input and every weight, and the hand-written ones are compared with them. Each
optimizer takes 10 steps from the same weights with the same gradients as its
keras.optimizers twin. The worked 2-2-1 example is run through Keras too.

`start(backend)` / `collect(proc)` run this module for another backend in a subprocess
(Keras fixes its backend at import), so one command can check every installed backend.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np

from keras_cases import runtime
from keras_cases.scratch import gradcheck, optimizers, worked_example
from keras_cases.scratch.conv import Conv2D
from keras_cases.scratch.layers import ACTIVATIONS, BatchNorm, Dense, Flatten
from keras_cases.scratch.rnn import SimpleRNN

STEPS = 10


@contextlib.contextmanager
def float64():
    """float64 for what is built inside (JAX's x64 switch stays on afterwards)."""
    saved = keras.config.floatx()
    runtime.enable_float64()
    try:
        yield
    finally:
        keras.config.set_floatx(saved)


# --- scratch network -> Keras model -------------------------------------------------
def keras_layer(layer):
    if isinstance(layer, Dense):
        return keras.layers.Dense(layer.params["kernel"].shape[1], use_bias="bias" in layer.params)
    if isinstance(layer, tuple(ACTIVATIONS.values())):
        return keras.layers.Activation(layer.name)
    if isinstance(layer, BatchNorm):
        return keras.layers.BatchNormalization(epsilon=layer.epsilon, momentum=layer.momentum)
    if isinstance(layer, Flatten):
        return keras.layers.Flatten()
    if isinstance(layer, Conv2D):
        kernel = layer.params["kernel"]
        return keras.layers.Conv2D(kernel.shape[3], kernel.shape[:2])
    if isinstance(layer, SimpleRNN):
        return keras.layers.SimpleRNN(layer.params["bias"].size,
                                      return_sequences=layer.return_sequences)
    raise TypeError(f"no Keras twin for {layer!r}")


def to_keras(net, input_shape):
    """A keras.Sequential with the scratch network's weights, and [(variable, layer, name)]
    pairing every trainable Keras weight with its scratch parameter."""
    twins = [keras_layer(layer) for layer in net.layers]
    model = keras.Sequential([keras.Input(input_shape), *twins])
    pairs = []
    for twin, layer in zip(twins, net.layers):
        for v in twin.trainable_weights:
            v.assign(layer.params[v.name])
            pairs.append((v, layer, v.name))
    return model, pairs


def keras_loss(loss):
    fn = getattr(keras.losses, loss.name)
    scale = getattr(loss, "scale", 1.0)
    return lambda y, p: scale * keras.ops.mean(fn(y, p))


# --- the checks ---------------------------------------------------------------------
def gradient_error(case) -> float:
    """Max relative error (loss, input and weight gradients) of scratch vs Keras."""
    model, pairs = to_keras(case.net, case.x.shape[1:])
    x = keras.Variable(case.x, name="x")
    loss_fn = keras_loss(case.loss)
    value, grads = runtime.value_and_grad(
        lambda: loss_fn(case.y, model(x.value, training=True)), [x] + [v for v, _, _ in pairs])
    mine_value, _ = case.analytic()  # fills layer.grads
    _, (dx, *_) = case.analytic()
    mine = [dx] + [layer.grads[name] for _, layer, name in pairs]
    return max([gradcheck.rel_error(value, mine_value)] +
               [gradcheck.rel_error(a, b) for a, b in zip(grads, mine, strict=True)])


def optimizer_pairs():
    """(scratch optimizer, Keras optimizer, clip norm) per rule; defaults where no args."""
    k = keras.optimizers
    return {
        "sgd": (optimizers.SGD(0.1), k.SGD(0.1), None),
        "momentum": (optimizers.SGD(0.1, momentum=0.9), k.SGD(0.1, momentum=0.9), None),
        "nesterov": (optimizers.SGD(0.1, 0.9, nesterov=True), k.SGD(0.1, 0.9, nesterov=True), None),
        "rmsprop (defaults)": (optimizers.RMSprop(), k.RMSprop(), None),
        "rmsprop centered+momentum": (optimizers.RMSprop(0.01, momentum=0.9, centered=True),
                                      k.RMSprop(0.01, momentum=0.9, centered=True), None),
        "adam (defaults)": (optimizers.Adam(), k.Adam(), None),
        "adam amsgrad": (optimizers.Adam(0.01, amsgrad=True), k.Adam(0.01, amsgrad=True), None),
        "sgd + global clipnorm 1.0": (optimizers.SGD(0.1), k.SGD(0.1, global_clipnorm=1.0), 1.0),
    }


def optimizer_diff(mine, theirs, clip, seed=0) -> float:
    """Max |w_scratch - w_keras| after STEPS steps from the same weights and gradients."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=s) for s in [(3, 4), (4,), (4, 2)]]
    variables = [keras.Variable(w) for w in weights]
    for _ in range(STEPS):
        grads = [rng.normal(size=w.shape) for w in weights]
        theirs.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads], variables))
        mine.step(weights, optimizers.clip_by_global_norm(grads, clip) if clip else grads)
    return max(float(np.max(np.abs(w - keras.ops.convert_to_numpy(v))))
               for w, v in zip(weights, variables))


def worked_example_keras(hidden="linear") -> dict:
    """The 2-2-1 example through Keras: output, loss, six gradients, loss after one step."""
    net, w = worked_example.network(hidden), worked_example
    model, pairs = to_keras(net, (2,))
    variables = [v for v, _, _ in pairs]
    loss_fn = keras_loss(w.MSE(scale=0.5))
    y_hat = float(keras.ops.convert_to_numpy(model(w.X))[0, 0])
    value, grads = runtime.value_and_grad(lambda: loss_fn(w.Y, model(w.X)), variables)
    keras.optimizers.SGD(w.LEARNING_RATE).apply_gradients(
        zip([keras.ops.convert_to_tensor(g) for g in grads], variables))
    after = float(keras.ops.convert_to_numpy(loss_fn(w.Y, model(w.X))))
    return {"y_hat": y_hat, "loss": value, "grads": [float(g) for g in w.as_w1_to_w6(*grads)],
            "loss_after": after}


def run_all(seed=0) -> dict:
    """Every check on the active backend; a JSON-able dict."""
    with float64():
        keras.utils.set_random_seed(seed)
        return {
            "backend": runtime.backend(),
            "keras_version": keras.__version__,
            "gradients": {name: gradient_error(case) for name, case in gradcheck.cases(seed).items()},
            "optimizers": {name: optimizer_diff(*pair) for name, pair in optimizer_pairs().items()},
            "worked_example": {h: worked_example_keras(h) for h in ("linear", "relu")},
        }


# --- other backends, in subprocesses ------------------------------------------------
def start(backend: str) -> subprocess.Popen:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, "-m", "keras_cases.scratch.keras_check"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def collect(proc: subprocess.Popen, timeout=300) -> dict:
    """The JSON a `start`ed check printed, or {"error": its last line of stderr}."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return {"error": f"timed out after {timeout} s"}
    if proc.returncode != 0:
        lines = err.strip().splitlines() or [f"exit code {proc.returncode}"]
        return {"error": lines[-1]}
    return json.loads(out.strip().splitlines()[-1])


def main():
    print(json.dumps(run_all()))


if __name__ == "__main__":
    main()
