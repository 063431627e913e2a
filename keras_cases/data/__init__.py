"""Dataset registry and the shared data mechanics.

Every downloadable file is found in this order (DESIGN.md, "Data"):

1. an explicit path the user gave (`--data PATH`, `--csv PATH`),
2. `$KERAS_CASES_DATA_DIR/<canonical relative path>` (CI points it at shared/datasets),
3. the Keras cache, `~/.keras/datasets/<canonical relative path>` (or $KERAS_HOME),
4. a download with `keras.utils.get_file(origin, file_hash=...)`.

If all fail, `locate()` raises a UserError that names the file, its URL and where to put
it. Set `KERAS_CASES_OFFLINE=1` to skip step 4.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_cases import UserError


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset, by its canonical path relative to a data directory."""

    relpath: str  # e.g. "sms_spam_collection/SMSSpamCollection"
    origin: str  # canonical download URL (a file, or an archive holding it)
    sha256: str | None  # of the file itself (not of the archive)
    archive: bool = False  # origin is a zip/tar that holds `relpath`'s basename
    description: str = ""


REGISTRY: dict[str, RemoteFile] = {
    "sms_spam": RemoteFile(
        "sms_spam_collection/SMSSpamCollection",
        "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
        "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
        archive=True,
        description="SMS Spam Collection v.1, 5,574 messages (UCI id 228)",
    ),
    "mnist_test_images": RemoteFile(
        "mnist/t10k-images-idx3-ubyte.gz",
        "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        description="MNIST test images, 10,000 x 28 x 28 (IDX, gzip)",
    ),
    "mnist_test_labels": RemoteFile(
        "mnist/t10k-labels-idx1-ubyte.gz",
        "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        description="MNIST test labels, 10,000 (IDX, gzip)",
    ),
    "sentiment_imdb": RemoteFile(
        "sentiment_labelled_sentences/imdb_labelled.txt",
        "https://archive.ics.uci.edu/static/public/331/sentiment+labelled+sentences.zip",
        "aef2e49e3da25714d61175e3a6e68eeef74a20a2f914318dc3be9947ea86512d",
        archive=True,
        description="Sentiment Labelled Sentences (UCI id 331): 1,000 IMDB sentences",
    ),
    "sentiment_amazon": RemoteFile(
        "sentiment_labelled_sentences/amazon_cells_labelled.txt",
        "https://archive.ics.uci.edu/static/public/331/sentiment+labelled+sentences.zip",
        "47003fc0a0d4840b00e96e715b6189bad09e7443a3da41c4cbe12ffc79f86ae3",
        archive=True,
        description="Sentiment Labelled Sentences (UCI id 331): 1,000 Amazon sentences",
    ),
    "sentiment_yelp": RemoteFile(
        "sentiment_labelled_sentences/yelp_labelled.txt",
        "https://archive.ics.uci.edu/static/public/331/sentiment+labelled+sentences.zip",
        "c76468b7b5c6e56a0804d728345c5f84aa2142ddb214420f61cc9cfd4c00d2ea",
        archive=True,
        description="Sentiment Labelled Sentences (UCI id 331): 1,000 Yelp sentences",
    ),
}


def data_dir() -> Path | None:
    d = os.environ.get("KERAS_CASES_DATA_DIR")
    return Path(d).expanduser() if d else None


def keras_cache_dir() -> Path:
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return Path(home) / "datasets"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _checked(path: Path, spec: RemoteFile) -> Path:
    if spec.sha256 and sha256_of(path) != spec.sha256:
        raise UserError(
            f"{path} is not the expected file (sha256 differs from {spec.sha256[:12]}...): "
            f"delete it and let keras-cases fetch {spec.origin}"
        )
    return path


def locate(key: str, path: str | os.PathLike | None = None) -> Path:
    """Return the local path of registry file `key`, fetching it if needed."""
    if key not in REGISTRY:
        raise UserError(f"unknown dataset file {key!r}; known: {', '.join(sorted(REGISTRY))}")
    spec = REGISTRY[key]
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(f"data file not found: {p}")
        return p  # the user's own file: no hash check
    looked = []
    for base in (data_dir(), keras_cache_dir()):
        if base is None:
            continue
        candidate = base / spec.relpath
        looked.append(str(candidate))
        if candidate.is_file():
            return _checked(candidate, spec)
    if os.environ.get("KERAS_CASES_OFFLINE") not in (None, "", "0"):
        reason = "KERAS_CASES_OFFLINE is set"
    else:
        try:
            return _checked(_download(spec), spec)
        except UserError:
            raise
        except Exception as e:  # network errors come in many types
            reason = f"download failed ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
    raise UserError(
        f"{spec.description or key}: file {spec.relpath!r} not found ({reason}); looked in "
        f"{', '.join(looked) or 'no data directory'}. Download {spec.origin}"
        f"{' and extract it' if spec.archive else ''} and place the file at "
        f"$KERAS_CASES_DATA_DIR/{spec.relpath}"
    )


def _download(spec: RemoteFile) -> Path:
    import keras

    subdir, fname = os.path.split(spec.relpath)
    cache_subdir = os.path.join("datasets", subdir)
    if not spec.archive:
        return Path(
            keras.utils.get_file(
                fname, spec.origin, file_hash=spec.sha256, hash_algorithm="sha256", cache_subdir=cache_subdir
            )
        )
    got = Path(
        keras.utils.get_file(os.path.basename(spec.origin), spec.origin, extract=True, cache_subdir=cache_subdir)
    )
    root = got if got.is_dir() else got.parent
    for candidate in [root / fname, *root.rglob(fname)]:
        if candidate.is_file():
            target = keras_cache_dir() / spec.relpath
            if candidate != target:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(candidate.read_bytes())
            return target
    raise UserError(f"{spec.origin} was downloaded but holds no file named {fname!r}")


def split_stratified(n_or_y, seed: int, val: float = 0.2, test: float = 0.2):
    """Index arrays (train, val, test), stratified on labels, reproducible for a seed."""
    from sklearn.model_selection import train_test_split

    y = np.asarray(n_or_y)
    idx = np.arange(len(y))
    rest, test_idx = train_test_split(idx, test_size=test, stratify=y, random_state=seed)
    train_idx, val_idx = train_test_split(rest, test_size=val / (1.0 - test), stratify=y[rest], random_state=seed)
    return np.sort(train_idx), np.sort(val_idx), np.sort(test_idx)


def require_splittable(
    y, what: str, val: float = 0.2, test: float = 0.2, min_rows: int = 1, names=("negatives", "positives")
) -> None:
    """Refuse (UserError) labels `y` that `split_stratified(y, seed, val, test)` cannot split
    into train / validation / test parts that each hold every class and `min_rows` rows.

    A class needs at least 1 / (smallest fraction) members for one of them to land in each
    part (5 for a 60/20/20 split), and the rows at least `min_rows` / (smallest fraction).
    `names` names the classes 0 and 1 in the message ("positives" for churners)."""
    import math

    y = np.asarray(y)
    smallest = min(val, test, 1.0 - val - test)
    per_class = math.ceil(1.0 / smallest - 1e-9)
    classes, counts = np.unique(y, return_counts=True)
    rows = max(math.ceil(min_rows / smallest - 1e-9), per_class * max(len(classes), 2))
    split = "/".join(f"{round(100 * f)}" for f in (1.0 - val - test, val, test))
    if len(y) < rows:
        raise UserError(
            f"{what}: too few rows ({len(y)}): need at least {rows} for a stratified "
            f"{split} train/validation/test split"
        )
    if len(classes) < 2:
        raise UserError(f"{what}: every row has the same label ({classes[0]!r}); a classifier needs two classes")
    low = int(np.argmin(counts))
    if counts[low] < per_class:
        c = classes[low]
        name = names[int(c)] if len(names) == 2 and len(classes) == 2 and c in (0, 1) else f"examples of class {c!r}"
        raise UserError(
            f"{what}: too few {name} ({counts[low]} of {len(y)} rows): need at least "
            f"{per_class} of each class for a stratified {split} train/validation/test split"
        )


def batches(x, y, batch_size: int, seed: int, sample_weight=None, shuffle: bool = True):
    """A keras.utils.PyDataset over in-memory arrays, shuffled each epoch by NumPy.

    Keras' own `shuffle=True` draws from each backend's random stream (tf.data on
    TensorFlow, a torch sampler on PyTorch); shuffling in NumPy gives the same batches
    on every backend, so one seed gives the same training run everywhere.
    """
    import keras

    class _Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = np.arange(len(x))
            self.on_epoch_end()

        def __len__(self):
            return int(np.ceil(len(x) / batch_size))

        def __getitem__(self, i):
            j = self.order[i * batch_size : (i + 1) * batch_size]
            if sample_weight is None:
                return x[j], y[j]
            return x[j], y[j], sample_weight[j]

        def on_epoch_end(self):
            if shuffle:
                self.order = self.rng.permutation(len(x))

        def resume_state(self) -> dict:
            """The shuffling state, saved with each epoch's checkpoint (callbacks.Resumable)."""
            return {"rng": self.rng.bit_generator.state, "order": self.order.tolist()}

        def resume_from(self, state: dict):
            self.rng.bit_generator.state = state["rng"]
            self.order = np.asarray(state["order"])

    return _Batches()


def resumable_epochs(data):
    """Give a PyDataset whose order and augmentation follow only its `epoch` counter
    (images.augmented_batches) the resume_state()/resume_from() that `Resumable` saves."""

    def resume_from(state: dict) -> None:
        data.epoch = state["epoch"] - 1
        data.on_epoch_end()  # counts up to state["epoch"] and draws that epoch's order

    data.resume_state = lambda: {"epoch": data.epoch}
    data.resume_from = resume_from
    return data
