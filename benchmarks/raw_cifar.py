"""The CIFAR recipe's network and training step written by hand in raw JAX (lax.conv +
optax, one jax.jit step) and raw PyTorch (torch.nn.functional, NCHW), beside Keras in
`python -m benchmarks.cifar`: so Keras' overhead and the framework's own convolution speed
can be told apart (issue 19). Like benchmarks/raw.py, the one place besides
keras_cases/runtime.py that imports a framework: measuring it without Keras is the point.

Both take their weights from a built Keras recipe model (`weights_of`), so the same weights
give the same loss and the same first update as Keras' own step (tests/test_benchmarks.py):
the whitening conv (2x2 valid, frozen when the recipe whitens), per block conv 3x3 same ->
2x2 max-pool -> batch norm (batch statistics, epsilon 1e-3, momentum 0.9) -> GELU (exact),
then conv 3x3 -> batch norm -> GELU; global max-pool; dense. Loss: softmax cross-entropy with
label smoothing; optimizer: SGD with Nesterov momentum and decoupled weight decay (Keras'
SGD at a constant learning rate).
"""

from __future__ import annotations

import numpy as np

EPS = 1e-3  # keras.layers.BatchNormalization's epsilon
BN_MOMENTUM = 0.9


def weights_of(model) -> dict:
    """{layer name: [NumPy arrays]} of every layer with weights (a recipe with batch norm:
    its block convolutions have no bias)."""
    w = {layer.name: [np.asarray(v) for v in layer.get_weights()] for layer in model.layers if layer.weights}
    if "block1_bn1" not in w:
        raise ValueError("the raw loops follow the recipe with batch norm")
    return w


def _blocks(w: dict) -> int:
    return sum(1 for k in w if k.endswith("_conv1"))


def _smooth(y: np.ndarray, smoothing: float) -> np.ndarray:
    return y * (1 - smoothing) + smoothing / y.shape[-1]


def jax_trainer(w: dict, lr: float, momentum: float, weight_decay: float, smoothing: float, train_whiten: bool):
    """(step, params, opt_state, bn_state): `step(params, opt_state, bn_state, x_uint8, y_onehot)`
    -> (params, opt_state, bn_state, loss), jitted."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax

    n_blocks = _blocks(w)
    params = {"whiten": [jnp.asarray(a) for a in w["whiten"]], "logits": [jnp.asarray(a) for a in w["logits"]]}
    bn_state = {}
    for b in range(1, n_blocks + 1):
        for c in (1, 2):
            params[f"block{b}_conv{c}"] = [jnp.asarray(a) for a in w[f"block{b}_conv{c}"]]
            gamma, beta, mean, var = w[f"block{b}_bn{c}"]
            params[f"block{b}_bn{c}"] = [jnp.asarray(gamma), jnp.asarray(beta)]
            bn_state[f"block{b}_bn{c}"] = [jnp.asarray(mean), jnp.asarray(var)]
    frozen = {} if train_whiten else {"whiten": params.pop("whiten")}
    dims = ("NHWC", "HWIO", "NHWC")

    def conv(x, kernel, padding):
        return lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=dims)

    def bn(x, gamma, beta, stats, name, new_stats):
        mean, var = jnp.mean(x, axis=(0, 1, 2)), jnp.var(x, axis=(0, 1, 2))
        m, v = stats[name]
        new_stats[name] = [BN_MOMENTUM * m + (1 - BN_MOMENTUM) * mean, BN_MOMENTUM * v + (1 - BN_MOMENTUM) * var]
        return (x - mean) * lax.rsqrt(var + EPS) * gamma + beta

    def loss_fn(p, stats, x, y):
        p = {**frozen, **p}
        new_stats = {}
        h = x.astype(jnp.float32) / 255.0
        h = jax.nn.gelu(conv(h, p["whiten"][0], "VALID") + p["whiten"][1], approximate=False)
        for b in range(1, n_blocks + 1):
            for c in (1, 2):
                h = conv(h, p[f"block{b}_conv{c}"][0], "SAME")
                if c == 1:
                    h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
                name = f"block{b}_bn{c}"
                h = jax.nn.gelu(bn(h, *p[name], stats, name, new_stats), approximate=False)
        h = jnp.max(h, axis=(1, 2))
        logits = h @ p["logits"][0] + p["logits"][1]
        return optax.softmax_cross_entropy(logits, y).mean(), new_stats

    opt = optax.chain(optax.sgd(lr, momentum=momentum, nesterov=True), optax.add_decayed_weights(-lr * weight_decay))
    opt_state = opt.init(params)

    @jax.jit
    def step(p, s, stats, x, y):
        (loss, new_stats), g = jax.value_and_grad(loss_fn, has_aux=True)(p, stats, x, y)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s, new_stats, loss

    def run(p, s, stats, x, y_onehot):
        return step(p, s, stats, jnp.asarray(x), jnp.asarray(_smooth(y_onehot, smoothing)))

    return run, params, opt_state, bn_state


def torch_trainer(w: dict, lr: float, momentum: float, weight_decay: float, smoothing: float, train_whiten: bool):
    """(step, module params): `step(x_uint8, y_onehot)` -> loss (a float), one SGD step in
    place. Tensors are NCHW, PyTorch's own layout."""
    import torch
    import torch.nn.functional as F

    def t(a, conv=False):
        a = torch.from_numpy(np.ascontiguousarray(a))
        return a.permute(3, 2, 0, 1).contiguous() if conv else a  # HWIO -> OIHW

    n_blocks = _blocks(w)
    p = {"whiten": [t(w["whiten"][0], True), t(w["whiten"][1])], "logits": [t(w["logits"][0]), t(w["logits"][1])]}
    stats = {}
    for b in range(1, n_blocks + 1):
        for c in (1, 2):
            p[f"block{b}_conv{c}"] = [t(w[f"block{b}_conv{c}"][0], True)]
            gamma, beta, mean, var = w[f"block{b}_bn{c}"]
            p[f"block{b}_bn{c}"] = [t(gamma), t(beta)]
            stats[f"block{b}_bn{c}"] = [t(mean).clone(), t(var).clone()]
    trained = [a for k, v in p.items() if train_whiten or k != "whiten" for a in v]
    for a in trained:
        a.requires_grad_(True)
    opt = torch.optim.SGD(trained, lr=lr, momentum=momentum, nesterov=True)

    def forward(x):
        h = F.gelu(F.conv2d(x, p["whiten"][0], p["whiten"][1]))
        for b in range(1, n_blocks + 1):
            for c in (1, 2):
                h = F.conv2d(h, p[f"block{b}_conv{c}"][0], padding=1)
                if c == 1:
                    h = F.max_pool2d(h, 2)
                name = f"block{b}_bn{c}"
                m, v = stats[name]
                h = F.gelu(F.batch_norm(h, m, v, *p[name], training=True, momentum=1 - BN_MOMENTUM, eps=EPS))
        return torch.amax(h, dim=(2, 3)) @ p["logits"][0] + p["logits"][1]

    def step(x, y_onehot):
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(255.0)
        yt = torch.from_numpy(_smooth(y_onehot, smoothing))
        opt.zero_grad(set_to_none=True)
        loss = torch.sum(-yt * F.log_softmax(forward(xt), dim=1), dim=1).mean()
        loss.backward()
        with torch.no_grad():  # decoupled weight decay, as Keras' SGD applies it
            for a in trained:
                a.mul_(1 - lr * weight_decay)
        opt.step()
        return float(loss.detach())

    return step, p


def to_keras_layout(p: dict, torch_layout: bool = False) -> dict:
    """{layer: [NumPy arrays]} of raw parameters (JAX, or PyTorch's OIHW kernels) in Keras'
    layout (HWIO kernels)."""
    out = {}
    for k, v in p.items():
        arrs = [np.asarray(a.detach().numpy()) if hasattr(a, "detach") else np.asarray(a) for a in v]
        if torch_layout and ("conv" in k or k == "whiten"):
            arrs[0] = arrs[0].transpose(2, 3, 1, 0)
        out[k] = arrs
    return out
