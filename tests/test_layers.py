"""Shared layers: one PositionEmbedding for the forecast and text transformers, so a process
that imports both cases loads each saved model with the right layer."""

import json
import zipfile

import numpy as np

from keras_cases import forecast, runtime, text_models  # noqa: F401  (both cases imported)
from keras_cases.layers import PositionEmbedding


def _roundtrip(model, x, path):
    runtime.save_model(model, path)
    import keras

    loaded = keras.models.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    return loaded


def test_forecast_and_text_transformers_both_load_in_one_process(tmp_path):
    f = forecast.build_model("transformer", 48, 2, 12)
    xf = np.random.default_rng(0).normal(size=(4, 48, 2)).astype("float32")
    _roundtrip(f, xf, tmp_path / "forecast.keras")
    t = text_models.build_model("transformer", vocab_size=50, max_len=20)
    xt = np.random.default_rng(1).integers(1, 50, size=(4, 20)).astype("int32")
    _roundtrip(t, xt, tmp_path / "text.keras")
    # the saved configs: forecast's has no max_len (the table is its input's length), text's has one
    configs = {}
    for name in ("forecast", "text"):
        with zipfile.ZipFile(tmp_path / f"{name}.keras") as z:
            layers = json.loads(z.read("config.json"))["config"]["layers"]
        configs[name] = [la["config"] for la in layers if la["class_name"] == "PositionEmbedding"][0]
    assert "max_len" not in configs["forecast"] and configs["text"]["max_len"] == 20


def test_position_embedding_adds_one_row_per_step():
    layer = PositionEmbedding(max_len=10)
    x = np.zeros((2, 7, 3), "float32")
    out = np.asarray(layer(x))
    table = np.asarray(layer.embeddings)
    np.testing.assert_allclose(out[0], table[:7])
    np.testing.assert_allclose(out[1], table[:7])
    fixed = PositionEmbedding()
    assert tuple(np.asarray(fixed(x)).shape) == (2, 7, 3) and tuple(fixed.embeddings.shape) == (7, 3)
