"""The comparison table: parameters, bytes on disk (and gzipped), non-zero weights,
latency per example at batch 1 and 256 (`predict_on_batch`, median of repeats) and the
test metric, for the original model and the compressed one. Bytes are those of the
model saved as model.keras without optimizer state, for both."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np

from keras_cases.runs import markdown_table

BATCHES = {1: 30, 256: 5}  # batch size: timed repeats (after warm-up calls)


def nonzero_weights(model) -> tuple[int, int]:
    """(non-zero, all) scalars over every weight of the model."""
    vals = [np.asarray(w.numpy() if hasattr(w, "numpy") else w) for w in model.weights]
    return int(sum(np.count_nonzero(v) for v in vals)), int(sum(v.size for v in vals))


def latency_ms(model, x_for) -> dict:
    """Median milliseconds per example of `predict_on_batch` at each batch size."""
    out = {}
    for n, repeats in BATCHES.items():
        x = x_for(n)
        for _ in range(5):  # compile / warm up
            model.predict_on_batch(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            np.asarray(model.predict_on_batch(x))
            times.append(time.perf_counter() - t)
        out[n] = 1000 * float(np.median(times)) / n
    return out


def saved_bytes(model) -> bytes:
    """The model as `model.keras` holds it, without optimizer state (what is deployed)."""
    import tempfile

    from keras_cases import runtime

    with tempfile.TemporaryDirectory() as tmp:
        runtime.save_model(model, Path(tmp) / "model.keras")
        return (Path(tmp) / "model.keras").read_bytes()


def row(label: str, model, case, result: dict) -> dict:
    data = saved_bytes(model)
    nz, total = nonzero_weights(model)
    lat = latency_ms(model, case.latency_input)
    r = {
        "model": label,
        "parameters": int(model.count_params()),
        "bytes": len(data),
        "gzip bytes": len(gzip.compress(data, 6)),
        "non-zero weights": nz,
        "ms/example @1": lat[1],
        "ms/example @256": lat[256],
    }
    r.update({f"test {k}": v for k, v in result.items() if not k.startswith("_")})
    return r


def compare(rows: list[dict], agreement: float) -> tuple[str, dict]:
    """The markdown table (original, compressed, ratio) and the numbers for metrics.json."""
    a, b = rows
    ratio = {"model": "compressed / original"}
    for k in ("parameters", "bytes", "gzip bytes", "non-zero weights", "ms/example @1", "ms/example @256"):
        ratio[k] = f"{b[k] / a[k]:.3f}" if a[k] else ""
    for k in a:
        if k.startswith("test "):
            ratio[k] = f"{b[k] - a[k]:+.4f}"
    table = markdown_table([*rows, ratio], list(a), fmt="{:.4f}")
    table += f"\n\nPredictions agree with the original on {agreement:.2%} of test examples."
    return table, {"original": a, "compressed": b, "agreement": agreement}
