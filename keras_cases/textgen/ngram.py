"""An interpolated byte n-gram language model (Witten-Bell smoothing), in NumPy.

P_k(w | h) = (c(h, w) + u(h) P_{k-1}(w | h')) / (c(h) + u(h)), where h is the last k bytes,
h' the last k - 1, c counts in the training stream and u(h) is the number of distinct bytes
seen after h; an unseen context falls back to P_{k-1}; P_0 mixes the byte frequencies with
the uniform distribution the same way. The order (1 to MAX_ORDER - 1 bytes of context) is
chosen on the validation stream. Contexts are hashed as base-257 integers (exact up to 6
bytes in int64). Scored on the same windows as the networks: a byte's context never reaches
back before the start of its window.
"""

from __future__ import annotations

import numpy as np

from keras_cases.textgen.corpus import VOCAB

MAX_CONTEXT = 6


class NGram:
    def __init__(self, stream: np.ndarray, max_context: int = MAX_CONTEXT):
        s = np.asarray(stream, "int64")
        self.max_context = max_context
        self.unigram = np.bincount(s, minlength=VOCAB).astype("float64")
        self.tables = []
        key = np.zeros(len(s), "int64")  # key[t]: the context of s[t] (most recent byte first)
        for k in range(1, max_context + 1):
            shifted = np.full(len(s), -1, "int64")
            shifted[k:] = s[: len(s) - k]
            valid = shifted >= 0
            key = np.where(valid, key + np.where(valid, shifted, 0) * VOCAB ** (k - 1), -1)
            t = np.nonzero(key >= 0)[0]
            self.tables.append(_table(key[t], s[t]))

    def probabilities(self, x: np.ndarray, y: np.ndarray, context: int) -> np.ndarray:
        """P(y[i, j] | x[i, :j + 1]) with at most `context` bytes of context, for windows x, y."""
        x, y = np.asarray(x, "int64"), np.asarray(y, "int64")
        n_seen = float((self.unigram > 0).sum())
        p = (self.unigram[y] + n_seen / VOCAB) / (self.unigram.sum() + n_seen)
        key = np.zeros_like(x)
        for k in range(1, context + 1):
            shifted = np.full_like(x, -1)
            shifted[:, k - 1 :] = x[:, : x.shape[1] - k + 1]
            valid = shifted >= 0
            key = np.where(valid, key + np.where(valid, shifted, 0) * VOCAB ** (k - 1), -1)
            p = _interpolate(self.tables[k - 1], key, y, p)
        return p

    def bits(self, x, y, context: int) -> float:
        return float(-np.mean(np.log2(self.probabilities(x, y, context))))

    def choose(self, x_val, y_val) -> tuple[int, dict]:
        """The context length with the lowest validation bits per byte, and every length's score."""
        scores = {k: self.bits(x_val, y_val, k) for k in range(self.max_context + 1)}
        return min(scores, key=scores.get), scores


def _table(ctx: np.ndarray, w: np.ndarray) -> dict:
    pairs, pair_counts = np.unique(ctx * VOCAB + w, return_counts=True)
    contexts, ctx_counts = np.unique(ctx, return_counts=True)
    followers = np.bincount(np.searchsorted(contexts, pairs // VOCAB), minlength=len(contexts))
    return {
        "pairs": pairs,
        "pair_counts": pair_counts,
        "contexts": contexts,
        "counts": ctx_counts,
        "followers": followers,
    }


def _lookup(sorted_keys, values, keys):
    i = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
    found = (sorted_keys[i] == keys) & (keys >= 0)
    return np.where(found, values[i], 0)


def _interpolate(table: dict, key, y, lower):
    c_h = _lookup(table["contexts"], table["counts"], key).astype("float64")
    u_h = _lookup(table["contexts"], table["followers"], key).astype("float64")
    c_hw = _lookup(table["pairs"], table["pair_counts"], np.where(key >= 0, key * VOCAB + y, -1)).astype("float64")
    seen = c_h > 0
    return np.where(seen, (c_hw + u_h * lower) / np.where(seen, c_h + u_h, 1), lower)
