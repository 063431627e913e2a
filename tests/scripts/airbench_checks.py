"""airbench94's pieces on the active backend; prints one JSON line of what it measured:

- params: the full network's parameter count (all, trainable);
- dirac: the largest |output - input| of a fresh block conv on its first c_in channels
  (0: an identity map), and how far the other channels are from the input (not 0);
- whiten: the covariance of the whitening layer's output (before its GELU) on training
  patches: the largest off-diagonal entry and the diagonal's range, and the raw patches'
  condition number for contrast;
- bias_lr: how much further one SGD step moves a ScaledBias(8) than a ScaledBias(1);
- lookahead: the largest difference between AirbenchSGD's weights after a short fit and a
  NumPy re-implementation (Nesterov, L2 through the momentum, lookahead, final average),
  and how far lookahead moved them (so a no-op lookahead would show).
"""

import json

import keras
import numpy as np

from keras_cases.cifar.airbench94 import AirbenchSGD, ScaledBias
from keras_cases.cifar.model import RECIPES, build_model, initialise
from keras_cases.data import images

out = {}
r = RECIPES["airbench94"]
x = images.cifar10_per_class(10).x_train  # 100 training images: 96,100 patches of 2x2
m = build_model(r)
initialise(m, r, 0, x)
out["params"] = [m.count_params(), sum(int(np.prod(v.shape)) for v in m.trainable_weights)]

rng = np.random.default_rng(0)
dirac = []
for name in ("block1_conv1", "block2_conv1"):  # 24 -> 64 and 64 -> 256 channels
    conv = m.get_layer(name)
    c_in = conv.input.shape[-1]
    z = rng.normal(size=(2, 8, 8, c_in)).astype("float32")
    y = keras.ops.convert_to_numpy(conv(z))
    n = min(c_in, y.shape[-1])
    dirac.append([float(np.abs(y[..., :n] - z[..., :n]).max()), float(np.abs(y[..., n:]).mean())])
out["dirac"] = dirac

sub = keras.Model(m.input, m.get_layer("whiten_bias").output)
w = keras.ops.convert_to_numpy(sub(x.astype("float32"))).reshape(-1, sub.output.shape[-1]).astype("float64")
half = w.shape[1] // 2
cov = np.cov(w[:, :half], rowvar=False)
xs = x.astype("float64") / 255
patches = np.stack([xs[:, i : i + 31, j : j + 31] for i in range(2) for j in range(2)], axis=3).reshape(-1, 12)
raw = np.linalg.eigvalsh(np.cov(patches, rowvar=False))
out["whiten"] = {
    "mean": float(np.abs(w.mean(0)).max()),
    "off_diagonal": float(np.abs(cov - np.diag(np.diag(cov))).max()),
    "diagonal": [float(np.diag(cov).min()), float(np.diag(cov).max())],
    "raw_condition": float(raw.max() / raw.min()),
    "signs": float(np.abs(w[:, half:] + w[:, :half]).max()),
}

moved = []
for scale in (8.0, 1.0):
    inp = keras.Input((3,))
    net = keras.Model(inp, ScaledBias(scale)(inp))
    net.compile(keras.optimizers.SGD(0.01), "mse")
    net.train_on_batch(np.zeros((4, 3), "float32"), np.ones((4, 3), "float32"))
    moved.append(float(scale * keras.ops.convert_to_numpy(net.layers[1].theta)[0]))
out["bias_lr"] = moved[0] / moved[1]


def reference(w0, data, targets, steps, lr, mom, l2, start, every, total):
    """NumPy: Keras' Nesterov SGD with an L2 gradient, airbench's lookahead, final average."""
    w, m, slow = w0.copy(), np.zeros_like(w0), None
    for t in range(1, steps + 1):
        g = 2 * data.T @ (data @ w - targets) / targets.size + l2 * w
        m = mom * m - lr * g
        w = w + mom * m - lr * g
        if t >= start and t % every == 0:
            if slow is None or t < start + every:
                slow = w.copy()
            else:
                rho = 0.95**every * min(t / total, 1.0) ** 3
                slow = rho * slow + (1 - rho) * w
            w = slow.copy()
    return slow if slow is not None else w


data = rng.normal(size=(16, 4)).astype("float32")
targets = rng.normal(size=(16, 2)).astype("float32")
w0 = rng.normal(size=(4, 2)).astype("float32")
finals = {}
for look in (13, 0):
    inp = keras.Input((4,))
    net = keras.Model(inp, keras.layers.Dense(2, use_bias=False)(inp))
    net.layers[1].set_weights([w0])
    opt = AirbenchSGD(0.05, momentum=0.85, l2=0.01, lookahead_steps=look, lookahead_start=3, lookahead_every=2)
    net.compile(opt, "mse")
    net.fit(data, targets, batch_size=16, epochs=13, shuffle=False, verbose=0)  # ends off a lookahead step
    finals[look] = net.layers[1].get_weights()[0]
want = reference(w0.astype("float64"), data, targets, 13, 0.05, 0.85, 0.01, 3, 2, 13)
plain = reference(w0.astype("float64"), data, targets, 13, 0.05, 0.85, 0.01, 10**9, 2, 13)
out["lookahead"] = {
    "error": float(np.abs(finals[13] - want).max()),
    "plain_error": float(np.abs(finals[0] - plain).max()),
    "effect": float(np.abs(want - plain).max()),
}
print(json.dumps(out))
