"""Text data: reading labelled messages, a tokenizer and a vocabulary, all outside the model.

Pure Python and NumPy (pandas only to read a user's CSV), so a JAX-only or torch-only
install works and a saved run predicts on raw text with any backend:

- `tokenize(text)`         lower-cased words, single punctuation marks and number shapes
- `Vocabulary.fit(texts)`  token -> id, fit on the TRAINING split only; id 0 is padding,
                           id 1 stands for every word the training split did not have
- `vocab.encode(texts)`    int32 ids, padded with 0 at the end (models mask the zeros)
- `vocab.save(path)` / `Vocabulary.load(path)`   JSON next to model.keras
- `read_tab_file`, `read_text_csv`, `binary_labels`, `split_unique` for the cases.

Numbers of three or more digits become their shape: ``80086`` -> ``ddddd`` and
``08712460324`` -> ``ddddddddddd`` (capped at 12), so a phone number or short code never
seen in training still reads as "a long number", which is what matters for spam.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keras_cases import UserError

FORMAT = "keras-cases-text/1"
PAD, OOV = "[PAD]", "[UNK]"
_TOKEN = re.compile(r"\d{3,}|\w+(?:'\w+)*|[^\w\s]")
_MAX_SHAPE = 12


def tokenize(text: str) -> list[str]:
    """Tokens of `text`: words (with inner apostrophes), punctuation marks one by one,
    runs of 3+ digits as their shape ("d" per digit, at most 12).

    Idempotent on its own output: tokenize(" ".join(tokenize(t))) == tokenize(t).
    """
    text = unicodedata.normalize("NFKC", str(text)).lower()
    out = []
    for tok in _TOKEN.findall(text):
        if tok.isdigit() and len(tok) >= 3 and tok.isascii():
            tok = "d" * min(len(tok), _MAX_SHAPE)
        out.append(tok)
    return out


@dataclass
class Vocabulary:
    """Token <-> id table plus the sequence length the models were trained with."""

    tokens: list[str]  # id -> token; tokens[0] is PAD, tokens[1] is OOV
    max_len: int
    meta: dict = field(default_factory=dict)  # labels, dataset, ... (saved alongside)

    def __post_init__(self):
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def fit(
        cls,
        texts,
        max_tokens: int = 20000,
        min_count: int = 2,
        max_len: int | None = None,
        length_percentile: float = 95.0,
        max_len_cap: int = 256,
        **meta,
    ):
        """Fit on training texts only. Keeps the `max_tokens - 2` most frequent tokens seen at
        least `min_count` times (ties broken alphabetically, so the table is reproducible).
        Words seen once in training map to OOV, so the model learns what OOV means.

        `max_len` defaults to the `length_percentile` of training lengths, rounded up to a
        multiple of 8 (at least 16, at most `max_len_cap`); longer texts are truncated.
        """
        counts, lengths = Counter(), []
        for t in texts:
            toks = tokenize(t)
            counts.update(toks)
            lengths.append(len(toks))
        if not lengths:
            raise UserError("no training texts to build a vocabulary from")
        kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        kept = kept[: max(max_tokens - 2, 0)]
        if max_len is None:
            p = float(np.percentile(lengths, length_percentile))
            max_len = int(min(max(16, 8 * np.ceil(p / 8)), max_len_cap))
        return cls([PAD, OOV, *kept], int(max_len), dict(meta))

    def __len__(self):
        return len(self.tokens)

    def ids(self, text: str) -> list[int]:
        """Ids of one text, unpadded and untruncated."""
        return [self.index.get(t, 1) for t in tokenize(text)]

    def encode(self, texts, max_len: int | None = None) -> np.ndarray:
        """(n, max_len) int32 ids; the first max_len tokens, 0-padded at the end."""
        n = self.max_len if max_len is None else int(max_len)
        out = np.zeros((len(texts), n), dtype="int32")
        for row, t in enumerate(texts):
            ids = self.ids(t)[:n]
            out[row, : len(ids)] = ids
        return out

    def decode(self, ids) -> list[str]:
        """Texts back from id rows (padding dropped, tokens joined by spaces)."""
        ids = np.atleast_2d(np.asarray(ids))
        return [" ".join(self.tokens[i] for i in row if i != 0) for row in ids]

    def coverage(self, texts) -> float:
        """Share of tokens in `texts` that the vocabulary knows (not OOV)."""
        toks = [t for x in texts for t in tokenize(x)]
        return float(np.mean([t in self.index for t in toks])) if toks else 0.0

    # -- saving ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "tokenizer": "keras_cases.data.text.tokenize",
            "max_len": self.max_len,
            "meta": self.meta,
            "tokens": self.tokens,
        }

    @classmethod
    def from_dict(cls, d: dict):
        if d.get("format") != FORMAT:
            raise UserError(f"not a keras-cases vocabulary (format {d.get('format')!r})")
        return cls(list(d["tokens"]), int(d["max_len"]), dict(d.get("meta", {})))

    def save(self, path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
        return p

    @classmethod
    def load(cls, path):
        p = Path(path)
        if not p.is_file():
            raise UserError(f"vocabulary file not found: {p}")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise UserError(f"{p} is not a readable vocabulary ({type(e).__name__}: {str(e).splitlines()[0][:100]})")
        if not isinstance(d, dict):
            raise UserError(f"{p} is not a keras-cases vocabulary (not a JSON object)")
        tokens, max_len, meta = d.get("tokens"), d.get("max_len"), d.get("meta", {})
        if d.get("format") != FORMAT:
            problem = f"format {d.get('format')!r}, expected {FORMAT!r}"
        elif not isinstance(tokens, list) or len(tokens) < 2 or not all(isinstance(t, str) for t in tokens):
            problem = 'no "tokens" list of strings'
        elif not isinstance(max_len, int) or isinstance(max_len, bool) or not 1 <= max_len <= 1_000_000:
            problem = 'no positive integer "max_len"'
        elif not isinstance(meta, dict):
            problem = '"meta" is not an object'
        else:
            return cls.from_dict(d)
        raise UserError(f"{p} is not a keras-cases vocabulary: {problem}")


# --- reading labelled text ----------------------------------------------------------
@dataclass
class TextData:
    texts: list[str]
    y: np.ndarray  # 0/1 int64
    dataset: str
    labels: tuple[str, str]  # (negative name, positive name)
    source: list[str] | None = None  # per-row origin (e.g. site), when there is one


def read_lines(path) -> list[str]:
    """Non-empty lines split on '\\n' only (str.splitlines also breaks on U+0085, which
    the sentiment sentences contain inside sentences)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {p}: {e.strerror}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def read_tab_file(path, label_first: bool) -> tuple[list[str], list[str]]:
    """(texts, labels) from a headerless `label<TAB>text` (label_first) or `text<TAB>label`
    file. Splits on the first TAB (label first) or the last TAB (label last); quotes are
    plain characters (quoting off)."""
    texts, labels = [], []
    for n, line in enumerate(read_lines(path), 1):
        if "\t" not in line:
            raise UserError(f"{path}, line {n}: no TAB between label and text")
        if label_first:
            label, text = line.split("\t", 1)
        else:
            text, label = line.rsplit("\t", 1)
        texts.append(text.strip())
        labels.append(label.strip())
    if not texts:
        raise UserError(f"{path} holds no labelled lines")
    return texts, labels


def read_text_csv(path, text_column=None, label_column=None, text_guesses=(), label_guesses=()):
    """(texts, labels, text column, label column) from a CSV; UTF-8, else latin-1 (the
    Kaggle spam.csv). Column names are matched case-insensitively; without a name the
    first of the guesses that exists is used."""
    import pandas as pd

    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"CSV file not found: {p}")
    if p.stat().st_size == 0:
        raise UserError(f"{p} is empty")
    df = None
    for enc in ("utf-8", "latin-1"):
        try:
            df = pd.read_csv(p, encoding=enc, dtype=str, keep_default_na=False)
            break
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError:
            raise UserError(f"{p} holds no data")
        except pd.errors.ParserError as e:
            raise UserError(f"{p} could not be read as CSV: {str(e).splitlines()[0]}")
    if df is None or len(df) == 0:
        raise UserError(f"{p} has a header but no rows")
    lower = {str(c).strip().lower(): c for c in df.columns}

    def pick(name, guesses, what, flag):
        if name is not None:
            if name.strip().lower() in lower:
                return lower[name.strip().lower()]
            raise UserError(f"no {what} column {name!r} in {p}; columns are: {', '.join(map(str, df.columns))}")
        for g in guesses:
            if g in lower:
                return lower[g]
        raise UserError(
            f"{p}: say which column holds the {what} with {flag} NAME; columns are: {', '.join(map(str, df.columns))}"
        )

    tcol = pick(text_column, text_guesses, "text", "--text-column")
    lcol = pick(label_column, label_guesses, "label", "--label-column")
    if tcol == lcol:
        raise UserError(f"text and label are the same column ({tcol!r})")
    return df[tcol].astype(str).tolist(), df[lcol].astype(str).tolist(), str(tcol), str(lcol)


def clean_rows(texts, labels, text_name="text", label_name="label"):
    """Drop rows with no label or blank text (saying how many); UserError if none is left."""
    texts = ["" if t is None else str(t) for t in texts]
    labels = ["" if v is None else str(v).strip() for v in labels]
    if not any(t.strip() for t in texts):
        raise UserError(f"text column {text_name!r} is empty")
    if not any(labels):
        raise UserError(f"label column {label_name!r} is empty")
    keep = [i for i, (t, v) in enumerate(zip(texts, labels)) if t.strip() and v]
    if len(keep) < len(texts):
        print(f"warning: dropped {len(texts) - len(keep)} row(s) with a blank text or label")
    return [texts[i] for i in keep], [labels[i] for i in keep]


def binary_labels(labels, positive=None, positives=("1",), label_name="label"):
    """0/1 labels and (negative, positive) names. A column must hold exactly two classes;
    `positive` names the positive one, else the first of `positives` present."""
    text = [str(v).strip() for v in labels]
    classes = sorted(set(text), key=str.lower)
    if len(classes) != 2:
        shown = ", ".join(classes[:6]) + (" ..." if len(classes) > 6 else "")
        raise UserError(
            f"label column {label_name!r} has {len(classes)} distinct value(s) ({shown}); "
            "a binary classifier needs exactly two"
        )
    by_lower = {c.lower(): c for c in classes}
    wanted = [str(positive)] if positive is not None else list(positives)
    pos = next((by_lower[w.strip().lower()] for w in wanted if w.strip().lower() in by_lower), None)
    if pos is None:
        if positive is not None:
            raise UserError(f"--positive {positive!r} is not one of the labels ({', '.join(classes)})")
        raise UserError(f"which label is positive, {classes[0]!r} or {classes[1]!r}? Say it with --positive VALUE")
    neg = classes[0] if classes[1] == pos else classes[1]
    return np.array([v == pos for v in text], dtype="int64"), (neg, pos)


def decode_imdb(sequences, word_index, index_from=3) -> list[str]:
    """keras.datasets.imdb word ids back to text: id i >= index_from is word_index's word
    i - index_from; 0 (padding), 1 (start) and 2 (out of vocabulary) are dropped."""
    words = {i + index_from: w for w, i in word_index.items()}
    return [" ".join(words[i] for i in seq if i >= index_from and i in words) for seq in sequences]


def split_unique(texts, y, seed: int, val: float = 0.2, test: float = 0.2):
    """Stratified train/val/test indices that keep identical texts in the same split, so a
    message repeated in the data cannot be in training and in the test set at once.

    Returns (train, val, test, n_duplicates).
    """
    from keras_cases.data import require_splittable, split_stratified

    first, groups = {}, []
    for i, t in enumerate(texts):
        key = " ".join(tokenize(t))
        groups.append(first.setdefault(key, i))
    groups = np.asarray(groups)
    reps = np.unique(groups)
    require_splittable(np.asarray(y)[reps], f"{len(reps)} distinct texts (of {len(texts)})", val, test)
    parts = split_stratified(np.asarray(y)[reps], seed, val, test)
    where = np.empty(len(texts), dtype=int)
    for k, part in enumerate(parts):
        where[np.isin(groups, reps[part])] = k
    return (*(np.flatnonzero(where == k) for k in range(3)), int(len(texts) - len(reps)))
