"""Serving a saved image classifier: `decode_bytes` (one uploaded image as the pixels the
model was trained on) and `ImagePredictor` (what `serve` uses for the image cases).
Re-exported by `data.images`.
"""

from __future__ import annotations

import numpy as np

from keras_cases import UserError


def decode_bytes(data: bytes, size: tuple[int, int], channels: int = 3) -> np.ndarray:
    """One uploaded image (any format PIL reads) as uint8 (h, w, channels), resized the way
    training images were."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB" if channels == 3 else "L")
            if im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            x = np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise UserError(f"the upload is not a readable image ({type(e).__name__})")
    return x.reshape(size[0], size[1], channels)


class ImagePredictor:
    """A saved image-classifier run (model.keras taking uint8 pixels, class names in
    metrics.json): what `serve` uses for the image cases. Instances are {"image": base64}
    (JSON) or raw image bytes (`POST /predict/image`)."""

    FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")  # what an upload may be (PIL names)
    MAX_PIXELS = 4096 * 4096  # checked on the header, before anything is decoded

    def __init__(self, run_dir, case: str):
        from keras_cases.runs import load_model, load_run, read_json, run_case

        self.case = case
        self.dir = load_run(run_dir, ("model.keras",))
        if (self.dir / "run.json").exists() and run_case(self.dir) != case:
            raise UserError(f"{self.dir} is a {run_case(self.dir)} run, not a {case} run")
        self.metrics = read_json(self.dir / "metrics.json")
        self.model = load_model(self.dir / "model.keras")
        shape, out = self.model.input_shape, self.model.output_shape
        if not (isinstance(shape, tuple) and len(shape) == 4 and shape[1] and shape[2] and shape[3] in (1, 3)):
            raise UserError(f"{self.dir / 'model.keras'} does not take fixed-size images (input {shape})")
        if not (isinstance(out, tuple) and len(out) == 2 and out[1]):
            raise UserError(f"{self.dir / 'model.keras'} is not a classifier (output {out})")
        self.size, self.channels = (shape[1], shape[2]), shape[3]
        names = self.metrics.get("class_names") or [str(i) for i in range(out[1])]
        if not isinstance(names, list) or len(names) != out[1]:
            raise UserError(f'{self.dir / "metrics.json"}: "class_names" should list the model\'s {out[1]} classes')
        self.class_names = [str(c) for c in names]

    def fields(self) -> list[dict]:
        return [{"name": "image", "kind": "image", "example": ""}]

    def outputs(self) -> dict:
        """What `predict` returns per instance, for the API schema (see serve.output_model)."""
        top = {"class": tuple(self.class_names), "probability": float}
        return {**top, "top": [top]}

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """(n, classes) class probabilities of uint8 pixels (a softmax over logits)."""
        logits = np.asarray(self.model.predict_on_batch(x.astype("uint8")), "float64")
        if not np.isfinite(logits).all():
            raise UserError("the model gave no finite score for this image")
        if np.any(logits < 0) or not np.allclose(logits.sum(1), 1, atol=1e-3):  # logits -> probabilities
            logits = np.exp(logits - logits.max(1, keepdims=True))
            logits /= logits.sum(1, keepdims=True)
        return np.clip(logits, 0.0, 1.0)

    def predict_pixels(self, x: np.ndarray, top: int = 3) -> list[dict]:
        return self._predictions(self.probabilities(x), top)

    def _predictions(self, probs: np.ndarray, top: int = 3) -> list[dict]:
        out = []
        for p in probs:
            order = np.argsort(-p)[:top]
            out.append(
                {
                    "class": self.class_names[order[0]],
                    "probability": float(p[order[0]]),
                    "top": [{"class": self.class_names[k], "probability": float(p[k])} for k in order],
                }
            )
        return out

    def decode(self, data: bytes) -> np.ndarray:
        """One upload as pixels: a known format whose header says at most MAX_PIXELS, else a
        UserError (PIL's decompression-bomb warning is an error here too)."""
        import io
        import warnings

        from PIL import Image

        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                with Image.open(io.BytesIO(data), formats=self.FORMATS) as im:  # the header only
                    w, h = im.size
                if w * h > self.MAX_PIXELS:
                    raise UserError(f"the image is {w}x{h} pixels, over the limit of {self.MAX_PIXELS:,}")
                return decode_bytes(data, self.size, self.channels)
            except UserError:
                raise
            except Exception as e:  # PIL raises many kinds for broken files (SyntaxError, EOFError, ...)
                raise UserError(f"the upload is not a readable {'/'.join(self.FORMATS)} image ({type(e).__name__})")

    def predict_bytes(self, data: bytes) -> list[dict]:
        return self.predict_pixels(self.decode(data)[None])

    def predict(self, instances: list[dict]) -> list[dict]:
        return self.predict_pixels(self.pixels(instances))

    def pixels(self, instances: list[dict]) -> np.ndarray:
        """The instances' {"image": base64} as one uint8 batch (n, h, w, channels)."""
        import base64
        import binascii

        xs = []
        for i, row in enumerate(instances):
            text = str(row.get("image", ""))
            if text.startswith("data:") and "," in text:  # a data URL from a browser
                text = text.split(",", 1)[1]
            try:
                raw = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise UserError(f"instances.{i}.image: not base64 (send the image file's bytes base64-encoded)")
            try:
                xs.append(self.decode(raw))
            except UserError as e:
                raise UserError(f"instances.{i}.image: {e}")
        return np.stack(xs)

    def explain(self, instances: list[dict]) -> list[dict]:
        """Grad-CAM (keras_cases.explain.grad_cam) of the predicted class at the last
        convolutional feature map, per instance: {"prediction": what `predict` gives,
        "explanation": {"method", "target", "items": [], "heatmap": rows x cols in [0, 1]}},
        the heatmap averaged down to at most HEATMAP x HEATMAP cells (the explanation
        protocol of serve's POST /explain). A model without a convolution: UserError."""
        x = self.pixels(instances)
        probs = self.probabilities(x)
        preds = self._predictions(probs)
        cams = self.heatmaps(x, probs.argmax(1))
        method = self.cam[2]
        return [
            {
                "prediction": p,
                "explanation": {
                    "method": method,
                    "target": p["class"],
                    "items": [],
                    "heatmap": [[float(v) for v in row] for row in cam],
                },
            }
            for p, cam in zip(preds, cams)
        ]

    HEATMAP = 32  # the largest side of an explanation's heatmap

    def heatmaps(self, x: np.ndarray, target) -> np.ndarray:
        """(n, rows, cols) Grad-CAM maps in [0, 1] of uint8 pixels `x` for class `target` (an
        int per image), averaged over blocks down to at most HEATMAP cells a side."""
        if not hasattr(self, "cam"):
            self.cam = cam_setup(self.model)
        cams = gradcam(self.cam, x, target)
        return np.stack([pool(c, self.HEATMAP) for c in cams]) if len(cams) else cams

    def info(self) -> dict:
        m = self.metrics
        keys = [k for k in ("test_accuracy", "test_macro_f1", "macro_f1", "accuracy") if isinstance(m.get(k), float)]
        return {
            "case": self.case,
            "model": self.model.name,
            "params": self.model.count_params(),
            "input": f"{self.size[0]}x{self.size[1]}x{self.channels} image",
            "classes": self.class_names,
            "dataset": m.get("dataset"),
            "trained_on_backend": m.get("backend"),
            "metrics": {k: m[k] for k in keys},
        }


CONVOLUTIONS = ("Conv1D", "Conv2D", "Conv3D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose")


def has_convolution(layer) -> bool:
    """A convolution layer, or a nested model (a backbone) holding one."""
    import keras

    if isinstance(layer, tuple(getattr(keras.layers, c) for c in CONVOLUTIONS)):
        return True
    return any(has_convolution(la) for la in getattr(layer, "layers", ()))


def cam_layer(model) -> str:
    """Where Grad-CAM looks: the last layer of `model` with an image-like (4-D) output at or
    after its first convolution (a nested backbone, e.g. a keras.applications network, is one
    layer here: its output is its last feature map). UserError for a model without one."""
    seen, name = False, None
    for la in model.layers:
        seen = seen or has_convolution(la)
        shape = getattr(la, "output", None) is not None and la.output.shape
        if seen and shape and len(shape) == 4:
            name = la.name
    if name is None:
        raise UserError(
            f"this model ({model.name}) has no convolution to explain: Grad-CAM needs a convolutional layer"
        )
    return name


def cam_setup(model) -> tuple:
    """(model to explain, layer to split it at, the method in words) for Grad-CAM of `model`
    (see cam_layer, logit_model and at_one_layer)."""
    layer = cam_layer(model)
    logits, score = logit_model(model)
    cam_model, at = at_one_layer(logits, layer)
    return cam_model, at, f"Grad-CAM at layer {layer!r} ({score})"


def gradcam(setup: tuple, x: np.ndarray, target) -> np.ndarray:
    """(n, h, w) Grad-CAM maps in [0, 1] of images `x` (pixels as the model takes them) for
    class `target` (an int per image), with a `cam_setup`."""
    from keras_cases import explain

    x = np.asarray(x, "float32")  # in one batch of up to 256: each new batch shape compiles again
    return explain.grad_cam(setup[0], x, target=np.asarray(target), layer=setup[1], batch_size=min(max(len(x), 1), 256))


def at_one_layer(model, name: str):
    """(model, layer name) that explain.grad_cam can split at `name`. A nested model (a
    backbone) is the exception: its `.output` is the output of its own graph, not of its call
    inside `model`, so the split goes through an Identity layer put after that call."""
    import keras

    layer = model.get_layer(name)
    if not isinstance(layer, keras.Model):
        return model, name
    nodes = layer._inbound_nodes  # the calls of the nested model: one in a loaded run
    if len(nodes) != 1:
        raise UserError(f"cannot explain at {name!r}: the model calls it {len(nodes)} times")
    feat, (inputs,) = nodes[0].output_tensors[0], model.inputs  # ImagePredictor: one image input
    features = keras.Model(inputs, feat, name=f"{name}_features")
    head = keras.Model(feat, model.outputs[0], name=f"{name}_head")
    out = head(keras.layers.Identity(name=f"{name}_output")(features(inputs)))
    return keras.Model(inputs, out, name=model.name), f"{name}_output"


def logit_model(model):
    """(model whose output is the logits, what its score is): a final softmax (a Dense layer's
    activation or a Softmax / Activation layer) is left out, since Grad-CAM explains the
    pre-softmax score of a class (a saturated probability has no gradient to show)."""
    import keras

    last = model.layers[-1]
    act = getattr(last, "activation", None)
    softmax = getattr(act, "__name__", "") == "softmax" or isinstance(last, keras.layers.Softmax)
    if not softmax or len(model.outputs) != 1:
        return model, "the class score the model outputs"
    if isinstance(last, keras.layers.Dense):
        dense = keras.layers.Dense(last.units, name=f"{last.name}_logits")
        out = dense(last.input)
        dense.set_weights(last.get_weights())
    else:
        out = last.input
    return keras.Model(model.inputs, out), "the class logit, before the softmax"


def pool(cam: np.ndarray, most: int) -> np.ndarray:
    """`cam` (h, w) averaged over blocks of k x k pixels (k the least with ceil(side / k) <=
    most; the last block may be partial) and rescaled so its peak is 1 (all zero stays zero)."""
    cam = np.nan_to_num(np.asarray(cam, "float64"), nan=0.0, posinf=0.0, neginf=0.0)  # JSON needs finite floats
    k = -(-max(cam.shape) // most)
    if k > 1:
        h, w = (-(-s // k) for s in cam.shape)
        padded = np.full((h * k, w * k), np.nan, "float64")
        padded[: cam.shape[0], : cam.shape[1]] = cam
        cam = np.nanmean(padded.reshape(h, k, w, k), axis=(1, 3))
    peak = float(cam.max()) if cam.size else 0.0
    return np.clip(cam / peak if peak > 0 else np.zeros_like(cam), 0.0, 1.0).astype("float32")


def explained_examples(
    model, x, y, class_names, path, per_group: int = 8, sample: int = 200, batch_size: int = 256
) -> dict:
    """The image cases' report figure (plots.gradcam_overlays at `path`): Grad-CAM of the
    predicted class for correctly classified test images (the first of each class, up to
    `per_group`) and for the most confident mistakes. Also measured on `sample` test images
    spread over the set: the share of the map's mass in the central half of the image (a
    quarter of the area), for right and wrong answers. Returns those numbers and the method.
    `batch_size`: of the model's predictions on `x` (the one the case used: no new compile)."""
    from keras_cases import plots

    probs = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), "float64")
    if np.any(probs < 0) or not np.allclose(probs.sum(1), 1, atol=1e-3):  # logits
        probs = np.exp(probs - probs.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
    pred, conf = probs.argmax(1), probs.max(1)
    right = np.flatnonzero(pred == y)
    firsts = [right[y[right] == c][0] for c in range(len(class_names)) if np.any(y[right] == c)][:per_group]
    wrong = np.flatnonzero(pred != y)
    wrong = wrong[np.argsort(-conf[wrong], kind="stable")][:per_group]
    setup = cam_setup(model)
    spread = np.unique(np.linspace(0, len(x) - 1, min(sample, len(x))).astype(int))
    idx = np.concatenate([firsts, wrong, spread]).astype(int)
    cams = gradcam(setup, x[idx], pred[idx])
    show = np.asarray(x[idx[: len(firsts) + len(wrong)]], "float32") / 255.0
    groups = {}
    for label, part in (("right", slice(0, len(firsts))), ("wrong", slice(len(firsts), len(firsts) + len(wrong)))):
        ids = idx[part]
        if len(ids):
            groups[label] = (
                show[part],
                cams[part],
                [class_names[t] for t in y[ids]],
                [f"{class_names[p]} {c:.2f}" for p, c in zip(pred[ids], conf[ids])],
            )
    plots.gradcam_overlays(groups, path, f"{setup[2]}: the predicted class (red: wrong)")
    h, w = cams.shape[1:3]
    sm = cams[len(firsts) + len(wrong) :]
    centre = sm[:, h // 4 : h - h // 4, w // 4 : w - w // 4].sum((1, 2)) / np.maximum(sm.sum((1, 2)), 1e-12)
    ok = pred[spread] == y[spread]
    return {
        "method": setup[2],
        "feature_map": [int(v) for v in setup[0].get_layer(setup[1]).output.shape[1:3]],
        "shown_right": len(firsts),
        "shown_wrong": len(wrong),
        "sample": int(len(spread)),
        "centre_mass_right": float(centre[ok].mean()) if ok.any() else None,
        "centre_mass_wrong": float(centre[~ok].mean()) if (~ok).any() else None,
        "centre_area": float((h - 2 * (h // 4)) * (w - 2 * (w // 4)) / (h * w)),
    }


def explained_section(e: dict, png: str, note: str = "") -> str:
    """The report text around `explained_examples`' figure (`note`: a sentence put before it)."""

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.0f}%"

    return (
        f"{e['method']}, for the class the model predicts, on {e['shown_right']} correctly classified "
        f"test images (the first of each class) and the {e['shown_wrong']} most confident mistakes. "
        "Red: the regions whose features raise the predicted class's score most (the feature "
        "map's channels weighted by the score's mean gradient over the map, summed, ReLU, scaled "
        "to a peak of 1).\n\n"
        f"On {e['sample']} test images spread over the set, the share of the map in the central "
        f"{pct(e['centre_area'])} of the image is {pct(e['centre_mass_right'])} for right answers "
        f"and {pct(e['centre_mass_wrong'])} for wrong ones (an even map: {pct(e['centre_area'])}). "
        f"The feature map explained is {'x'.join(map(str, e['feature_map']))}: the maps are that coarse, "
        f"upsampled (bilinear) to the image.{' ' + note if note else ''}\n\n"
        f"![Grad-CAM on test images]({png})"
    )
