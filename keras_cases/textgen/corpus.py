"""Documents as bytes: load, de-duplicate, split by document, and cut into windows.

Tokens are the 256 byte values plus BOUNDARY (256), which ends every document; the streams
are the documents of a split joined with it. Identical documents are merged before the split
(the SMS collection repeats some messages), so no text is in two splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_cases import UserError

BOUNDARY = 256
VOCAB = 257
BUCKETS = 2039  # default rows per n-gram length of the networks' hashed n-gram embeddings (a prime)
MAX_BUCKETS = 1_000_000  # keeps their hash key (< buckets * 257 + 257) inside int32


@dataclass
class Corpus:
    name: str
    streams: dict  # {"train"|"val"|"test": int32 token stream}
    documents: dict  # {split: number of documents}

    @property
    def ascii_share(self) -> float:
        s = self.streams["test"]
        return float(np.mean(s[s != BOUNDARY] < 128))


def encode(text: str) -> np.ndarray:
    # errors="replace": a lone surrogate (possible in JSON strings sent to serve) becomes "?"
    return np.frombuffer(text.encode("utf-8", errors="replace"), dtype=np.uint8).astype("int32")


def decode(tokens) -> str:
    data = bytes(int(t) for t in tokens if 0 <= int(t) < 256)
    return data.decode("utf-8", errors="replace")


def default_documents() -> tuple[list[str], str]:
    """The SMS messages and the UCI sentences on disk (or downloaded): real short texts."""
    from keras_cases.data import locate
    from keras_cases.data.text import read_tab_file

    docs = []
    texts, _ = read_tab_file(locate("sms_spam"), label_first=True)
    docs += texts
    for key in ("sentiment_imdb", "sentiment_amazon", "sentiment_yelp"):
        texts, _ = read_tab_file(locate(key), label_first=False)
        docs += texts
    return docs, "SMS Spam Collection messages + UCI Sentiment Labelled Sentences"


IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
IMDB_PARTS = ("train/pos", "train/neg", "test/pos", "test/neg")  # the 50,000 labelled reviews


def imdb_documents() -> tuple[list[str], str]:
    """The 50,000 raw IMDB reviews of the Stanford Large Movie Review Dataset (Maas et al.
    2011): `aclImdb/` under $KERAS_CASES_DATA_DIR or the Keras cache, else downloaded
    (84 MB, sha256-checked) unless KERAS_CASES_OFFLINE is set."""
    root = _imdb_root()
    docs = []
    for part in IMDB_PARTS:
        for f in sorted((root / part).glob("*.txt")):
            docs.append(f.read_text(encoding="utf-8", errors="replace").replace("<br />", "\n"))
    if not docs:
        raise UserError(f"{root} holds no reviews ({', '.join(IMDB_PARTS)} */*.txt): delete it and fetch {IMDB_URL}")
    return docs, "IMDB reviews (Stanford aclImdb, raw text)"


def _imdb_root() -> Path:
    import os

    from keras_cases.data import data_dir, keras_cache_dir

    bases = [b for b in (data_dir(), keras_cache_dir()) if b is not None]
    for base in bases:
        for d in (base / "aclImdb", base / "aclImdb_v1_extracted" / "aclImdb", base / "aclImdb_v1" / "aclImdb"):
            if (d / "train" / "pos").is_dir():
                return d
    looked = ", ".join(str(b / "aclImdb") for b in bases)
    if os.environ.get("KERAS_CASES_OFFLINE") not in (None, "", "0"):
        raise UserError(
            f"--corpus imdb: no aclImdb/ directory (looked in {looked}) and KERAS_CASES_OFFLINE is set; "
            f"download {IMDB_URL}, extract it and place aclImdb/ at $KERAS_CASES_DATA_DIR/aclImdb"
        )
    import keras

    try:
        got = Path(keras.utils.get_file("aclImdb_v1.tar.gz", IMDB_URL, file_hash=IMDB_SHA256, extract=True))
    except Exception as e:  # network and hash errors come in many types
        raise UserError(f"--corpus imdb: downloading {IMDB_URL} failed ({type(e).__name__}: {str(e)[:120]})")
    for d in (got / "aclImdb", got, got.parent / "aclImdb"):
        if (d / "train" / "pos").is_dir():
            return d
    raise UserError(f"{IMDB_URL} was downloaded to {got} but holds no aclImdb/train/pos directory")


def read_documents(path) -> tuple[list[str], str]:
    """A user's UTF-8 text file; documents are separated by blank lines (one document if none)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"--text {p}: no such file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"--text {p} is not UTF-8 text (byte {e.start}: {e.reason})")
    except OSError as e:
        raise UserError(f"--text {p} cannot be read: {e.strerror or e}")
    docs = [d.strip() for d in text.replace("\r\n", "\n").split("\n\n")]
    return [d for d in docs if d], p.name


def split(docs: list[str], name: str, seed: int, val: float = 0.1, test: float = 0.1, min_tokens: int = 64) -> Corpus:
    """Unique documents shuffled with `seed` and split by document into train/val/test streams."""
    unique = sorted(set(d.strip() for d in docs if d.strip()))
    if len(unique) < 3:
        raise UserError(f"{name}: {len(unique)} distinct document(s); need at least 3 (train, validation, test)")
    order = np.random.default_rng(seed).permutation(len(unique))
    n_val, n_test = max(1, round(val * len(unique))), max(1, round(test * len(unique)))
    parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    streams = {k: _stream([unique[i] for i in idx]) for k, idx in parts.items()}
    for k, s in streams.items():
        if len(s) < min_tokens:
            raise UserError(f"{name}: the {k} split has {len(s)} bytes; need at least {min_tokens}: give more text")
    return Corpus(name, streams, {k: len(v) for k, v in parts.items()})


def _stream(docs: list[str]) -> np.ndarray:
    pieces = []
    for d in docs:
        pieces += [encode(d), np.array([BOUNDARY], "int32")]
    return np.concatenate(pieces)


def windows(stream: np.ndarray, length: int, stride: int | None = None):
    """(x, y) windows: x = stream[i : i + length], y = the next byte at every position."""
    stride = stride or length
    starts = np.arange(0, len(stream) - length, stride)  # the last y needs one byte after x
    if len(starts) == 0:
        raise UserError(f"the text is shorter than one context window of {length} bytes: lower --context")
    idx = starts[:, None] + np.arange(length)[None]
    return stream[idx], stream[idx + 1]
