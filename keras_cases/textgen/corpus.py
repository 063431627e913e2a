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
