"""Why a model decided: integrated gradients, SmoothGrad and Grad-CAM, written once in keras.ops.

keras.io's Grad-CAM and Integrated Gradients examples import TensorFlow and use GradientTape;
these run unchanged on JAX, TensorFlow and PyTorch: the one gradient they need (of a score
w.r.t. an input or a layer's activations) comes from `runtime.input_gradient`, the backend's
own autodiff. They take any functional Keras model, in inference mode, and work in batches.

- `gradient`             plain saliency: d score / d input.
- `smoothgrad`           the gradient averaged over noisy copies of the input (Smilkov et al. 2017).
- `integrated_gradients` (Sundararajan et al. 2017): (x - baseline) times the path integral of
                         the gradient from the baseline to x; the attributions add up to
                         f(x) - f(baseline) (completeness). The integral uses Gauss-Legendre
                         nodes (64 by default: within 1% on ReLU networks, far better on smooth ones). With `layer=`, the attributions
                         are to that layer's output (e.g. an Embedding: one vector per token).
- `grad_cam`             (Selvaraju et al. 2017): the activations of a convolutional layer
                         weighted by the spatially averaged gradient of the score, ReLU,
                         resized to the input image and scaled to [0, 1].
- `token_attributions`   integrated gradients of a text model over its embedding layer's output
                         (all-zero vectors as baseline), one number per token; the model is cut
                         with `embedding_head`, which keeps the token ids as an input so the
                         padding masks derived from them still apply (split_at would lose them).
- `logits`               a sigmoid / softmax model without its last activation, to explain a
                         confident prediction's logit rather than its saturated probability.

The score of example i is the model's output for its `target` class (an int per example, or one
int for all), or the single output of a one-unit model when `target` is None. Choose the output
to explain when building the model: logits (pre-softmax) are the usual choice for images,
probabilities for a binary classifier's decision.
"""

from __future__ import annotations

import functools

import numpy as np

from keras_cases import UserError, runtime


def _score_fn(model, target, n: int):
    """fn(x) -> per-example score of the target unit of `model`'s (first) output."""
    from keras import ops

    def fn(x):
        out = model(x, training=False)
        out = out[0] if isinstance(out, (list, tuple)) else out
        out = ops.reshape(out, (ops.shape(out)[0], -1))
        if target is None:
            if out.shape[-1] != 1:
                raise UserError(f"the model has {out.shape[-1]} outputs: name the target class to explain")
            return out[:, 0]
        t = np.broadcast_to(np.asarray(target, "int64"), (n,))
        return ops.sum(out * ops.one_hot(ops.convert_to_tensor(t), out.shape[-1]), axis=-1)

    return fn


def scores(model, x, target=None, batch_size: int = 256) -> np.ndarray:
    """The score each example gets (what the explanations attribute)."""
    x = np.asarray(x)
    chunks = [
        _batch_scores(model, x[i : i + batch_size], _slice(target, i, batch_size)) for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(chunks) if chunks else np.zeros(0, "float32")


def _batch_scores(model, x, target):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(_score_fn(model, target, len(x))(ops.convert_to_tensor(x))))


def _slice(target, i, n):
    return target if target is None or np.ndim(target) == 0 else np.asarray(target)[i : i + n]


def gradient(model, x, target=None, batch_size: int = 256) -> np.ndarray:
    """d score / d x for every example (same shape as x)."""
    x = np.asarray(x, "float32")
    out = [
        runtime.input_gradient(
            _score_fn(model, _slice(target, i, batch_size), len(x[i : i + batch_size])), x[i : i + batch_size]
        )[1]
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros_like(x)


def smoothgrad(model, x, target=None, noise: float = 0.15, samples: int = 32, seed: int = 0, batch_size: int = 256):
    """The gradient averaged over `samples` copies of each example with Gaussian noise of std
    `noise` times the example's value range; `noise=0` is the plain gradient."""
    x = np.asarray(x, "float32")
    if noise == 0:
        return gradient(model, x, target, batch_size)
    rng = np.random.default_rng(seed)
    span = (x.reshape(len(x), -1).max(1) - x.reshape(len(x), -1).min(1)).reshape((-1,) + (1,) * (x.ndim - 1))
    total = np.zeros_like(x)
    for _ in range(samples):
        total += gradient(model, x + rng.normal(size=x.shape).astype("float32") * noise * span, target, batch_size)
    return total / samples


def split_at(model, layer_name: str):
    """(features, head): `model` cut after layer `layer_name`, so head(features(x)) == model(x)."""
    import keras

    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        names = ", ".join(la.name for la in model.layers)
        raise UserError(f"the model has no layer {layer_name!r}; its layers: {names}")
    try:
        return keras.Model(model.inputs, layer.output), keras.Model(layer.output, model.outputs)
    except ValueError as e:  # a branch that goes around the layer (a skip connection) needs the input too
        raise UserError(f"cannot explain at layer {layer_name!r}: the model does not pass only through it ({e})")


@functools.lru_cache(maxsize=16)  # an eigenvalue problem: 256 nodes take ~50 ms alone, seconds on a busy machine
def _gauss_legendre(steps: int):
    """Nodes and weights of the `steps`-point Gauss-Legendre rule on [0, 1] (cached: read only)."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return ((nodes + 1) / 2).astype("float32"), (weights / 2).astype("float32")


def integrated_gradients(
    model, x, target=None, baseline=None, steps: int = 64, layer: str | None = None, batch_size: int = 512
):
    """Integrated-gradients attributions of each example's score (same shape as x, or as the
    output of `layer`). `baseline`: an array broadcastable to one example (default zeros)."""
    if steps < 1:
        raise UserError(f"integrated gradients needs at least 1 step, not {steps}")
    if layer is not None:
        features, model = split_at(model, layer)
        x = features.predict(np.asarray(x), verbose=0, batch_size=batch_size)
    x = np.asarray(x, "float32")
    base = (
        np.zeros_like(x[:1])
        if baseline is None
        else np.broadcast_to(np.asarray(baseline, "float32"), x.shape[1:])[None]
    )
    alphas, weights = _gauss_legendre(steps)
    per = max(1, batch_size // steps)  # examples per gradient call
    out = []
    for i in range(0, len(x), per):
        xi = x[i : i + per]
        t = _slice(target, i, per)
        t = None if t is None else np.repeat(np.broadcast_to(np.asarray(t), (len(xi),)), steps)
        path = base + alphas.reshape((1, steps) + (1,) * (x.ndim - 1)) * (xi - base)[:, None]
        _, g = runtime.input_gradient(_score_fn(model, t, len(xi) * steps), path.reshape((-1,) + x.shape[1:]))
        avg = np.tensordot(weights, g.reshape((len(xi), steps) + x.shape[1:]), axes=([0], [1]))
        out.append((xi - base) * avg)
    return np.concatenate(out)


def last_conv_layer(model) -> str:
    """The name of the last layer with a 4-D (image-like) output: Grad-CAM's usual layer."""
    for la in reversed(model.layers):
        shape = getattr(la, "output", None) is not None and la.output.shape
        if shape and len(shape) == 4 and not la.name.startswith("input"):
            return la.name
    raise UserError("the model has no layer with an image-like (4-D) output to take Grad-CAM from")


def grad_cam(model, x, target=None, layer: str | None = None, batch_size: int = 128) -> np.ndarray:
    """Grad-CAM heat maps (n, height, width) in [0, 1], at the input image's resolution."""
    from keras import ops

    features, head = split_at(model, layer or last_conv_layer(model))
    x = np.asarray(x, "float32")
    maps = []
    for i in range(0, len(x), batch_size):
        # a direct call, not predict(): `features` is a new model per call, and predict would
        # compile it anew on JAX each time (most of a served /explain's time)
        a = np.asarray(ops.convert_to_numpy(features(ops.convert_to_tensor(x[i : i + batch_size]), training=False)))
        a = a.astype("float32")
        _, g = runtime.input_gradient(_score_fn(head, _slice(target, i, batch_size), len(a)), a)
        cam = np.maximum((a * g.mean(axis=(1, 2), keepdims=True)).sum(-1), 0)[..., None]
        cam = np.asarray(ops.convert_to_numpy(ops.image.resize(cam, x.shape[1:3], interpolation="bilinear")))[..., 0]
        peak = cam.reshape(len(cam), -1).max(1).reshape(-1, 1, 1)
        maps.append(np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0).astype("float32"))
    return np.concatenate(maps) if maps else np.zeros((0, *x.shape[1:3]), "float32")


def logits(model):
    """`model` without the sigmoid / softmax of its last (Dense) layer: the same weights,
    giving the logits. Explaining the logit keeps attributions of confident predictions
    informative (a probability near 1 barely moves along most of the path)."""
    import keras

    last = model.layers[-1]
    act = getattr(getattr(last, "activation", None), "__name__", None)
    if not isinstance(last, keras.layers.Dense) or act not in ("sigmoid", "softmax"):
        raise UserError(f"the model's last layer {last.name!r} is not a Dense layer with a sigmoid or softmax")
    dense = keras.layers.Dense.from_config({**last.get_config(), "activation": "linear", "name": f"{last.name}_logits"})
    out = dense(last.input)
    dense.set_weights(last.get_weights())
    return keras.Model(model.inputs, out, name=f"{model.name}_logits")


def embedding_head(model, layer: str = "embedding"):
    """(the embedding layer, head): head([token ids, embeddings]) == model(ids) when the
    embeddings are that layer's output for the ids. The ids stay an input of the head, so the
    padding masks a model derives from them (mask_zero, attention masks) still apply."""
    import keras

    try:
        emb = model.get_layer(layer)
    except ValueError:
        names = ", ".join(la.name for la in model.layers)
        raise UserError(f"the model has no layer {layer!r}; its layers: {names}")
    return emb, keras.Model([*model.inputs, emb.output], model.outputs)


def token_attributions(model, ids, layer: str = "embedding", target=None, steps: int = 64, batch_size: int = 512):
    """Integrated gradients over the output of a text model's embedding layer, summed over
    the embedding dimension: one attribution per token position (n, length), 0 at padding
    (id 0). The baseline puts an all-zero vector at every real token (padding keeps its own);
    returns (attributions, scores of the texts, scores of their baselines), and the
    attributions of a text add up to its score minus its baseline's (completeness)."""
    if steps < 1:
        raise UserError(f"integrated gradients needs at least 1 step, not {steps}")
    emb_layer, head = embedding_head(model, layer)
    ids = np.asarray(ids, "int32")
    tgt = None if target is None else np.broadcast_to(np.asarray(target, "int64"), (len(ids),))
    per = max(1, batch_size // steps)  # texts per gradient call; every call has the same shape
    parts = []
    for i in range(0, len(ids), per):
        chunk, pad = ids[i : i + per], per - len(ids[i : i + per])
        block = np.concatenate([chunk, np.zeros((pad, ids.shape[1]), "int32")])  # empty texts
        t = None if tgt is None else np.concatenate([tgt[i : i + per], np.zeros(pad, "int64")])
        parts.append([a[: len(chunk)] for a in _token_chunk(emb_layer, head, block, t, steps)])
    if not parts:
        return np.zeros(ids.shape, "float32"), np.zeros(0, "float32"), np.zeros(0, "float32")
    return tuple(np.concatenate(p) for p in zip(*parts))


def _token_chunk(emb_layer, head, ids, target, steps):
    """token_attributions of one block of texts: (attributions, scores, baseline scores)."""
    from keras import ops

    alphas, weights = _gauss_legendre(steps)
    ids_t = ops.convert_to_tensor(ids)
    e = np.asarray(ops.convert_to_numpy(emb_layer(ids_t)), "float32")
    base = e * (ids == 0)[..., None]  # zero vectors at real tokens, padding as it is
    path = base[:, None] + alphas.reshape(1, steps, 1, 1) * (e - base)[:, None]
    rep = ops.convert_to_tensor(np.repeat(ids, steps, axis=0))
    score = _score_fn(head, None if target is None else np.repeat(target, steps), len(ids) * steps)
    _, g = runtime.input_gradient(lambda x: score([rep, x]), path.reshape((-1,) + e.shape[1:]))
    avg = np.tensordot(weights, g.reshape((len(ids), steps) + e.shape[1:]), axes=([0], [1]))
    ends = _score_fn(head, target, len(ids))
    s, s0 = (np.asarray(ops.convert_to_numpy(ends([ids_t, ops.convert_to_tensor(v)]))) for v in (e, base))
    return ((e - base) * avg).sum(-1), s, s0
