"""In-memory array datasets for the architecture studies: MNIST-1D, scikit-learn digits,
MNIST, or your own `.npz` file.

Every loader returns an `ArrayData` with a fixed train / validation / test split (the split
never depends on `--seed`), float32 inputs in their natural example shape (`(40,)` for an
MNIST-1D signal, `(8, 8)` or `(28, 28)` for an image) and integer labels 0..k-1. Models
reshape inside the graph (Flatten for an MLP, a channel axis for a CNN, rows as time steps
for a GRU), so one array feeds every family.

- `mnist1d`  MNIST-1D (Greydanus 2020) generated offline by the `mnist1d` package with its
             default arguments (the published recipe): 4,000 train / 1,000 test signals of
             length 40. The published 4,000 are split 3,200 train / 800 validation; the
             published 1,000 stay the test set. Cached as npz in the Keras cache.
- `digits`   `sklearn.datasets.load_digits()`: 1,797 8x8 images, split 60/20/20 (stratified).
- `mnist`    `keras.datasets.mnist` (60,000 + 10,000) when it is cached or can be
             downloaded: the 60,000 are split 54,000 / 6,000, the official 10,000 are the test
             set. Offline (`KERAS_CASES_OFFLINE=1`, or the download fails) it falls back to the
             official 10,000-image test split found through the dataset registry
             (`$KERAS_CASES_DATA_DIR/mnist/t10k-*.gz`), split 60/20/20 (stratified); the
             dataset name says which one a run used.
- a path     an `.npz` file with arrays `x` (n, ...) and integer `y` (n,), optionally
             `x_test` / `y_test`; split like `digits` (or train/val only when a test set is given).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_cases import UserError
from keras_cases.data import keras_cache_dir, locate, split_stratified

SPLIT_SEED = 2024
DATASETS = ("mnist1d", "digits", "mnist")


@dataclass
class ArrayData:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    class_names: tuple = ()

    @property
    def shape(self) -> tuple:
        """One example's shape: (length,) for a signal, (height, width) for an image."""
        return tuple(self.x_train.shape[1:])

    @property
    def sizes(self) -> tuple[int, int, int]:
        return len(self.y_train), len(self.y_val), len(self.y_test)

    def subset(self, n_train: int, n_val: int | None = None, n_test: int | None = None) -> ArrayData:
        """The first rows of each split (a smaller, still fixed, problem for quick runs)."""
        n_val = n_train // 4 if n_val is None else n_val
        n_test = n_val if n_test is None else n_test
        return ArrayData(
            self.name,
            self.x_train[:n_train],
            self.y_train[:n_train],
            self.x_val[:n_val],
            self.y_val[:n_val],
            self.x_test[:n_test],
            self.y_test[:n_test],
            self.n_classes,
            self.class_names,
        )


def _finish(name, x, y, test=None, val=0.2) -> ArrayData:
    """Split (x, y) stratified with the fixed split seed; `test` is an (x, y) pair or None."""
    x = np.asarray(x, dtype="float32")
    y = np.asarray(y).astype("int64").ravel()
    if test is None:
        tr, va, te = split_stratified(y, SPLIT_SEED, val=val, test=val)
        parts = (x[tr], y[tr], x[va], y[va], x[te], y[te])
    else:
        from sklearn.model_selection import train_test_split

        tr, va = train_test_split(np.arange(len(y)), test_size=val, stratify=y, random_state=SPLIT_SEED)
        tr, va = np.sort(tr), np.sort(va)
        xt = np.asarray(test[0], dtype="float32")
        yt = np.asarray(test[1]).astype("int64").ravel()
        parts = (x[tr], y[tr], x[va], y[va], xt, yt)
    return ArrayData(name, *parts, n_classes=int(max(y.max(), parts[5].max())) + 1)


def load_mnist1d() -> ArrayData:
    path = keras_cache_dir() / "mnist1d" / "mnist1d_default.npz"
    d = None
    if path.is_file():
        try:  # a cache file cut short or damaged is made again, not an error
            with np.load(path, allow_pickle=False) as z:
                d = {k: z[k] for k in ("x", "y", "x_test", "y_test")}
        except Exception:
            d = None
    if d is None:
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError:
            raise UserError("MNIST-1D needs the mnist1d package: pip install mnist1d")
        raw = make_dataset(get_dataset_args())
        d = {k: np.asarray(raw[k]) for k in ("x", "y", "x_test", "y_test")}
        try:  # cache; write-then-rename so concurrent runs never read half a file
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **d)
            os.replace(tmp, path)
        except OSError:
            pass
    return _finish(
        "MNIST-1D (mnist1d default recipe: 4,000 train + 1,000 test)", d["x"], d["y"], test=(d["x_test"], d["y_test"])
    )


def load_digits() -> ArrayData:
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    return _finish("sklearn digits (1,797 8x8 images)", d.images / 16.0, d.target)


def read_idx(path) -> np.ndarray:
    """An IDX file (optionally gzip): MNIST's original format."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise UserError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise UserError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {data.size}")
    return data.reshape(dims)


def load_mnist_test_split() -> ArrayData:
    x = read_idx(locate("mnist_test_images"))
    y = read_idx(locate("mnist_test_labels"))
    return _finish("MNIST official test split (10,000 images) split 60/20/20", x / 255.0, y)


def load_mnist() -> ArrayData:
    cached = (keras_cache_dir() / "mnist.npz").is_file()
    offline = os.environ.get("KERAS_CASES_OFFLINE") not in (None, "", "0")
    if cached or not offline:
        try:
            import keras

            (x, y), (xt, yt) = keras.datasets.mnist.load_data()
            return _finish(
                "MNIST (keras.datasets: 60,000 train + 10,000 test)", x / 255.0, y, test=(xt / 255.0, yt), val=0.1
            )
        except Exception as e:  # network errors come in many types
            print(f"note: full MNIST unavailable ({type(e).__name__}); using the 10,000-image test split")
    return load_mnist_test_split()


def _read_npz(p: Path) -> dict:
    """Every array of an .npz file; a file that is no readable .npz (cut short, not a zip,
    pickled objects) is a UserError naming it."""
    if p.is_dir():
        raise UserError(f"{p} is a folder, not an .npz data file")
    if not p.is_file():
        raise UserError(f"data file not found: {p} (or use one of: {', '.join(DATASETS)})")
    try:
        z = np.load(p, allow_pickle=False)
        if isinstance(z, np.ndarray):  # a .npy file
            raise UserError(f"{p} holds one .npy array, not an .npz archive with arrays x and y")
        with z:
            return {k: z[k] for k in z.files}
    except UserError:
        raise
    except Exception as e:  # zipfile.BadZipFile, EOFError, zlib.error, ValueError (pickles), OSError
        raise UserError(
            f"{p} could not be read as .npz ({type(e).__name__}): it is no numpy.savez archive, or it "
            "is damaged or cut short; save it again with numpy.savez(path, x=..., y=...)"
        )


def _check_arrays(p: Path, x, y, what: str = "") -> None:
    if x.ndim not in (2, 3) or y.ndim != 1 or len(x) != len(y):
        raise UserError(
            f"{p}: x{what} must be (n, length) or (n, height, width) and y{what} (n,); got {x.shape} and {y.shape}"
        )
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.integer)):
        raise UserError(f"{p}: x{what} must be numeric and y{what} integer class labels")
    if not np.isfinite(x).all():
        raise UserError(f"{p}: x{what} holds NaN or infinite values")


def load_npz(path) -> ArrayData:
    p = Path(path).expanduser()
    d = _read_npz(p)
    missing = [k for k in ("x", "y") if k not in d]
    if missing:
        raise UserError(f"{p} has no array named {' or '.join(missing)} (found: {', '.join(d) or 'none'})")
    x, y = d["x"], d["y"]
    _check_arrays(p, x, y)
    if len(y) == 0 or y.min() < 0 or np.bincount(y).min() < 5:
        raise UserError(f"{p}: labels must be 0..k-1 with at least 5 examples per class")
    test = None
    if {"x_test", "y_test"} <= set(d):
        test = (d["x_test"], d["y_test"])
        _check_arrays(p, *test, what="_test")
        if test[0].shape[1:] != x.shape[1:] or len(test[1]) == 0 or not 0 <= test[1].min() <= test[1].max() <= y.max():
            raise UserError(
                f"{p}: x_test must be examples shaped like x ({x.shape[1:]}) with y_test labels "
                f"in 0..{y.max()}; got {test[0].shape} and labels {sorted(set(test[1].tolist()))[:5]}"
            )
    return _finish(str(p), x, y, test=test)


def load(name: str) -> ArrayData:
    """A dataset by name (mnist1d, digits, mnist) or an .npz path."""
    loaders = {"mnist1d": load_mnist1d, "digits": load_digits, "mnist": load_mnist}
    if name in loaders:
        return loaders[name]()
    if name.endswith(".npz") or os.sep in name:
        return load_npz(name)
    raise UserError(f"unknown dataset {name!r}: choose {', '.join(DATASETS)} or give an .npz path")
