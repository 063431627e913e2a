"""Two epochs of the CIFAR network on random images, on the active backend: the fixed
whitening layer must not change, the first block's convolution must. Prints "ok"."""

import keras  # noqa: F401  (the backend starts here, as in a case)
import numpy as np

from keras_cases.cifar.model import Recipe, build_model, compile_model, initialise

r = Recipe(widths=(8, 8, 8))
x = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3)).astype("uint8")
y = np.eye(10, dtype="float32")[np.arange(64) % 10]
m = build_model(r)
initialise(m, r, 0, x)
compile_model(m, r, 10)
before = [w.copy() for w in m.get_layer("whiten").get_weights()]
conv = m.get_layer("block1_conv1").get_weights()[0].copy()
m.fit(x, y, batch_size=32, epochs=2, verbose=0)
assert all(np.array_equal(a, b) for a, b in zip(before, m.get_layer("whiten").get_weights()))
assert not np.allclose(conv, m.get_layer("block1_conv1").get_weights()[0])
print("ok")
