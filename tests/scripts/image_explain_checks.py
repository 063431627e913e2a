"""ImagePredictor.explain on one backend (KERAS_BACKEND), for tests/test_image_explain.py:
prints one JSON line of checks. Every model is built here with set weights (no training).

- a "quadrant" model on 64x48 uint8 images, served from a fake run directory: class 0 sums
  the red channel of the top-left quadrant, class 1 the blue channel of the bottom-right one
  (a softmax output, so the logit copy is used); its heatmap through the predictor (pooled
  to 32 x 24) must sit where the predicted class looks
- a model without a convolution: a clear UserError
- where Grad-CAM looks in the cifar network and in transfer models (a nested backbone)
"""

import base64
import io
import json
import sys
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from keras_cases import UserError, runtime
from keras_cases.data.image_serving import ImagePredictor, cam_layer

out = Path(sys.argv[1])
H, W = 64, 48


def fake_run(d: Path, model, classes):
    d.mkdir(parents=True)
    runtime.save_model(model, d / "model.keras")
    (d / "run.json").write_text(
        json.dumps({"case": "cifar", "created": "2026-01-01T00:00:00+00:00", "status": "complete"})
    )
    (d / "metrics.json").write_text(json.dumps({"class_names": classes}))
    return ImagePredictor(d, "cifar")


def quadrant_model():
    i = keras.Input((H, W, 3), dtype="uint8", name="pixels")
    x = keras.layers.Rescaling(1 / 255, name="scale")(i)
    conv = keras.layers.Conv2D(3, 1, use_bias=False, activation="relu", name="conv")
    x = keras.layers.Flatten()(conv(x))
    dense = keras.layers.Dense(2, activation="softmax", name="class")
    m = keras.Model(i, dense(x))
    conv.set_weights([np.eye(3, dtype="float32").reshape(1, 1, 3, 3)])
    w = np.zeros((H, W, 3, 2), "float32")
    w[: H // 2, : W // 2, 0, 0] = 1  # class 0: red, top left
    w[H // 2 :, W // 2 :, 2, 1] = 1  # class 1: blue, bottom right
    dense.set_weights([w.reshape(-1, 2) / 50, np.zeros(2, "float32")])
    return m


def png(px) -> str:
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def images():
    """Image 0: a red square top left and a smaller blue one bottom right (class 0 wins);
    image 1: only a blue square bottom right."""
    a = np.zeros((2, H, W, 3), np.uint8)
    a[0, 6:22, 5:19, 0] = 255
    a[0, 40:46, 30:36, 2] = 255
    a[1, 38:58, 28:44, 2] = 255
    return a


checks = {}
pred = fake_run(out / "quadrant", quadrant_model(), ["red", "blue"])
px = images()
res = pred.explain([{"image": png(p)} for p in px])
checks["predictions_match"] = [r["prediction"] for r in res] == pred.predict([{"image": png(p)} for p in px])
checks["targets"] = [r["explanation"]["target"] for r in res]
checks["classes"] = [r["prediction"]["class"] for r in res]
checks["items"] = [r["explanation"]["items"] for r in res]
checks["method"] = res[0]["explanation"]["method"]
maps = [np.asarray(r["explanation"]["heatmap"]) for r in res]
checks["shape"] = [list(m.shape) for m in maps]
checks["range"] = [float(min(m.min() for m in maps)), float(max(m.max() for m in maps))]
checks["finite"] = bool(all(np.isfinite(m).all() for m in maps))
checks["top_left_mass"] = float(maps[0][:16, :12].sum() / maps[0].sum())
checks["bottom_right_mass"] = float(maps[1][16:, 12:].sum() / maps[1].sum())
checks["json"] = len(json.dumps(res)) > 0

# no convolution: one clear sentence
i = keras.Input((8, 8, 3), dtype="uint8", name="pixels")
flat = keras.Model(
    i, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(i)))
)
mlp = fake_run(out / "mlp", flat, ["a", "b"])
try:
    mlp.explain([{"image": png(np.zeros((8, 8, 3), np.uint8))}])
    checks["no_conv_error"] = None
except UserError as e:
    checks["no_conv_error"] = str(e)
try:
    mlp.explain([{"image": "%%%"}])
    checks["bad_instance_error"] = None
except UserError as e:
    checks["bad_instance_error"] = str(e)

# where Grad-CAM looks in the real networks
from keras_cases.backbones import build_backbone  # noqa: E402
from keras_cases.cifar import Recipe, build_model  # noqa: E402
from keras_cases.transfer import training  # noqa: E402

with keras.StatelessScope(initialize_variables=False):  # the graph only: no weights drawn (on JAX, compiles)
    checks["cifar_layer"] = cam_layer(build_model(Recipe(widths=(8, 16, 32))))
base = build_backbone((4, 8), size=16)
tm = training.build_model(base, [], 24, 16, 3, 0)
checks["transfer_layer"] = cam_layer(tm)
runtime.init_weights(base, 1)
tp = fake_run(out / "transfer", tm, ["a", "b", "c"])
r = tp.explain([{"image": png(p)} for p in np.random.default_rng(0).integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)])
checks["transfer_shape"] = list(np.asarray(r[0]["explanation"]["heatmap"]).shape)
checks["transfer_method"] = r[0]["explanation"]["method"]
print(json.dumps(checks))
