"""Runs and inputs for the HTTP tests (test_serve.py, test_fuzz.py).

`tiny_image_run` fakes a finished image-case run in a second: an untrained functional model
on uint8 32x32x3 pixels (what ImagePredictor serves) plus the run.json and metrics.json it
reads; the HTTP layer is what these tests exercise, not the model's accuracy."""

import io
import json

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def tiny_image_run(out, case="cifar", size=32):
    import keras

    from keras_cases.runtime import save_model

    out.mkdir(parents=True)
    inputs = keras.Input((size, size, 3), dtype="uint8", name="pixels")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=4, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(len(CLASSES), activation="softmax")(x), name="tiny_cifar")
    save_model(model, out / "model.keras")
    (out / "run.json").write_text(
        json.dumps({"case": case, "created": "2025-01-01T00:00:00+00:00", "status": "complete"})
    )
    (out / "metrics.json").write_text(
        json.dumps({"class_names": CLASSES, "test_accuracy": 0.1, "backend": keras.config.backend(), "dataset": "none"})
    )
    return out


def image_bytes(width=20, height=14, fmt="PNG", seed=0) -> bytes:
    from PIL import Image

    px = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, format=fmt)
    return buf.getvalue()


def bomb_png(width=30_000, height=30_000) -> bytes:
    """A PNG whose header says width x height pixels (a few KB on the wire)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\x00" * width  # one grey byte per pixel, filter 0
    data = zlib.compress(row * 16, 9)  # only a few rows: decoding would need the rest
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", data)
        + chunk(b"IEND", b"")
    )


def tiny_textgen_run(out):
    """A finished textgen run in a second: an untrained miniature GPT (16 bytes of context)."""
    import keras

    from keras_cases.runtime import save_model
    from keras_cases.textgen import models

    out.mkdir(parents=True)
    save_model(models.gpt(16, width=16, layers=1, heads=2, dropout=0.0), out / "model.keras")
    (out / "textgen.json").write_text(json.dumps({"model": "transformer", "context": 16}))
    (out / "run.json").write_text(
        json.dumps({"case": "textgen", "created": "2025-01-01T00:00:00+00:00", "status": "complete"})
    )
    (out / "metrics.json").write_text(
        json.dumps({"headline": {"bits_per_byte": 8.0}, "backend": keras.config.backend(), "dataset": "none"})
    )
    return out
