"""The hand-written CIFAR step of benchmarks/raw_cifar.py against Keras' own, from the same
weights and batch, on the backend it runs on (jax: raw JAX; torch: raw PyTorch): the loss of
the first step and the weights after two steps (momentum included) must match.

    KERAS_BACKEND=jax python raw_cifar_parity.py OUT.json
"""

import json
import sys

import keras
import numpy as np

from benchmarks import raw_cifar
from keras_cases import runtime
from keras_cases.cifar.model import Recipe, build_model, compile_model, initialise


def main(out):
    r = Recipe(widths=(8, 16), schedule="constant", lr=0.05)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)  # the speed and the algebra do not need real pixels
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, 32)]
    model = build_model(r, (16, 16, 3))
    initialise(model, r, 0, x)
    compile_model(model, r, 100)
    w0 = raw_cifar.weights_of(model)
    args = (r.lr, r.momentum, r.weight_decay, r.label_smoothing, not r.whiten)
    if runtime.backend() == "jax":
        step, p, s, stats = raw_cifar.jax_trainer(w0, *args)
        p, s, stats, loss1 = step(p, s, stats, x, y)
        p, s, stats, _ = step(p, s, stats, x[::-1], y[::-1])
        raw = raw_cifar.to_keras_layout(p)
        loss1 = float(loss1)
    else:
        step, p = raw_cifar.torch_trainer(w0, *args)
        loss1 = step(x, y)
        step(x[::-1].copy(), y[::-1].copy())
        raw = raw_cifar.to_keras_layout(p, torch_layout=True)
    k_loss1 = float(np.asarray(model.train_on_batch(x, y))[0])  # [loss, accuracy]
    model.train_on_batch(x[::-1], y[::-1])
    kw = raw_cifar.weights_of(model)
    diffs = {}
    for name, arrs in raw.items():
        for i, a in enumerate(arrs):
            ref = kw[name][i]
            diffs[f"{name}/{i}"] = float(np.max(np.abs(a - ref)) / (np.max(np.abs(ref)) + 1e-12))
    moved = float(max(np.max(np.abs(kw[k][0] - w0[k][0])) for k in kw if k != "whiten"))
    json.dump({"loss": loss1, "keras_loss": k_loss1, "rel_diff": diffs, "moved": moved}, open(out, "w"))


if __name__ == "__main__":
    keras.utils.set_random_seed(0)
    main(sys.argv[1])
