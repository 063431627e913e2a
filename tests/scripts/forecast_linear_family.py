"""Run in a subprocess by tests/test_forecast.py (one backend per process): the linear-family
forecasters (DLinear, N-BEATS, the linear skip) against NumPy written out by hand."""

import json
import sys

import keras
import numpy as np
from keras import ops

from keras_cases import runtime
from keras_cases.forecast import baselines, models

out = sys.argv[1]
res = {}
rng = np.random.default_rng(0)
np_ = lambda t: np.asarray(ops.convert_to_numpy(t), "float64")  # noqa: E731
worst = lambda a, b: float(np.max(np.abs(np.asarray(a, "float64") - np.asarray(b, "float64"))))  # noqa: E731


def randomize(model, scale=0.3):
    """Every weight (biases too) drawn at random, so no term can hide behind a zero."""
    model.set_weights([rng.normal(0, scale, w.shape).astype("float32") for w in model.get_weights()])


# 1. DLinear's decomposition: the trend is a NumPy moving average of the edge-padded window
# (odd and even kernels, a kernel longer than the window), and trend + remainder = window
x = rng.normal(size=(4, 30, 3)).astype("float32")
res["moving_average"] = {}
for kernel in (25, 4, 41):
    inp = keras.Input((30, 3))
    trend = models.moving_average(inp, kernel)
    probe = keras.Model(inp, [trend, keras.layers.Subtract()([inp, trend])])
    t, r = (np_(v) for v in probe(x))
    padded = np.pad(x.astype("float64"), ((0, 0), ((kernel - 1) // 2, kernel // 2), (0, 0)), mode="edge")
    want = np.stack([padded[:, i : i + kernel].mean(axis=1) for i in range(30)], axis=1)
    res["moving_average"][kernel] = {"shape": list(t.shape), "trend": worst(t, want), "sum": worst(t + r, x)}

# 2. a DLinear whose two heads both hold the least-squares solution (intercept on one head)
# is that linear model: it reproduces Ridge(alpha=0) on the flattened window
n, L, F, H = 300, 12, 2, 3
xs = rng.normal(size=(n, L, F)).astype("float32")
ys = (xs.reshape(n, -1) @ rng.normal(size=(L * F, H)) + rng.normal(size=H) + 0.1 * rng.normal(size=(n, H))).astype(
    "float32"
)
design = np.concatenate([xs.reshape(n, -1), np.ones((n, 1))], axis=1).astype("float64")
coef = np.linalg.lstsq(design, ys.astype("float64"), rcond=None)[0]
dl = models.build_model("dlinear", L, F, H)
dl.get_layer("trend_head").set_weights([coef[:-1].astype("float32"), coef[-1].astype("float32")])
dl.get_layer("remainder_head").set_weights([coef[:-1].astype("float32"), np.zeros(H, "float32")])
ridge0 = baselines.ridge_forecaster(xs, ys, alpha=0.0)(xs)
res["dlinear_vs_ridge0"] = worst(np_(dl(xs)), ridge0)
res["dlinear_ridge0_scale"] = float(np.abs(ridge0).mean())
# and the saved model (ops in the graph: the edge padding) loads and predicts the same
dl.save(f"{out}/dlinear.keras")
res["dlinear_saved"] = worst(np_(keras.saving.load_model(f"{out}/dlinear.keras")(xs)), np_(dl(xs)))

# 3. N-BEATS, built to order: block i reads r_i (r_0 = the flattened window), the next block
# reads r_i - backcast_i, and the forecast is the sum of every block's forecast
inp = keras.Input((L, F))
nb = keras.Model(inp, models.nbeats(inp, H, blocks=3, depth=2, width=16))
randomize(nb)
relu = lambda z: np.maximum(z, 0)  # noqa: E731
w = lambda name: [np.asarray(v, "float64") for v in nb.get_layer(name).get_weights()]  # noqa: E731
r, total = xs.reshape(n, -1).astype("float64"), 0.0
for i in range(3):
    h = r
    for j in range(2):
        k, b = w(f"block{i}_fc{j}")
        h = relu(h @ k + b)
    kf, bf = w(f"block{i}_forecast")
    total = total + h @ kf + bf
    if i < 2:  # the last block's backcast would feed nothing
        kb, bb = w(f"block{i}_backcast")
        r = r - (h @ kb + bb)
got = np_(nb(xs))
res["nbeats"] = {
    "shape": list(got.shape),
    "backcast_shape": list(nb.get_layer("block0_backcast").output.shape[1:]),
    "error": worst(got, total),
    "scale": float(np.abs(total).mean()),
}
res["nbeats_default_shape"] = list(models.build_model("nbeats", L, F, H).output.shape[1:])

# 4. the linear skip: with the network branch's output layer at 0 the model is its linear part
# (flattened window @ W + b); with it switched on, it is branch + linear part
res["skip"] = {}
for kind in ("lstm_skip", "transformer_skip", "nbeats_skip"):
    m = models.build_model(kind, L, F, H, width=8)
    randomize(m)
    both = keras.Model(m.input, [m.get_layer("network_forecast").output, m.output])
    branch, full = (np_(v) for v in both(xs))
    k, b = (np.asarray(v, "float64") for v in m.get_layer("linear_skip").get_weights())
    linear = xs.reshape(n, -1) @ k + b
    for layer in m.layers:  # the branch's output layer(s) to 0 (N-BEATS: every block's forecast)
        if layer.name.endswith("_forecast") and layer.weights:
            layer.set_weights([np.zeros_like(v) for v in layer.get_weights()])
    res["skip"][kind] = {
        "zero_branch": worst(np_(m(xs)), linear),
        "sum": worst(full, branch + linear),
        "branch_scale": float(np.abs(branch).mean()),
    }
    # start_at_ridge: the model starts as Ridge (alpha 1) and only the network branch trains
    runtime.init_weights(m, 2)
    res["skip"][kind]["start_at_ridge"] = [
        models.start_at_ridge(m, xs, ys),
        worst(np_(m(xs)), baselines.ridge_forecaster(xs, ys)(xs)),
        m.get_layer("linear_skip").trainable,
        len(m.trainable_weights) < len(m.weights),
    ]
res["no_linear_part"] = [
    models.start_at_ridge(models.build_model(k, L, F, H, width=8), xs, ys) for k in ("lstm", "dlinear")
]

with open(f"{out}/checks.json", "w") as f:
    json.dump(res, f)
