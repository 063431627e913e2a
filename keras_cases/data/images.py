"""Image datasets shared by the image case studies (representation, transfer, cifar, the
GAN): CIFAR-10, MNIST, scikit-learn digits, or a folder of your own images.

Every loader returns an `ArrayData` (see `data.arrays`) whose images are **uint8 pixels,
shape (n, height, width, channels)**, with integer labels 0..k-1 and `class_names`. Models
rescale inside the graph (`keras.layers.Rescaling(1/255)`), so a saved model takes raw
pixels: what `serve` receives from an uploaded image.

- `cifar10`  `keras.datasets.cifar10` (50,000 + 10,000) when cached or downloadable;
             offline, the JPEG copy `$KERAS_CASES_DATA_DIR/cifar10_jpg/{train,test}/<class>/`
             (a JPEG re-encoding: accuracies are close to, not identical with, the original
             arrays; the dataset name says which was used). The last 5,000 of a fixed
             permutation of the training images are the validation set.
- `mnist`    `data.arrays.load_mnist()` (full MNIST online, the 10,000-image test split
             offline), as 28x28x1 uint8.
- `digits`   scikit-learn's 8x8 digits as 8x8x1 uint8 (0..16 scaled to 0..255).
- a folder   one sub-folder per class (`DIR/<class>/*.jpg|png|...`), or `DIR/train/<class>/`
             and `DIR/test/<class>/` for a given test split. Any image size and mode:
             converted to RGB and resized to `size` x `size`. Without a test folder the
             images are split 60/20/20 stratified with a fixed seed.

Decoding a folder happens once: the arrays are cached as `.npz` in the Keras cache, keyed
by the folder's path, file list and the size, so a changed folder is decoded again (and a
damaged cache file too). A folder's mistakes are one-line errors before anything is decoded
where they can be: not there, a file, no class sub-folders, one class, an empty class, too
few images, more pixels than fit in memory, an image whose header declares more pixels than
PIL's decompression-bomb limit; an image that cannot be decoded is named.

Also importable from here, as before: `augmentation()`, `flip_crop`, `cutout` and `augmented_batches`
(`data.augment`: Keras preprocessing layers, and flips and padded crops in NumPy for the
CIFAR recipe's training loop), `decode_bytes` and `ImagePredictor` (`data.image_serving`:
a saved image classifier for `serve`).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from keras_cases import UserError
from keras_cases.data import data_dir, keras_cache_dir, split_stratified
from keras_cases.data.arrays import SPLIT_SEED, ArrayData
from keras_cases.data.augment import augmentation, augmented_batches, cutout, flip_crop  # noqa: F401  (re-exported)
from keras_cases.data.image_serving import ImagePredictor, decode_bytes  # noqa: F401  (re-exported)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_VAL = 5000
DATASETS = ("cifar10", "mnist", "digits")
NATIVE_SIZE = {"cifar10": 32, "mnist": 28, "digits": 8}  # side length of each named dataset's images


def _offline() -> bool:
    return os.environ.get("KERAS_CASES_OFFLINE") not in (None, "", "0")


# --- image folders ---------------------------------------------------------------------
def _class_dirs(root: Path) -> list[Path]:
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return dirs


def _image_files(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def check_folder(path, flag: str = "--images") -> Path:
    """An image folder named on the command line, checked before any data loads: it exists
    and is a folder (its contents are checked by `scan_folder`)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{flag} {p}: image folder not found")
    if not p.is_dir():
        raise UserError(f"{flag} {p} is a file, not an image folder (one sub-folder of images per class)")
    return p


def check_source(name: str, flag: str = "--data") -> int | None:
    """`--data NAME|DIR` checked before loading: the images' side length for a named dataset,
    None for a folder (its images are resized to --image-size)."""
    if name in NATIVE_SIZE:
        return NATIVE_SIZE[name]
    if os.sep in name or "/" in name or Path(name).expanduser().exists():
        check_folder(name, flag)
        return None
    raise UserError(f"{flag} {name!r}: unknown dataset; choose {', '.join(DATASETS)} or give an image folder")


def scan_folder(root: Path, classes: list[str] | None = None) -> tuple[list[str], list[Path], np.ndarray]:
    """(class names, image files, labels) of a folder with one sub-folder per class."""
    dirs = _class_dirs(root)
    if classes is None:
        classes = [d.name for d in dirs]
        if not classes:
            loose = _image_files(root)
            raise UserError(
                f"{root} holds {len(loose)} images but no class sub-folders: put each class's images in {root}/<class>/"
                if loose
                else f"{root} holds no images: expected {root}/<class>/*.jpg|png|... (one sub-folder per class)"
            )
        if len(classes) < 2:
            raise UserError(
                f"{root} needs one sub-folder per class (at least 2); found {len(classes)}: {', '.join(classes)}"
            )
    else:
        missing = sorted(set(d.name for d in dirs) - set(classes))
        if missing:
            raise UserError(f"{root} has class folders the training split does not: {', '.join(missing)}")
    files, labels = [], []
    for k, name in enumerate(classes):
        d = root / name
        found = _image_files(d) if d.is_dir() else []
        if not found and d.is_dir():
            raise UserError(f"class folder {d} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        files += found
        labels += [k] * len(found)
    if not files:
        raise UserError(f"no images found under {root}")
    return classes, files, np.asarray(labels, "int64")


def open_image(path):
    """PIL's image of `path`, its header read and nothing decoded yet; an image whose header
    declares more pixels than PIL's decompression-bomb limit (Image.MAX_IMAGE_PIXELS) is a
    UserError, not a warning or a huge allocation."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
            found = re.search(r"\((\d+) pixels\)", str(e))
            size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
            raise UserError(
                f"{path} declares {size}, over PIL's decompression-bomb limit of "
                f"{Image.MAX_IMAGE_PIXELS:,} (Image.MAX_IMAGE_PIXELS): shrink it or remove it"
            )


def decode(files: list[Path], size: int) -> np.ndarray:
    """uint8 (n, size, size, 3); a file that cannot be decoded is an error naming it (an
    image silently dropped would shift a class's share without anyone noticing)."""
    from PIL import Image

    check_memory(len(files), size)
    out = np.empty((len(files), size, size, 3), np.uint8)
    for i, f in enumerate(files):
        try:
            with open_image(f) as im:
                im = im.convert("RGB")
                if im.size != (size, size):
                    im = im.resize((size, size), Image.BILINEAR)
                out[i] = np.asarray(im)
        except UserError:
            raise
        except Exception as e:  # PIL raises many kinds for broken files (OSError, SyntaxError, EOFError, ...)
            raise UserError(f"{f} is not a readable image ({type(e).__name__}); remove it or fix it")
    return out


def check_memory(n: int, size: int, channels: int = 3) -> None:
    """Refuse `n` images of size x size before allocating more than half the machine's memory."""
    need = n * size * size * channels
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if need > total // 2:
        raise UserError(
            f"{n:,} images of {size}x{size} need {need / 2**30:,.1f} GiB, more than half this "
            f"machine's {total / 2**30:,.1f} GiB: use a smaller --image-size"
        )


def _cache_key(parts: list[Path], size: int) -> str:
    h = hashlib.sha256(str(size).encode())
    for p in parts:
        h.update(str(p.resolve()).encode())
        st = p.stat()
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _cached_decode(files: list[Path], size: int, tag: str) -> np.ndarray:
    path = keras_cache_dir() / "keras_cases_images" / f"{tag}-{_cache_key(files, size)}.npz"
    if path.is_file():
        try:  # a cache file cut short or damaged is decoded again, not an error
            with np.load(path, allow_pickle=False) as z:
                return z["x"]
        except Exception:
            pass
    x = decode(files, size)
    try:  # write-then-rename: concurrent runs never read half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, x=x)
        os.replace(tmp, path)
    except OSError:
        pass
    return x


def load_folder(root, size: int = 64, name: str | None = None, val: float = 0.1) -> ArrayData:
    """A folder of images by class (see the module docstring)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"image folder not found: {root}")
    train_dir, test_dir = root / "train", root / "test"
    if train_dir.is_dir() != test_dir.is_dir():
        have, lack = ("train", "test") if train_dir.is_dir() else ("test", "train")
        raise UserError(
            f"{root} has a {have}/ folder but no {lack}/ folder: give both (each with one "
            "sub-folder per class), or one sub-folder per class and no split"
        )
    if train_dir.is_dir() and test_dir.is_dir():
        classes, f_tr, y_tr = scan_folder(train_dir)
        _, f_te, y_te = scan_folder(test_dir, classes)
        x_tr = _cached_decode(f_tr, size, root.name + "-train")
        x_te = _cached_decode(f_te, size, root.name + "-test")
        counts = np.bincount(y_tr, minlength=len(classes))
        if counts.min() < 2:
            raise UserError(
                f"class {classes[int(counts.argmin())]!r} has {counts.min()} training images; need at least 2"
            )
        from sklearn.model_selection import train_test_split

        tr, va = train_test_split(np.arange(len(y_tr)), test_size=val, stratify=y_tr, random_state=SPLIT_SEED)
        tr, va = np.sort(tr), np.sort(va)
        parts = (x_tr[tr], y_tr[tr], x_tr[va], y_tr[va], x_te, y_te)
    else:
        classes, files, y = scan_folder(root)
        counts = np.bincount(y, minlength=len(classes))
        if counts.min() < 5:
            raise UserError(
                f"class {classes[int(counts.argmin())]!r} has {counts.min()} images; need at least 5 "
                "for a train/validation/test split"
            )
        x = _cached_decode(files, size, root.name)
        tr, va, te = split_stratified(y, SPLIT_SEED, val=0.2, test=0.2)
        parts = (x[tr], y[tr], x[va], y[va], x[te], y[te])
    return ArrayData(
        name or f"image folder {root} ({size}x{size})", *parts, n_classes=len(classes), class_names=tuple(classes)
    )


# --- named datasets --------------------------------------------------------------------
def _split_val(x, y, n_val: int):
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    tr, va = np.sort(perm[:-n_val]), np.sort(perm[-n_val:])
    return x[tr], y[tr], x[va], y[va]


def cifar10_folder() -> Path | None:
    d = data_dir()
    if d is not None and (d / "cifar10_jpg" / "train").is_dir():
        return d / "cifar10_jpg"
    return None


def load_cifar10() -> ArrayData:
    cached = (keras_cache_dir() / "cifar-10-batches-py").is_dir()
    folder = cifar10_folder()
    if cached or (folder is None and not _offline()):
        try:
            import keras

            (x, y), (xt, yt) = keras.datasets.cifar10.load_data()
            y, yt = y.ravel().astype("int64"), yt.ravel().astype("int64")
            return ArrayData(
                "CIFAR-10 (keras.datasets: 50,000 train + 10,000 test)",
                *_split_val(x, y, CIFAR10_VAL),
                xt,
                yt,
                10,
                CIFAR10_CLASSES,
            )
        except Exception as e:  # network errors come in many types
            if folder is None:
                raise UserError(
                    f"CIFAR-10 could not be downloaded ({type(e).__name__}: {e}); put the JPEG copy "
                    "at $KERAS_CASES_DATA_DIR/cifar10_jpg/{train,test}/<class>/ or pass --images DIR"
                )
    if folder is None:
        raise UserError(
            "CIFAR-10 not found: offline and neither the Keras cache (~/.keras/datasets/"
            "cifar-10-batches-py) nor $KERAS_CASES_DATA_DIR/cifar10_jpg/ holds it"
        )
    classes, f_tr, y = scan_folder(folder / "train")
    if tuple(classes) != CIFAR10_CLASSES:
        raise UserError(f"{folder}/train should hold the 10 CIFAR-10 class folders; found {', '.join(classes)}")
    _, f_te, yt = scan_folder(folder / "test", classes)
    x = _cached_decode(f_tr, 32, "cifar10_jpg-train")
    xt = _cached_decode(f_te, 32, "cifar10_jpg-test")
    return ArrayData(
        f"CIFAR-10 JPEG copy ({folder}: {len(y):,} train + {len(yt):,} test)",
        *_split_val(x, y, CIFAR10_VAL),
        xt,
        yt,
        10,
        CIFAR10_CLASSES,
    )


def _as_uint8_images(d: ArrayData, scale: float) -> ArrayData:
    def img(x):
        return np.clip(np.rint(x * scale), 0, 255).astype(np.uint8)[..., None]

    return ArrayData(
        d.name,
        img(d.x_train),
        d.y_train,
        img(d.x_val),
        d.y_val,
        img(d.x_test),
        d.y_test,
        d.n_classes,
        tuple(str(i) for i in range(d.n_classes)),
    )


def load_mnist() -> ArrayData:
    from keras_cases.data import arrays

    return _as_uint8_images(arrays.load_mnist(), 255.0)


def load_digits() -> ArrayData:
    from keras_cases.data import arrays

    return _as_uint8_images(arrays.load_digits(), 255.0)


def load(name: str, size: int = 64) -> ArrayData:
    """A dataset by name (cifar10, mnist, digits) or an image folder path."""
    loaders = {"cifar10": load_cifar10, "mnist": load_mnist, "digits": load_digits}
    if name in loaders:
        return loaders[name]()
    p = Path(name).expanduser()
    if p.is_dir():
        return load_folder(p, size)
    if p.exists():
        check_folder(p, "--data")
    if os.sep in name or p.suffix:
        raise UserError(f"image folder not found: {p}")
    raise UserError(f"unknown dataset {name!r}: choose {', '.join(DATASETS)} or give an image folder")


def per_class(d: ArrayData, n: int) -> ArrayData:
    """The first n images of each class in every split (a small problem that keeps every
    class, for quick runs)."""

    def pick(y):
        return np.sort(np.concatenate([np.flatnonzero(y == k)[:n] for k in range(d.n_classes)]))

    a, b, c = pick(d.y_train), pick(d.y_val), pick(d.y_test)
    return ArrayData(
        d.name + f" [{n} per class]",
        d.x_train[a],
        d.y_train[a],
        d.x_val[b],
        d.y_val[b],
        d.x_test[c],
        d.y_test[c],
        d.n_classes,
        d.class_names,
    )


def cifar10_per_class(n: int) -> ArrayData:
    """`per_class(load_cifar10(), n)`, decoding only the selected files when the source is
    the JPEG copy (quick runs and tests: milliseconds instead of loading all 60,000)."""
    folder = cifar10_folder()
    if (keras_cache_dir() / "cifar-10-batches-py").is_dir() or folder is None:
        return per_class(load_cifar10(), n)
    classes, f_tr, y = scan_folder(folder / "train")
    if tuple(classes) != CIFAR10_CLASSES:
        raise UserError(f"{folder}/train should hold the 10 CIFAR-10 class folders; found {', '.join(classes)}")
    _, f_te, yt = scan_folder(folder / "test", classes)
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(y))  # as in _split_val
    tr, va = np.sort(perm[:-CIFAR10_VAL]), np.sort(perm[-CIFAR10_VAL:])

    def pick(idx, labels):
        return idx[np.sort(np.concatenate([np.flatnonzero(labels[idx] == k)[:n] for k in range(10)]))]

    a, b, c = pick(tr, y), pick(va, y), pick(np.arange(len(yt)), yt)
    files = lambda fs, idx: [fs[i] for i in idx]  # noqa: E731
    return ArrayData(
        f"CIFAR-10 JPEG copy ({folder}: {len(y):,} train + {len(yt):,} test) [{n} per class]",
        decode(files(f_tr, a), 32),
        y[a],
        decode(files(f_tr, b), 32),
        y[b],
        decode(files(f_te, c), 32),
        yt[c],
        10,
        CIFAR10_CLASSES,
    )
