"""Post-training int8 quantization with Keras' own `model.quantize("int8")`: each layer
Keras can quantize (Dense, EinsumDense, Embedding) gets int8 weights with a per-channel
float scale; every other layer stays in float, and the report names them."""

from __future__ import annotations

import warnings

import numpy as np

from keras_cases import UserError


def quantized(layer) -> bool:
    return "int8" in str(getattr(layer.dtype_policy, "name", ""))


def compress(case, args) -> tuple:
    """(model, what metrics.json keeps, the report's paragraph, no history): the teacher
    quantized in place (no training)."""
    model = case.model
    if any(quantized(lay) for lay in model.layers):
        raise UserError(f"{case.dir} is already quantized to int8")
    with warnings.catch_warnings():  # Keras warns once per layer it cannot quantize
        warnings.simplefilter("ignore")
        model.quantize("int8")
    layers = [lay for lay in model.layers if lay.weights]
    done = [lay.name for lay in layers if quantized(lay)]
    left = [f"{lay.name} ({type(lay).__name__})" for lay in layers if not quantized(lay)]
    if not done:
        raise UserError("Keras has no int8 quantization for any layer of this model (Dense, EinsumDense, Embedding)")
    sizes = [(str(w.dtype), int(np.prod(w.shape))) for w in model.weights]
    share = sum(n for dt, n in sizes if dt == "int8") / max(1, sum(n for _, n in sizes))
    info = {"quantized_layers": done, "float_layers": left, "int8_share": share}
    text = (
        f'Keras `model.quantize("int8")`: int8 kernels with per-channel scales in {", ".join(done)}. '
        f"Left in float (Keras has no int8 version of these layers): {', '.join(left) or 'none'}. "
        f"{share:.1%} of the model's weights are int8."
    )
    return model, info, text, None
