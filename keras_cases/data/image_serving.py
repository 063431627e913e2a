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

    def predict_pixels(self, x: np.ndarray, top: int = 3) -> list[dict]:
        logits = np.asarray(self.model.predict_on_batch(x.astype("uint8")), "float64")
        if not np.isfinite(logits).all():
            raise UserError("the model gave no finite score for this image")
        if np.any(logits < 0) or not np.allclose(logits.sum(1), 1, atol=1e-3):  # logits -> probabilities
            logits = np.exp(logits - logits.max(1, keepdims=True))
            logits /= logits.sum(1, keepdims=True)
        logits = np.clip(logits, 0.0, 1.0)
        out = []
        for p in logits:
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
        return self.predict_pixels(np.stack(xs))

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
