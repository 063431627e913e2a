"""Characters as model input: UTF-8 byte ids, no vocabulary to fit (pure NumPy).

Id 0 is padding and byte b is id b + 1, so every text of any language encodes and nothing is
out of vocabulary; case is kept ("FREE" and "free" differ, which matters for spam). The only
thing fit on training texts is the length: the 95th percentile of their byte lengths,
rounded up to a multiple of 8 (at least 32, at most 512); longer texts are truncated.
"""

from __future__ import annotations

import unicodedata

import numpy as np


def to_bytes(text: str) -> bytes:
    return unicodedata.normalize("NFKC", str(text)).encode("utf-8")


def fit_length(texts, percentile: float = 95.0, cap: int = 512) -> int:
    """Characters kept per text, from the training texts only."""
    lengths = [len(to_bytes(t)) for t in texts] or [0]
    return int(min(max(32, 8 * np.ceil(np.percentile(lengths, percentile) / 8)), cap))


def encode(texts, max_len: int) -> np.ndarray:
    """(n, max_len) int32 byte ids + 1, 0-padded at the end."""
    out = np.zeros((len(texts), max_len), dtype="int32")
    for row, t in enumerate(texts):
        b = np.frombuffer(to_bytes(t)[:max_len], dtype="uint8")
        out[row, : len(b)] = b.astype("int32") + 1
    return out
