"""Image augmentation shared by the image cases: `augmentation()` builds the Keras
preprocessing layers (flip, translation, rotation, contrast) that every backend runs;
`flip_crop`, `cutout` and `augmented_batches` do flips, padded crops and cutout in NumPy for
the training loop of the CIFAR recipe (identical on every backend, and cheap). Re-exported by `data.images`.
"""

from __future__ import annotations

import numpy as np


def augmentation(flip=True, translate=0.1, rotate=0.0, contrast=0.0, seed=None, name="augment"):
    """Keras preprocessing layers (active in training only), on every backend."""
    import keras
    from keras import layers

    steps = []
    if flip:
        steps.append(layers.RandomFlip("horizontal", seed=seed))
    if translate:
        steps.append(layers.RandomTranslation(translate, translate, fill_mode="reflect", seed=seed))
    if rotate:
        steps.append(layers.RandomRotation(rotate, fill_mode="reflect", seed=seed))
    if contrast:
        steps.append(layers.RandomContrast(contrast, seed=seed))
    return keras.Sequential(steps, name=name)


def flip_crop(x: np.ndarray, rng: np.random.Generator, pad: int = 4, flip: bool = True) -> np.ndarray:
    """Random horizontal flips and random crops of a reflect-padded batch (NumPy, uint8 in,
    uint8 out): the standard CIFAR augmentation."""
    n, h, w, _ = x.shape
    if flip:
        m = rng.random(n) < 0.5
        x = x.copy()
        x[m] = x[m, :, ::-1]
    if pad:
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        dy = rng.integers(0, 2 * pad + 1, n)
        dx = rng.integers(0, 2 * pad + 1, n)
        rows = dy[:, None] + np.arange(h)[None, :]
        cols = dx[:, None] + np.arange(w)[None, :]
        x = xp[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return x


def cutout(x: np.ndarray, rng: np.random.Generator, size: int, fill) -> np.ndarray:
    """Cutout (DeVries & Taylor 2017, as airbench96 does it): in each image a `size` x `size`
    square, placed uniformly at random wholly inside the image, set to `fill` (per channel:
    the training images' mean colour, which the standardised pixels read as 0)."""
    n, h, w, _ = x.shape
    y0 = rng.integers(0, h - size + 1, n)
    x0 = rng.integers(0, w - size + 1, n)
    rows = (np.arange(h)[None, :] >= y0[:, None]) & (np.arange(h)[None, :] < y0[:, None] + size)
    cols = (np.arange(w)[None, :] >= x0[:, None]) & (np.arange(w)[None, :] < x0[:, None] + size)
    out = x.copy()
    out[rows[:, :, None] & cols[:, None, :]] = np.asarray(fill, dtype=x.dtype)
    return out


def augmented_batches(
    x, y, batch_size: int, seed: int, pad: int = 4, flip: bool | str = True, sample_weight=None, cutout_size: int = 0
):
    """Like `data.batches`, with `flip_crop` (then `cutout` of `cutout_size`, if any) applied
    to each training batch. `flip="alternate"` is airbench's alternating flip: a fixed random
    half of the images is mirrored on even epochs and the other half on odd ones (each image
    alternates between its two orientations), instead of a coin per image per batch."""
    import keras

    class Augmented(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.order = np.random.default_rng([seed, 0]).permutation(len(y))
            self.mirrored = np.random.default_rng([seed, 1, 0]).random(len(y)) < 0.5 if flip == "alternate" else None
            self.fill = np.round(x.mean(axis=(0, 1, 2))) if cutout_size else None  # training data only

        def __len__(self):
            return -(-len(y) // batch_size)

        def __getitem__(self, i):
            idx = self.order[i * batch_size : (i + 1) * batch_size]
            rng = np.random.default_rng([seed, self.epoch, i])
            xb = x[idx]
            if self.mirrored is not None:
                m = self.mirrored[idx] ^ (self.epoch % 2 == 1)
                xb = xb.copy()
                xb[m] = xb[m, :, ::-1]
            xb = flip_crop(xb, rng, pad=pad, flip=flip is True)
            if cutout_size:
                xb = cutout(xb, rng, cutout_size, self.fill)
            return (xb, y[idx]) if sample_weight is None else (xb, y[idx], sample_weight[idx])

        def on_epoch_end(self):
            self.epoch += 1
            self.order = np.random.default_rng([seed, self.epoch]).permutation(len(y))

    return Augmented()
