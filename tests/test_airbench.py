"""airbench94's fidelity (keras_cases/cifar/airbench94.py) against the original's formulas,
on tiny inputs in the pytest process's backend: the per-example learning rate and weight
decay (airbench sums the loss and divides by `kilostep_scale`), the 64x BN-bias rate without
64x decay, the BN momentum convention, the whitening of standardised pixels, the frozen whitening bias, the lookahead following a wall-clock progress, the
alternating flips and the 6-view TTA weights."""

import json
from dataclasses import replace

import keras
import numpy as np
import pytest
from conftest import ROOT, backends_under_test, check, run_python

from keras_cases.cifar.airbench94 import (
    PRESET_LR,
    AirbenchSGD,
    ScaledBias,
    airbench_optimizer,
    airbench_whitening,
    build_airbench,
    initialise_airbench,
)
from keras_cases.cifar.model import RECIPES, initialise, predict_logits
from keras_cases.data.augment import augmented_batches


def test_lr_and_weight_decay_per_example_match_airbench_sum_loss():
    """Three Nesterov steps of AirbenchSGD on the batch-mean loss (batch 1024, the preset's
    lr 1.5 and L2 0.0153 / 11.5) equal PyTorch's SGD on airbench's summed loss with lr =
    11.5 / kilostep_scale, weight_decay = wd / lr (wd = 0.0153 x 1024 / kilostep_scale), and
    for a BN bias (ScaledBias(8)) lr x 64 with weight_decay = wd / (lr x 64): 64x the step,
    the same decay."""
    r = RECIPES["airbench94"]
    scales = {la.name: la.scale for la in build_airbench(r).layers if isinstance(la, ScaledBias)}
    assert scales.pop("whiten_bias") == 1.0 and set(scales.values()) == {8.0} and len(scales) == 6
    B, steps = 1024, 3
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, 3)).astype("float32")
    t = rng.normal(size=(B, 2)).astype("float32")
    w0 = rng.normal(size=(3, 2)).astype("float32")
    b0 = rng.normal(size=(2,)).astype("float32")

    inp = keras.Input((3,))
    net = keras.Model(inp, ScaledBias(8.0, name="bn_bias")(keras.layers.Dense(2, use_bias=False)(inp)))
    net.layers[1].set_weights([w0])
    net.layers[2].set_weights([b0 / 8])
    opt = airbench_optimizer(r, 100, constant=True)
    assert opt.lookahead_steps == 100 and float(np.asarray(opt.learning_rate)) == pytest.approx(1.5)
    # the batch mean of L_i = 0.01 x sum over outputs of (y - t)^2 / 2 (small: the 64x bias
    # rate on 1,024 examples stays stable over three steps)
    net.compile(opt, lambda t, y: 0.005 * keras.ops.sum(keras.ops.square(y - t), axis=-1))
    for _ in range(steps):
        net.train_on_batch(x, t)
    got_w = net.layers[1].get_weights()[0]
    got_b = 8 * net.layers[2].get_weights()[0]

    # airbench: the same L_i summed over the batch
    mom = 0.85
    kilostep = 1024 * (1 + 1 / (1 - mom))
    lr = 11.5 / kilostep
    wd = 0.0153 * B / kilostep
    groups = {"w": [w0.astype("float64"), lr, wd / lr], "b": [b0.astype("float64"), lr * 64, wd / (lr * 64)]}
    bufs = {k: None for k in groups}
    for _ in range(steps):
        w, b = groups["w"][0], groups["b"][0]
        err = 0.01 * (x @ w + b - t)  # d L_i / dy
        grads = {"w": x.T @ err, "b": err.sum(0)}
        for k, (p, lr_k, wd_k) in groups.items():
            g = grads[k] + wd_k * p  # torch.optim.SGD: weight decay added to the gradient
            bufs[k] = g if bufs[k] is None else mom * bufs[k] + g
            groups[k][0] = p - lr_k * (g + mom * bufs[k])  # nesterov
    np.testing.assert_allclose(got_w, groups["w"][0], rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(got_b, groups["b"][0], rtol=2e-4, atol=2e-5)
    # airbench's weight decay is wd / lr: another lr leaves the decay per step, lr x L2, as it was
    assert opt.l2 == pytest.approx(0.0153 / 11.5) and r.lr == PRESET_LR
    for lr in (0.75, 3.0):
        other = airbench_optimizer(replace(r, lr=lr), 100, constant=True)
        assert other.l2 * lr == pytest.approx(opt.l2 * 1.5) and other.l2 != pytest.approx(opt.l2)


def test_bn_momentum_follows_pytorch_momentum_0_4():
    """airbench's BatchNorm(momentum=0.6) passes momentum = 1 - 0.6 to PyTorch: running = 0.6
    running + 0.4 batch. The network's Keras BNs (momentum 0.6) do the same; no scale."""
    m = build_airbench(RECIPES["airbench94"])
    bn = m.get_layer("block1_bn1")
    assert bn.momentum == 0.6 and not bn.scale and not bn.center
    x = np.random.default_rng(0).normal(3.0, 1.0, size=(64, 4, 4, 64)).astype("float32")
    bn(x, training=True)
    running = keras.ops.convert_to_numpy(bn.moving_mean)
    np.testing.assert_allclose(running, 0.6 * 0 + 0.4 * x.mean((0, 1, 2)), rtol=1e-4)


def reference_whitening(x, eps=5e-4):
    """airbench's get_patches / get_whitening_parameters on NCHW standardised images (its
    patches flattened in (c, h, w) order), as NumPy: 24 filters (c, h, w) and no bias."""
    z = x.astype("float64") / 255
    z = (z - z.mean((0, 1, 2))) / z.std((0, 1, 2))
    z = z.transpose(0, 3, 1, 2)  # NCHW
    n, c, h, w = z.shape
    patches = np.stack([z[:, :, i : i + 2, j : j + 2] for i in range(h - 1) for j in range(w - 1)], axis=1).reshape(
        -1, c * 4
    )
    vals, vecs = np.linalg.eigh(patches.T @ patches / len(patches))
    vals, vecs = vals[::-1], vecs.T[::-1]
    filt = vecs / np.sqrt(vals + eps)[:, None]
    return np.concatenate([filt, -filt]).reshape(2 * c * 4, c, 2, 2), z


def test_whitening_matches_airbench_on_standardised_pixels():
    """Our fixed conv on x / 255 gives airbench's whitening conv on (x/255 - mean) / std
    (its layout NCHW, ours NHWC), up to each eigenvector's sign (both signs are there); and
    the learnt bias after it starts at 0."""
    x = np.random.default_rng(0).integers(0, 256, size=(40, 8, 8, 3)).astype("uint8")
    x[..., 1] = (0.7 * x[..., 0] + 0.3 * x[..., 1]).astype("uint8")  # correlated channels
    kernel, bias = airbench_whitening(x)
    assert kernel.shape == (2, 2, 3, 24) and bias.shape == (24,)
    ours = keras.ops.convert_to_numpy(
        keras.ops.conv(x.astype("float32") / 255, kernel, padding="valid") + bias
    ).reshape(-1, 24)
    filt, z = reference_whitening(x)
    windows = np.stack([z[:, :, i : i + 2, j : j + 2] for i in range(7) for j in range(7)], axis=1)
    theirs = np.einsum("nchw,kchw->nk", windows.reshape(-1, 3, 2, 2), filt)  # (n, window) rows, as ours
    np.testing.assert_allclose(ours[:, 12:], -ours[:, :12], atol=1e-5)
    # eigenvectors are unique only up to sign (and rotation where eigenvalues tie): compare
    # the basis-free Gram matrices of the 12 whitened features over all patches
    a, b = ours[:, :12].astype("float64"), theirs[:, :12]
    np.testing.assert_allclose(a @ a.T, b @ b.T, atol=2e-3 * np.abs(b @ b.T).max())
    var = (a**2).mean(0)
    assert var[0] > var[-1]  # the largest eigenvalue first, as airbench's flip(0)
    from dataclasses import replace

    r = replace(RECIPES["airbench94"], widths=(8,))
    m = build_airbench(r, (8, 8, 3))
    initialise(m, r, 0, x)
    assert not m.get_layer("whiten").trainable and np.all(m.get_layer("whiten_bias").get_weights()[0] == 0)


def tiny_fit(steps, opt, x, y, extra_layer_name="whiten_bias"):
    inp = keras.Input((3,))
    net = keras.Model(inp, keras.layers.Dense(2, use_bias=False, name="d")(ScaledBias(name=extra_layer_name)(inp)))
    net.get_layer("d").set_weights([np.random.default_rng(5).normal(size=(3, 2)).astype("float32")])
    net.compile(opt, "mse")
    history = []
    for _ in range(steps):
        net.train_on_batch(x, y)
        history.append([w.copy() for w in net.get_weights()])
    return net, history


def test_whitening_bias_frozen_after_its_share_of_training():
    """The variables named whiten_bias train for steps 1..freeze_after, then stay put (momentum
    included); the rest trains on. With set_progress, the share of the clock decides."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    _, h = tiny_fit(8, AirbenchSGD(0.1, l2=0.01, freeze=("whiten_bias",), freeze_after=3, total_steps=8), x, y)
    bias = [s[0] for s in h]
    dense = [s[1] for s in h]
    assert not np.allclose(bias[1], bias[2])  # step 3 still trains it
    for s in range(3, 8):
        np.testing.assert_array_equal(bias[s], bias[2])
        assert not np.allclose(dense[s], dense[s - 1])
    opt = AirbenchSGD(0.1, freeze=("whiten_bias",), freeze_after=3, total_steps=8)
    opt.set_progress(0.5)  # 0.5 x 8 = step 4 of the plan: frozen from the first step
    _, h = tiny_fit(3, opt, x, y)
    np.testing.assert_array_equal(h[2][0], np.zeros(3))


def test_lookahead_follows_set_progress():
    """Under a wall-clock budget the lookahead starts when the budget's clock passes its
    start share (not the planned step count), and its decay grows with that clock."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    plain = AirbenchSGD(0.1, lookahead_steps=100, lookahead_start=30, lookahead_every=2)
    _, h_plain = tiny_fit(6, plain, x, y)
    clocked = AirbenchSGD(0.1, lookahead_steps=100, lookahead_start=30, lookahead_every=2)
    clocked.set_progress(0.9)  # past the start: lookahead at steps 2 (snapshot), 4, 6
    _, h = tiny_fit(6, clocked, x, y)
    np.testing.assert_allclose(h[0][1], h_plain[0][1], rtol=1e-6)  # step 1: no lookahead either way
    # step 2 takes the snapshot (no change), step 4 averages with rho = 0.95^2 x 0.9^3
    np.testing.assert_allclose(h[1][1], h_plain[1][1], rtol=1e-6)
    assert not np.allclose(h[3][1], h_plain[3][1], rtol=1e-4)
    assert float(keras.ops.convert_to_numpy(clocked._snapped)) == 1.0
    assert float(keras.ops.convert_to_numpy(plain._snapped)) == 0.0


def test_alternating_flip_and_translation():
    """Each image's orientation alternates epoch to epoch; about half start mirrored; with pad
    2 every image is shifted by up to 2 pixels (reflect), as airbench's loader."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(200, 6, 6, 1)).astype("uint8")
    y = np.arange(200)[:, None].astype("float32")  # the label names the image
    data = augmented_batches(x, y, 64, seed=0, pad=0, flip="alternate")

    def epoch_images():
        out = np.empty_like(x)
        for i in range(len(data)):
            xb, yb = data[i]
            out[yb[:, 0].astype(int)] = xb
        data.on_epoch_end()
        return out

    e0, e1, e2 = epoch_images(), epoch_images(), epoch_images()
    mirrored0 = np.all(e0 == x[:, :, ::-1], axis=(1, 2, 3))
    assert 70 < mirrored0.sum() < 130
    np.testing.assert_array_equal(e1, e0[:, :, ::-1])
    np.testing.assert_array_equal(e2, e0)
    xb, yb = augmented_batches(x, y, 200, seed=0, pad=2, flip="alternate")[0]
    shifted = np.empty_like(x)
    shifted[yb[:, 0].astype(int)] = xb
    base = np.where(mirrored0[:, None, None, None], x[:, :, ::-1], x)
    padded = np.pad(base, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    found = [
        any(np.array_equal(shifted[k], padded[k, dy : dy + 6, dx : dx + 6]) for dy in range(5) for dx in range(5))
        for k in range(200)
    ]
    assert all(found) and not np.array_equal(shifted, base)


def test_tta_level_2_weights_six_views():
    """tta=2: 1/4 each for the image and its mirror, 1/8 each for the four translated (one
    pixel up-left / down-right, reflect) views and their mirrors, as infer_mirror_translate."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(5, 6, 6, 2)).astype("float32")
    inp = keras.Input((6, 6, 2))
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.Flatten()(inp)))
    f = lambda v: model.predict(v, verbose=0)  # noqa: E731
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    views = [x, p[:, :6, :6], p[:, 2:, 2:]]
    want = 0.25 * (f(x) + f(x[:, :, ::-1])) + sum(0.125 * (f(v) + f(v[:, :, ::-1])) for v in views[1:])
    np.testing.assert_allclose(predict_logits(model, x, 2), want, rtol=1e-5, atol=1e-5)


def test_initialise_airbench_on_a_small_net():
    """initialise_airbench on widths 8,8,8: dirac block convs, the fixed whitening bias set."""
    from dataclasses import replace

    r = replace(RECIPES["airbench94"], widths=(8, 8, 8))
    m = build_airbench(r, (16, 16, 3))
    x = np.random.default_rng(0).integers(0, 256, size=(20, 16, 16, 3)).astype("uint8")
    initialise(m, r, 0, x)
    k = m.get_layer("block1_conv2").get_weights()[0]
    assert np.array_equal(k[1, 1], np.eye(8)) and np.abs(k).sum() == 8
    assert np.abs(m.get_layer("whiten").get_weights()[1]).max() > 0
    initialise_airbench  # noqa: B018  (imported: the public name stays)


def test_the_plain_pytorch_reference_whitens_and_learns(tmp_path):
    """benchmarks/airbench_torch.py, airbench94 written again in PyTorch to tell the port's
    accuracy from the data's: its whitening conv decorrelates the 2x2 patches (off-diagonal
    covariance ~0, the leading directions at unit variance, the eps shrinking only the weakest)
    and stays fixed; 20 steps of narrow widths on 5,000 images learn far above the 10% of
    chance, and improve over the epochs."""
    if "torch" not in backends_under_test():
        pytest.fail("torch is not installed: the PyTorch reference cannot be checked")
    out = tmp_path / "ref.json"
    check(run_python([str(ROOT / "tests" / "scripts" / "airbench_torch_reference.py"), str(out)], timeout=600))
    r = json.loads(out.read_text())
    cov = np.array(r["cov"])
    assert np.abs(cov - np.diag(np.diag(cov))).max() < 2e-3
    assert np.all(np.diag(cov)[:6] > 0.98) and np.all(np.diff(np.diag(cov)) <= 1e-3)  # largest eigenvalue first
    assert r["mirror"] < 1e-5 and not r["whiten_trainable"]
    assert r["test_accuracy"] > 0.3 and r["test_accuracy_tta"] > 0.3, r
    assert r["val_by_epoch"][-1] > r["val_by_epoch"][0] + 0.1, r
