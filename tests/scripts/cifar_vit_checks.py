"""The CIFAR vision transformer on the active backend; prints one JSON line of findings.

- `params`: (count_params, vit_params formula, output shape) for a few widths/depths/patches
- `attention_error`: the largest difference between `attention_maps(...)["last block"]` and
  the class token's attention recomputed in NumPy from the last block's input and its
  query/key weights (head mean, renormalised over the patches); `map_shape`, `map_sums`
- `saved_error`, `saved_maps_error`: predictions and attention maps of the model after a
  save / load round trip, against before
- `loss_first` / `loss_last`, `test_accuracy`, `n_test`: the --quick ViT recipe (random
  erasing on, sized to the quick CNN) trained with `train` for 4 epochs on 100 images per class
"""

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

from keras_cases import runtime
from keras_cases.cifar.model import RECIPES, Recipe, accuracy, build_model
from keras_cases.cifar.training import train
from keras_cases.cifar.vit import attention_maps, key_dim, size_vit, vit_params
from keras_cases.data import images
from keras_cases.runs import load_model

out = {"params": []}
v = RECIPES["vit"]
for dim, depth, patch, mlp, heads, shape, k in (
    (96, 4, 4, 2, 4, (32, 32, 3), 10),
    (30, 2, 8, 3, 4, (32, 32, 3), 7),  # width not a multiple of the heads
    (16, 1, 2, 1, 2, (8, 8, 1), 3),
):
    r = replace(v, dim=dim, depth=depth, patch=patch, mlp_ratio=mlp, heads=heads)
    m = build_model(r, shape, k)
    n_out = keras.ops.convert_to_numpy(m(np.zeros((3, *shape), "uint8"))).shape
    out["params"].append([m.count_params(), vit_params(r, shape, k), list(n_out), [3, k]])

# the class token's attention, recomputed from the weights
r = replace(v, dim=24, depth=2, heads=3, patch=4)
m = build_model(r)
runtime.init_weights(m, 1)
x = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype("uint8")
maps = attention_maps(m, x)
h = keras.Model(m.inputs, m.get_layer("block2_ln1").output).predict(x, verbose=0).astype("float64")
qk, qb, kk, kb = [w.astype("float64") for w in m.get_layer("block2_attn").get_weights()[:4]]
q = np.einsum("btd,dhk->bthk", h, qk) + qb
kv = np.einsum("btd,dhk->bthk", h, kk) + kb
s = np.einsum("bqhk,bthk->bhqt", q, kv) / np.sqrt(key_dim(r))
a = np.exp(s - s.max(-1, keepdims=True))
a /= a.sum(-1, keepdims=True)
cls = a[:, :, 0, 1:].mean(1)
cls /= cls.sum(1, keepdims=True)
out["attention_error"] = float(np.abs(maps["last block"].reshape(6, -1) - cls).max())
out["attention_spread"] = float(cls.max() - cls.min())  # not uniform: the check has teeth
out["map_shape"] = {k: list(v.shape) for k, v in maps.items()}
out["map_sums"] = {k: v.sum(axis=(1, 2)).tolist() for k, v in maps.items()}

# train the --quick ViT: sized to the quick CNN (widths 8,16,32), depth 2, random erasing
d = images.cifar10_per_class(100)
cnn = build_model(Recipe(widths=(8, 16, 32)), d.x_train.shape[1:], d.n_classes).count_params()
r = size_vit(replace(v, depth=2, batch_size=40), cnn)
model, hist = train(r, d, 0, 4, verbose=0)
out.update(
    loss_first=hist["loss"][0],
    loss_last=hist["loss"][-1],
    n_test=len(d.y_test),
    test_accuracy=accuracy(model, d.x_test, d.y_test, tta=True),
    params_vit=model.count_params(),
    params_cnn=cnn,
)
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "model.keras"
    runtime.save_model(model, path)
    again = load_model(path)
    before = model.predict(d.x_test[:16], verbose=0)
    out["saved_error"] = float(np.abs(again.predict(d.x_test[:16], verbose=0) - before).max())
    out["saved_maps_error"] = float(
        np.abs(attention_maps(again, d.x_test[:4])["rollout"] - attention_maps(model, d.x_test[:4])["rollout"]).max()
    )
json.dump(out, sys.stdout)
print()
