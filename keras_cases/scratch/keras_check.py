"""The scratch networks and optimizers against Keras, on the active backend, in float64.

    KERAS_BACKEND=torch python -m keras_cases.scratch.keras_check     # prints one JSON line

For every gradient case (`gradcheck.cases()`) the scratch network is rebuilt as a
keras.Sequential with the same weights; Keras' autodiff (`runtime.value_and_grad`:
jax.grad, tf.GradientTape or torch.autograd) gives the loss and the gradients w.r.t. the
input and every weight, and the hand-written ones are compared with them. Each
optimizer takes 10 steps from the same weights with the same gradients as its
keras.optimizers twin. The worked 2-2-1 example is run through Keras too.

`python -m keras_cases.scratch` runs this module once per installed backend, each in
its own process (Keras fixes its backend at import): see `case.start_checks`.
"""

from __future__ import annotations

import contextlib
import json

import keras
import numpy as np

from keras_cases import runtime
from keras_cases.scratch import gradcheck, optimizers, worked_example
from keras_cases.scratch.conv import Conv2D
from keras_cases.scratch.layers import ACTIVATIONS, INITIALIZERS, BatchNorm, Dense, Flatten
from keras_cases.scratch.rnn import SimpleRNN

STEPS = 10


@contextlib.contextmanager
def float64():
    """float64 for what runs inside (JAX's x64 switch stays on afterwards).

    Besides floatx this lifts Keras' demotion of float64 op results to float32 on JAX
    and torch (`keras.src.backend.common.dtypes.BIT64_TO_BIT32_DTYPE`, Keras 3.15:
    a float64 Dense computes its matmul in float32; keras-team/keras#23704).
    """
    from keras.src.backend.common import dtypes

    demote = getattr(dtypes, "BIT64_TO_BIT32_DTYPE", {})
    saved = keras.config.floatx(), dict(demote)
    runtime.enable_float64()
    demote.pop("float64", None)
    try:
        yield
    finally:
        keras.config.set_floatx(saved[0])
        demote.clear()
        demote.update(saved[1])


# --- scratch network -> Keras model -------------------------------------------------
def given(value):
    """A Keras initializer that returns the scratch network's array (no random draws)."""
    return lambda shape, dtype=None: keras.ops.convert_to_tensor(value, dtype=dtype)


def keras_layer(layer, weights=True):
    """The Keras twin of a scratch layer; with `weights`, initialised to its weights."""
    p = {name: given(value) if weights else None for name, value in layer.params.items()}
    init = lambda **names: {k: p[v] for k, v in names.items() if p.get(v)}  # noqa: E731
    if isinstance(layer, Dense):
        return keras.layers.Dense(
            layer.params["kernel"].shape[1],
            use_bias="bias" in p,
            **init(kernel_initializer="kernel", bias_initializer="bias"),
        )
    if isinstance(layer, tuple(ACTIVATIONS.values())):
        return keras.layers.Activation(layer.name)
    if isinstance(layer, BatchNorm):
        return keras.layers.BatchNormalization(
            epsilon=layer.epsilon, momentum=layer.momentum, **init(gamma_initializer="gamma", beta_initializer="beta")
        )
    if isinstance(layer, Flatten):
        return keras.layers.Flatten()
    if isinstance(layer, Conv2D):
        kernel = layer.params["kernel"]
        return keras.layers.Conv2D(
            kernel.shape[3], kernel.shape[:2], **init(kernel_initializer="kernel", bias_initializer="bias")
        )
    if isinstance(layer, SimpleRNN):
        return keras.layers.SimpleRNN(
            layer.params["bias"].size,
            return_sequences=layer.return_sequences,
            **init(kernel_initializer="kernel", recurrent_initializer="recurrent_kernel", bias_initializer="bias"),
        )
    raise TypeError(f"no Keras twin for {layer!r}")


def to_keras(net, input_shape, weights=True):
    """A keras.Sequential with the scratch network's weights, and [(variable, layer, name)]
    pairing every trainable Keras weight with its scratch parameter.

    weights=True builds the layers with the scratch weights as initializers (no random
    draws: fast on JAX); weights=False builds them with Keras' default initializers and
    copies the weights in, so the model saves without the (lambda) initializers.
    """
    twins = [keras_layer(layer, weights) for layer in net.layers]
    model = keras.Sequential([keras.Input(input_shape), *twins])
    pairs = [(v, layer, v.name) for twin, layer in zip(twins, net.layers) for v in twin.trainable_weights]
    if not weights:
        for v, layer, name in pairs:
            v.assign(layer.params[name])
        for twin, layer in zip(twins, net.layers):
            if isinstance(layer, BatchNorm):
                twin.moving_mean.assign(layer.moving_mean)
                twin.moving_variance.assign(layer.moving_variance)
    return model, pairs


def keras_loss(loss):
    """The Keras twin of a scratch loss: keras.losses.<name>, averaged over the batch."""
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
        lambda: loss_fn(case.y, model(x.value, training=True)), [x] + [v for v, _, _ in pairs]
    )
    mine_value, (dx, *_) = case.analytic()  # also fills every layer.grads
    mine = [dx] + [layer.grads[name] for _, layer, name in pairs]
    return max(
        [gradcheck.rel_error(value, mine_value)] + [gradcheck.rel_error(a, b) for a, b in zip(grads, mine, strict=True)]
    )


def optimizer_pairs():
    """(scratch optimizer, Keras optimizer, clip norm) per update rule.

    SGD's momentum and Adam's betas are float32-exact here (0.875, 0.998046875): Keras
    applies them through `ops.cast(python_float, float64)`, which on TensorFlow rounds
    to float32 first (tf.cast of a Python float), so 0.9 would differ by 2e-8 there.
    The defaults themselves are compared by `optimizer_defaults`.
    """
    k, o = keras.optimizers, optimizers
    b1, b2 = 0.875, 1 - 2**-9
    return {
        "sgd": (o.SGD(0.125), k.SGD(0.125), None),
        "momentum": (o.SGD(0.125, momentum=0.875), k.SGD(0.125, momentum=0.875), None),
        "nesterov": (o.SGD(0.125, 0.875, nesterov=True), k.SGD(0.125, 0.875, nesterov=True), None),
        "rmsprop (defaults)": (o.RMSprop(), k.RMSprop(), None),
        "rmsprop centered+momentum": (
            o.RMSprop(0.01, momentum=0.9, centered=True),
            k.RMSprop(0.01, momentum=0.9, centered=True),
            None,
        ),
        "adam": (o.Adam(beta_1=b1, beta_2=b2), k.Adam(beta_1=b1, beta_2=b2), None),
        "adam amsgrad": (o.Adam(0.01, b1, b2, amsgrad=True), k.Adam(0.01, b1, b2, amsgrad=True), None),
        "sgd + global clipnorm 1.0": (o.SGD(0.125), k.SGD(0.125, global_clipnorm=1.0), 1.0),
    }


def optimizer_defaults() -> dict[str, list[str]]:
    """Per optimizer, the constructor defaults that differ from keras.optimizers' (none)."""
    import inspect

    def defaults(cls):
        return {
            n: p.default
            for n, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty
        }

    out = {}
    for name in ("SGD", "RMSprop", "Adam"):
        mine, theirs = defaults(getattr(optimizers, name)), defaults(getattr(keras.optimizers, name))
        out[name] = [f"{n}={v!r} (Keras {theirs.get(n)!r})" for n, v in mine.items() if theirs.get(n, object()) != v]
    return out


def optimizer_diff(mine, theirs, clip, seed=0) -> float:
    """Max |w_scratch - w_keras| after STEPS steps from the same weights and gradients."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=s) for s in [(3, 4), (4,), (4, 2)]]
    variables = [keras.Variable(w) for w in weights]
    for _ in range(STEPS):
        grads = [rng.normal(size=w.shape) for w in weights]
        theirs.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads], variables))
        mine.step(weights, optimizers.clip_by_global_norm(grads, clip) if clip else grads)
    return max(float(np.max(np.abs(w - keras.ops.convert_to_numpy(v)))) for w, v in zip(weights, variables))


def worked_example_keras(hidden="linear") -> dict:
    """The 2-2-1 example through Keras: output, loss, six gradients, loss after one step."""
    net, w = worked_example.network(hidden), worked_example
    model, pairs = to_keras(net, (2,))
    variables = [v for v, _, _ in pairs]
    loss_fn = keras_loss(w.MSE(scale=0.5))
    y_hat = float(keras.ops.convert_to_numpy(model(w.X))[0, 0])
    value, grads = runtime.value_and_grad(lambda: loss_fn(w.Y, model(w.X)), variables)
    keras.optimizers.SGD(w.LEARNING_RATE).apply_gradients(
        zip([keras.ops.convert_to_tensor(g) for g in grads], variables)
    )
    after = float(keras.ops.convert_to_numpy(loss_fn(w.Y, model(w.X))))
    return {"y_hat": y_hat, "loss": value, "grads": [float(g) for g in w.as_w1_to_w6(*grads)], "loss_after": after}


def initializer_stats(shape=(200, 300), seed=0) -> dict:
    """Per initializer, (std, max |w|) of a scratch draw and of a Keras draw of `shape`:
    the same distribution gives the same numbers to sampling error (~0.3% for the std)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, init in INITIALIZERS.items():
        mine = init(shape, rng)
        theirs = keras.ops.convert_to_numpy(keras.initializers.get(name)(shape))
        out[name] = {
            "std": [float(mine.std()), float(theirs.std())],
            "max_abs": [float(np.abs(mine).max()), float(np.abs(theirs).max())],
        }
    return out


def output_dtype() -> str:
    """The dtype a float64 Dense layer computes in (float64, unless Keras demotes it)."""
    dense = keras.layers.Dense(2)
    return keras.backend.standardize_dtype(dense(np.ones((1, 3))).dtype)


def run_all(seed=0) -> dict:
    """Every check on the active backend; a JSON-able dict."""
    with float64():
        runtime.set_seed(seed)
        return {
            "backend": runtime.backend(),
            "keras_version": keras.__version__,
            "gradients": {name: gradient_error(case) for name, case in gradcheck.cases(seed).items()},
            "optimizer_steps": STEPS,
            "optimizers": {name: optimizer_diff(*pair) for name, pair in optimizer_pairs().items()},
            "optimizer_defaults": optimizer_defaults(),
            "output_dtype": output_dtype(),
            "worked_example": {h: worked_example_keras(h) for h in ("linear", "relu")},
            "initializers": initializer_stats(),
        }


def main():
    runtime.set_threads(1)  # tiny tensors: thread hand-offs would cost more than the work
    print(json.dumps(run_all()))


if __name__ == "__main__":
    main()
