"""Run in a subprocess by tests/test_rnn.py (one backend per process)."""

import contextlib
import io
import json
import runpy
import sys

import keras
import numpy as np
from keras import layers, ops

from keras_cases import cli
from keras_cases.rnn import case, cells, gradients, models
from keras_cases.rnn.tasks import CopyTask

out = sys.argv[1]
res = {}
rng = np.random.default_rng(0)
x = rng.normal(size=(3, 6, 4)).astype("float32")
sig = lambda z: 1.0 / (1.0 + np.exp(-z))
np_ = lambda t: np.asarray(ops.convert_to_numpy(t), "float64")


def outputs(layer, weights):
    layer(x[:1])
    layer.set_weights(weights)
    return np_(layer(x))


def ref_lstm(w, open_gate=None):  # NumPy, gates i, f, c, o
    k, r, b = (np.asarray(v, "float64") for v in w)
    u = r.shape[0]
    h, c, hs = np.zeros((len(x), u)), np.zeros((len(x), u)), []
    for t in range(x.shape[1]):
        z = x[:, t] @ k + h @ r + b
        i, f, o = sig(z[:, :u]), sig(z[:, u : 2 * u]), sig(z[:, 3 * u :])
        i, f, o = [np.ones_like(g) if open_gate == n else g for n, g in (("input", i), ("forget", f), ("output", o))]
        c = f * c + i * np.tanh(z[:, 2 * u : 3 * u])
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs, 1)


def ref_gru(w, open_gate=None):  # NumPy, reset_after: gates z, r, h
    k, rk, b = (np.asarray(v, "float64") for v in w)
    u = rk.shape[0]
    h, hs = np.zeros((len(x), u)), []
    for t in range(x.shape[1]):
        xz = x[:, t] @ k + b[0]
        hz = h @ rk + b[1]
        z = sig(xz[:, :u] + hz[:, :u])
        r = np.ones((len(x), u)) if open_gate == "reset" else sig(xz[:, u : 2 * u] + hz[:, u : 2 * u])
        h = z * h + (1 - z) * np.tanh(xz[:, 2 * u :] + r * hz[:, 2 * u :])
        hs.append(h)
    return np.stack(hs, 1)


# 1. no gate open: the custom cells are Keras' LSTM and GRU (same weights, same outputs)
# (unrolled: run eagerly, a Python loop of small ops beats compiling a scan on JAX)
# (and placeholder zeros: the weights are set below; random initialisers compile on JAX)
seq = {"return_sequences": True, "unroll": True}
zeros = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}
for kind, builtin, cell in (
    ("lstm", layers.LSTM(5, **seq, **zeros), cells.GatedLSTMCell(5, kernel_initializer="zeros")),
    ("gru", layers.GRU(5, **seq, **zeros), cells.GatedGRUCell(5, kernel_initializer="zeros")),
):
    builtin(x[:1])
    w = [rng.normal(0, 0.6, v.shape).astype("float32") for v in builtin.get_weights()]
    a, b = outputs(builtin, w), outputs(layers.RNN(cell, **seq), w)
    res[f"match_{kind}"] = float(np.max(np.abs(a - b)))
    res[f"ref_{kind}"] = float(np.max(np.abs(a - (ref_lstm if kind == "lstm" else ref_gru)(w))))

# 2. a gate held open: its pre-activation is pushed to -20 (so it would be shut), yet the
# layer computes the NumPy reference with that gate at 1, and its weights have no effect
u = 5
OPEN = [
    ("lstm", "input", 0, ref_lstm),
    ("lstm", "forget", 1, ref_lstm),
    ("lstm", "output", 3, ref_lstm),
    ("gru", "reset", 1, ref_gru),
]  # (cell, gate, its block in the weights, NumPy reference)
for kind, gate, block, ref in OPEN:
    cls = cells.GatedLSTMCell if kind == "lstm" else cells.GatedGRUCell
    make = lambda: cls(u, gate, kernel_initializer="zeros")
    layer = layers.RNN(make(), **seq)
    layer(x[:1])
    w = [rng.normal(0, 0.6, v.shape).astype("float32") for v in layer.get_weights()]
    sl = slice(block * u, (block + 1) * u)
    if kind == "lstm":
        w[2][sl] = -20.0
    else:
        w[2][:, sl] = -20.0
    got = outputs(layer, w)
    w2 = [v.copy() for v in w]
    w2[0][:, sl] += 3.0  # the open gate's input weights: must change nothing
    w2[1][:, sl] -= 3.0
    res[f"open_{kind}_{gate}"] = {
        "vs_reference": float(np.max(np.abs(got - ref(w, gate)))),
        "vs_shut": float(np.max(np.abs(got - ref(w, None)))),  # the gate at ~0 instead
        "weights_ignored": float(np.max(np.abs(outputs(layers.RNN(make(), **seq), w2) - got))),
    }

# 3. hidden-state gradients from the same NumPy-seeded weights (compared across backends),
# and the last step's against its closed form: dL/dh_T = W_dense (p - onehot(y))
task = CopyTask(6, 2, 4)
xs, ys = task.data(8, 0)
for kind in models.KINDS:
    res[f"grad_{kind}"] = gradients.probe_gradients(task, kind, 8, xs, ys, seed=0).tolist()
probe = models.build_copy_model(task, "lstm", 8, probe=True)
models.init_model(probe, 0, "chrono", task.steps)
p = np_(probe([xs, np.zeros((len(xs), task.steps, 8), "float32")]))[:, -1]
w_dense = np_(probe.get_layer("symbol").kernel)
closed = np.linalg.norm((p - np.eye(task.alphabet)[ys[:, -1]]) @ w_dense.T, axis=-1).mean()
res["grad_last_closed_form"] = [res["grad_lstm"][-1], float(closed)]

# 4. user mistakes: one line on stderr, exit code 2
for argv in (["--lengths", "20,x"], ["--studies", "gradients,bogus"], ["--alphabet", "1"], ["--units", "100000"]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli.run(case.main, argv + ["--out", out + "/bad", "-v", "0"])
    res.setdefault("bad_flags", []).append([argv, rc, err.getvalue()])


# 5. the --quick run, through the module's __main__ exactly as `python -m keras_cases.rnn`
# runs it (runpy, in this process: no second start-up), and its saved model loads back
def as_main(*argv):
    sys.argv = ["keras_cases.rnn", *argv]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            runpy.run_module("keras_cases.rnn", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        return e.code, err.getvalue()


res["main_bad_flag"] = as_main("--lengths", "10,-5", "--out", out + "/bad")
res["quick_rc"] = as_main("--quick", "--out", out + "/run", "-v", "0")[0]
res["loaded_params"] = keras.saving.load_model(out + "/run/model.keras", compile=False).count_params()
with open(out + "/checks.json", "w") as f:
    json.dump(res, f)
