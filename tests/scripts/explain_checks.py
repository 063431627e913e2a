"""keras_cases.explain on one backend (KERAS_BACKEND): prints a JSON line of checks and saves
the attributions to argv[1] (.npz) so the test can compare backends.

Weights come from runtime.init_weights (NumPy, seeded), so every backend explains the same model.
"""

import json
import sys

import keras
import numpy as np

from keras_cases import explain, runtime

out_path = sys.argv[1]
rng = np.random.default_rng(0)


def smooth_net():
    """A small tanh network with a softmax over 3 classes (smooth, so IG converges fast)."""
    i = keras.Input((6,))
    h = keras.layers.Dense(16, activation="tanh")(i)
    h = keras.layers.Dense(16, activation="tanh")(h)
    m = keras.Model(i, keras.layers.Dense(3, activation="softmax")(h))
    runtime.init_weights(m, seed=3)
    return m


def relu_cnn():
    """A ReLU CNN on 12x12x2 images, two logits."""
    i = keras.Input((12, 12, 2))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(i)
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    m = keras.Model(i, keras.layers.Dense(2, name="logits")(h))
    runtime.init_weights(m, seed=5)
    # biases that are not zero, so the ReLUs switch along the path (with zero biases the net
    # is positively homogeneous and IG is exact at any step count)
    b = np.random.default_rng(6)
    m.set_weights([w if w.ndim > 1 else b.normal(0, 0.3, w.shape).astype("float32") for w in m.get_weights()])
    return m


def quadrant_net():
    """Input channel c holds quadrant c's object; a 1x1 stride-2 identity conv keeps the four
    channels (8x8 maps); class 0 sums channel 0 (the top-left object), class 1 channel 3."""
    i = keras.Input((16, 16, 4))
    conv = keras.layers.Conv2D(4, 1, strides=2, use_bias=False, name="conv")
    h = keras.layers.Flatten()(conv(i))
    dense = keras.layers.Dense(2, use_bias=False)
    m = keras.Model(i, dense(h))
    conv.set_weights([np.eye(4, dtype="float32").reshape(1, 1, 4, 4)])
    w = np.zeros((8, 8, 4, 2), "float32")
    w[:, :, 0, 0], w[:, :, 3, 1] = 1, 1
    dense.set_weights([w.reshape(256, 2)])
    return m


checks = {}

# 1. a linear model: gradient = w and IG = w * (x - baseline), exactly
i = keras.Input((5,))
lin_layer = keras.layers.Dense(1)
lin = keras.Model(i, lin_layer(i))
w = np.array([[0.5], [-1.0], [2.0], [0.0], [0.25]], "float32")
lin_layer.set_weights([w, np.array([0.3], "float32")])
xl = rng.normal(size=(7, 5)).astype("float32")
checks["linear_grad_err"] = float(np.abs(explain.gradient(lin, xl) - w[:, 0]).max())
checks["linear_ig_err"] = float(np.abs(explain.integrated_gradients(lin, xl, steps=4) - xl * w[:, 0]).max())

# 2. completeness on the smooth net and on the ReLU CNN, and its error as steps grow
net, x = smooth_net(), rng.normal(size=(20, 6)).astype("float32")
target = rng.integers(0, 3, size=20)
gap = explain.scores(net, x, target) - explain.scores(net, np.zeros_like(x), target)
ig = explain.integrated_gradients(net, x, target)
checks["smooth_completeness_rel"] = float(np.abs(ig.sum(1) - gap).max() / np.abs(gap).max())
cnn, xi = relu_cnn(), rng.uniform(0, 1, size=(6, 12, 12, 2)).astype("float32")
gap_i = explain.scores(cnn, xi, 1) - explain.scores(cnn, np.zeros_like(xi), 1)
errs = {"default": explain.integrated_gradients(cnn, xi, 1)}
errs["default"] = float(np.abs(errs["default"].reshape(6, -1).sum(1) - gap_i).max() / np.abs(gap_i).max())
for steps in (2, 8, 32, 128):
    a = explain.integrated_gradients(cnn, xi, 1, steps=steps)
    errs[steps] = float(np.abs(a.reshape(6, -1).sum(1) - gap_i).max() / np.abs(gap_i).max())
checks["cnn_completeness_rel"] = errs

# 3. SmoothGrad: zero noise is the gradient; tiny noise is close to it
g = explain.gradient(net, x, target)
checks["smoothgrad_zero_err"] = float(np.abs(explain.smoothgrad(net, x, target, noise=0.0) - g).max())
checks["smoothgrad_tiny_err"] = float(np.abs(explain.smoothgrad(net, x, target, noise=1e-4, samples=4) - g).max())
checks["grad_scale"] = float(np.abs(g).max())

# 4. Grad-CAM on the quadrant model: mass where the class looks
img = np.zeros((2, 16, 16, 4), "float32")
for c, (r0, c0) in enumerate([(0, 0), (0, 8), (8, 0), (8, 8)]):
    img[:, r0 + 2 : r0 + 6, c0 + 2 : c0 + 6, c] = 1.0
qm = quadrant_net()
cam = explain.grad_cam(qm, img, target=np.array([0, 1]), layer="conv")
checks["cam_shape"] = list(cam.shape)
checks["cam_top_left"] = float(cam[0, :8, :8].sum() / cam[0].sum())
checks["cam_bottom_right"] = float(cam[1, 8:, 8:].sum() / cam[1].sum())
checks["cam_range"] = [float(cam.min()), float(cam.max())]
cam_cnn = explain.grad_cam(cnn, xi, target=0)  # the default layer: the last 4-D output (conv2)
checks["cnn_cam_shape"] = list(cam_cnn.shape)

np.savez(out_path, ig=ig, grad=g, cnn_ig=explain.integrated_gradients(cnn, xi, 1), cam=cam_cnn)
print(json.dumps(checks))
