"""The limit beside Keras: the same MLP, data, loss and optimizer (Adam, lr 1e-3) as a
hand-written training loop in raw JAX (jax.jit + optax) and raw PyTorch.

These reference loops are the one place outside keras_cases/runtime.py that imports a
framework directly: measuring what the framework does without Keras is their point. Both
take the same NumPy arrays and shuffle with NumPy, like the Keras runs they are set beside.
"""

import time

import numpy as np


def _glorot(rng, fan_in, fan_out):
    lim = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-lim, lim, size=(fan_in, fan_out)).astype("float32")


def init_params(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [(_glorot(rng, a, b), np.zeros(b, "float32")) for a, b in zip(sizes[:-1], sizes[1:])]


def _epochs(x, batch_size, epochs, seed):
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        yield [order[i : i + batch_size] for i in range(0, len(x), batch_size)]


def jax_trainer(x, y, sizes, batch_size, seed=0):
    """A raw JAX training run that can be continued: returns (first-step seconds incl.
    compile, run) where run(epochs) trains that many more epochs and returns
    ([seconds per epoch], last loss)."""
    import jax
    import jax.numpy as jnp
    import optax

    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in init_params(sizes, seed)]
    opt = optax.adam(1e-3)
    state = opt.init(params)

    def loss_fn(p, xb, yb):
        h = xb
        for w, b in p[:-1]:
            h = jax.nn.relu(h @ w + b)
        logits = (h @ p[-1][0] + p[-1][1])[:, 0]
        return optax.sigmoid_binary_cross_entropy(logits, yb).mean()

    @jax.jit
    def step(p, s, xb, yb):
        loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    t = time.perf_counter()
    params, state, loss = step(params, state, x[:batch_size], y[:batch_size])
    loss.block_until_ready()
    first = time.perf_counter() - t
    box = {"params": params, "state": state, "loss": loss, "rng": np.random.default_rng(seed)}

    def run(epochs):
        params, state, loss, rng = box["params"], box["state"], box["loss"], box["rng"]
        times = []
        for _ in range(epochs):
            order = rng.permutation(len(x))
            t = time.perf_counter()
            for i in range(0, len(x) - batch_size + 1, batch_size):  # one compiled shape, like drop_remainder
                idx = order[i : i + batch_size]
                params, state, loss = step(params, state, x[idx], y[idx])
            loss.block_until_ready()
            times.append(time.perf_counter() - t)
        box.update(params=params, state=state, loss=loss)
        return times, float(loss)

    return first, run


def jax_loop(x, y, sizes, batch_size, epochs, seed=0):
    """Returns (first-step seconds incl. compile, [seconds per epoch], final loss)."""
    first, run = jax_trainer(x, y, sizes, batch_size, seed)
    times, loss = run(epochs)
    return first, times, loss


def torch_loop(x, y, sizes, batch_size, epochs, seed=0, threads=None):
    import torch

    if threads:
        torch.set_num_threads(threads)
    layers = []
    for i, (w, b) in enumerate(init_params(sizes, seed)):
        lin = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin] + ([torch.nn.ReLU()] if i < len(sizes) - 2 else [])
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step(idx):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt[idx])[:, 0], yt[idx])
        loss.backward()
        opt.step()
        return loss

    t = time.perf_counter()
    loss = step(torch.arange(batch_size))
    first = time.perf_counter() - t
    times = []
    for batches in _epochs(x, batch_size, epochs, seed):
        t = time.perf_counter()
        for idx in batches:
            loss = step(torch.from_numpy(idx))
        times.append(time.perf_counter() - t)
    return first, times, float(loss.detach())
