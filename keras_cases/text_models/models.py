"""The text networks: masking layers, the six model families, and the TF-IDF reference.

Every model reads int32 token ids, 0-padded at the end (keras_cases.data.text), of any
length, and padding never decides the output:

- recurrent models use `Embedding(mask_zero=True)`; LSTM/GRU/Bidirectional skip the masked
  steps, so the final state is the state after the last real token;
- the Conv1D model zeroes padded steps before each convolution ("same" padding then sees
  the same zeros an unpadded text gets at its edge) and max-pools over real steps only;
- the Transformer encoder masks padded keys in attention and mean-pools real steps only;
- fastText's bigram of a token and the next one exists only where both are real tokens, and
  it mean-pools real steps only.

Builders (Keras functional API, keras.layers / keras.ops only, so every backend runs them):
`build_lstm`, `build_gru`, `build_bilstm`, `build_conv1d`, `build_transformer`,
`build_fasttext` (a bag of word unigrams and bigrams, Joulin et al. 2016); each takes
`stacked=True` for a two-layer (two-block; fastText: one hidden layer) variant.
`build_char_cnn` reads characters (UTF-8 byte ids, `text_models.chars`) with parallel
n-gram convolutions; the cross-validated protocol offers it as a family. `build_tfidf` is
the scikit-learn TF-IDF + logistic regression reference.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from keras_cases import UserError, runtime
from keras_cases.data.text import tokenize
from keras_cases.layers import PositionEmbedding
from keras_cases.text_models import NEURAL


# --- layers that keep padding out of the answer ------------------------------------
@keras.saving.register_keras_serializable("keras_cases")
class MaskedConv1D(layers.Conv1D):
    """Conv1D with "same" padding that zeroes masked (padded) steps of its input first and
    passes the mask on."""

    def __init__(self, filters, kernel_size, **kwargs):
        kwargs["padding"] = "same"
        super().__init__(filters, kernel_size, **kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is not None:
            inputs = inputs * ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        return super().call(inputs)

    def compute_mask(self, inputs, mask=None):
        return mask


@keras.saving.register_keras_serializable("keras_cases")
class MaskedGlobalPooling1D(layers.Layer):
    """Max or mean over the real (unmasked) steps; a text with no tokens pools to zeros."""

    def __init__(self, mode="max", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("max", "mean"):
            raise ValueError(f"mode must be 'max' or 'mean', not {mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        m = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        count = ops.sum(m, axis=1)
        if self.mode == "mean":
            return ops.sum(inputs * m, axis=1) / ops.maximum(count, 1.0)
        low = ops.min(inputs) - 1.0
        pooled = ops.max(ops.where(m > 0, inputs, low), axis=1)
        return ops.where(count > 0, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable("keras_cases")
class PaddingMask(layers.Layer):
    """Token ids -> True at real tokens, False at padding (id 0): shape (batch, steps), or
    (batch, 1, steps) with keys=True, the attention mask that hides padded keys."""

    def __init__(self, keys=False, **kwargs):
        super().__init__(**kwargs)
        self.keys = bool(keys)

    def call(self, ids):
        real = ops.not_equal(ids, 0)
        return ops.expand_dims(real, 1) if self.keys else real

    def compute_output_spec(self, ids):
        shape = (ids.shape[0], 1, ids.shape[1]) if self.keys else tuple(ids.shape)
        return keras.KerasTensor(shape, dtype="bool")

    def get_config(self):
        return {**super().get_config(), "keys": self.keys}


def bigram_keys(train_ids, vocab_size: int, max_bigrams: int = 50000, min_count: int = 1) -> list[int]:
    """The bigram table of `NGramEmbedding`, fit on training token ids only: the keys
    `id * vocab_size + next id` of the `max_bigrams` most frequent pairs of adjacent real
    tokens seen at least `min_count` times (ties by key), sorted."""
    ids = np.asarray(train_ids, "int64")
    a, b = ids[:, :-1].ravel(), ids[:, 1:].ravel()
    keys, counts = np.unique((a * vocab_size + b)[(a > 0) & (b > 0)], return_counts=True)
    keep = np.lexsort((keys, -counts))[:max_bigrams]
    keep = keep[counts[keep] >= min_count]
    return sorted(int(k) for k in keys[keep])


@keras.saving.register_keras_serializable("keras_cases")
class NGramEmbedding(layers.Embedding):
    """fastText's bag of n-grams, one vector per token position: the token's embedding plus
    that of the bigram it starts (itself and the next token), looked up in the same table.
    The bigrams are a fitted vocabulary (`bigrams`: sorted keys `id * vocab_size + next id`
    from `bigram_keys`, saved in the config), so rows vocab_size.. belong to bigrams seen in
    training; any other pair, and a pair with padding, adds nothing. Masks padding like
    `Embedding(mask_zero=True)`, so the model's explanation (integrated gradients over this
    layer's output) gives each token its word and its bigram."""

    MAX_VOCAB = 46340  # keys id * vocab_size + next id stay below 2**31 (int32 on every backend)

    def __init__(self, vocab_size, output_dim, bigrams=(), **kwargs):
        kwargs.pop("input_dim", None)
        kwargs["mask_zero"] = True
        self.vocab_size, self.bigrams = int(vocab_size), [int(k) for k in bigrams]
        if self.bigrams and self.vocab_size > self.MAX_VOCAB:
            raise UserError(
                f"fasttext's bigrams need a vocabulary of at most {self.MAX_VOCAB:,} tokens, not "
                f"{self.vocab_size:,}: lower --max-tokens"
            )
        super().__init__(self.vocab_size + len(self.bigrams), output_dim, **kwargs)

    def call(self, inputs):
        ids = ops.cast(inputs, "int32")
        out = super().call(ids)  # Embedding's own lookup (also when quantized or with LoRA)
        if not self.bigrams:
            return out
        nxt = ops.concatenate([ids[:, 1:], ops.zeros_like(ids[:, :1])], axis=1)
        key = ops.reshape(ids * self.vocab_size + nxt, (-1,))
        table = ops.convert_to_tensor(np.asarray(self.bigrams, "int32"))
        pos = ops.minimum(ops.cast(ops.searchsorted(table, key), "int32"), len(self.bigrams) - 1)
        found = ops.logical_and(ops.equal(ops.take(table, pos), key), ops.reshape((ids > 0) & (nxt > 0), (-1,)))
        rows = ops.reshape(ops.where(found, pos + self.vocab_size, 0), ops.shape(ids))
        found = ops.expand_dims(ops.cast(ops.reshape(found, ops.shape(ids)), out.dtype), -1)
        return out + super().call(rows) * found

    def get_config(self):
        config = super().get_config()
        config.pop("input_dim", None)
        return {**config, "vocab_size": self.vocab_size, "bigrams": self.bigrams}


# --- model builders -----------------------------------------------------------------
def _ids_input():
    return keras.Input((None,), dtype="int32", name="token_ids")


def _head(x, inputs, dropout, name):
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid", name="score")(x)
    return keras.Model(inputs, outputs, name=name)


def _recurrent(cell, vocab_size, bidirectional=False, stacked=False, embed_dim=64, units=64, dropout=0.3, name=None):
    inputs = _ids_input()
    x = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")(inputs)
    rnn = layers.LSTM if cell == "lstm" else layers.GRU
    for i in range(2 if stacked else 1):
        layer = rnn(units, return_sequences=stacked and i == 0, name=f"{cell}_{i + 1}")
        x = layers.Bidirectional(layer, name=f"bi{cell}_{i + 1}")(x) if bidirectional else layer(x)
    return _head(x, inputs, dropout, name)


def build_lstm(vocab_size, stacked=False, **hp) -> keras.Model:
    """Embedding -> LSTM (x2 when stacked) -> final state -> dropout -> sigmoid."""
    return _recurrent("lstm", vocab_size, stacked=stacked, name="lstm", **hp)


def build_gru(vocab_size, stacked=False, **hp) -> keras.Model:
    """Embedding -> GRU (x2 when stacked) -> final state -> dropout -> sigmoid."""
    return _recurrent("gru", vocab_size, stacked=stacked, name="gru", **hp)


def build_bilstm(vocab_size, stacked=False, units=32, **hp) -> keras.Model:
    """Embedding -> bidirectional LSTM (both final states concatenated) -> sigmoid."""
    return _recurrent("lstm", vocab_size, bidirectional=True, stacked=stacked, units=units, name="bilstm", **hp)


def build_conv1d(vocab_size, stacked=False, embed_dim=64, filters=128, kernel_size=5, dropout=0.3) -> keras.Model:
    """Embedding -> Conv1D(relu) (x2 when stacked) -> max over real steps -> sigmoid."""
    inputs = _ids_input()
    x = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")(inputs)
    for i in range(2 if stacked else 1):
        x = MaskedConv1D(filters, kernel_size, activation="relu", name=f"conv_{i + 1}")(x)
    x = MaskedGlobalPooling1D("max", name="max_pool")(x)
    return _head(x, inputs, dropout, "conv1d")


CHAR_IDS = 257  # UTF-8 bytes 0..255 as ids 1..256; 0 is padding (keras_cases.text_models.chars)


def build_char_cnn(
    vocab_size=CHAR_IDS, stacked=False, embed_dim=32, filters=64, widths=(2, 3, 4, 5, 7), dropout=0.3
) -> keras.Model:
    """Characters (UTF-8 byte ids) -> embedding -> parallel Conv1D(relu) of each width in
    `widths` (character n-gram detectors; x2 per branch when stacked), each max-pooled over
    real steps -> concatenated -> dropout -> sigmoid. Reads spellings the word vocabulary maps
    to [UNK] ("fr33", "txt", "£1000", "www.") and needs no vocabulary fit."""
    inputs = _ids_input()
    x = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")(inputs)
    branches = []
    for w in widths:
        b = x
        for i in range(2 if stacked else 1):
            b = MaskedConv1D(filters, w, activation="relu", name=f"conv{w}_{i + 1}")(b)
        branches.append(MaskedGlobalPooling1D("max", name=f"max_pool{w}")(b))
    return _head(layers.Concatenate(name="ngrams")(branches), inputs, dropout, "char_cnn")


def encoder_block(x, keys, dim, heads, ff_dim, dropout, name):
    """Post-norm Transformer encoder block: self-attention and a feed-forward layer, each
    with a residual connection, dropout and layer normalisation. `keys` (batch, 1, steps)
    says which steps may be attended to, so padded steps never are."""
    attn = layers.MultiHeadAttention(heads, dim // heads, name=f"{name}_attention")(x, x, attention_mask=keys)
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(layers.Add()([x, layers.Dropout(dropout)(attn)]))
    f = layers.Dense(ff_dim, activation="relu", name=f"{name}_ff1")(x)
    f = layers.Dense(dim, name=f"{name}_ff2")(f)
    return layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(layers.Add()([x, layers.Dropout(dropout)(f)]))


def build_transformer(
    vocab_size, max_len, stacked=False, embed_dim=64, heads=4, ff_dim=128, dropout=0.1
) -> keras.Model:
    """Token + position embeddings -> encoder block (x2 when stacked) -> mean over real
    steps -> sigmoid. `max_len` bounds the input length (position table size).

    The padding mask is explicit here (MultiHeadAttention takes it as `attention_mask`,
    the pooling as `mask`): Keras' implicit mask does not survive a residual around
    self-attention, because MultiHeadAttention detaches it from its query tensor.
    """
    inputs = _ids_input()
    real = PaddingMask(name="real_steps")(inputs)
    keys = PaddingMask(keys=True, name="attend_to")(inputs)
    x = layers.Embedding(vocab_size, embed_dim, name="embedding")(inputs)
    x = PositionEmbedding(max_len, name="position_embedding")(x)
    for i in range(2 if stacked else 1):
        x = encoder_block(x, keys, embed_dim, heads, ff_dim, dropout, f"block_{i + 1}")
    x = MaskedGlobalPooling1D("mean", name="mean_pool")(x, mask=real)
    return _head(x, inputs, dropout, "transformer")


def build_fasttext(vocab_size, stacked=False, bigrams=(), embed_dim=64, hidden=64, dropout=0.2) -> keras.Model:
    """fastText (Joulin et al. 2016): the embeddings of the words and of the training
    bigrams (`NGramEmbedding`) averaged over the real tokens -> dropout -> sigmoid (a linear
    classifier on the average; one relu hidden layer of `hidden` units when stacked)."""
    inputs = _ids_input()
    x = NGramEmbedding(vocab_size, embed_dim, bigrams, name="embedding")(inputs)
    x = MaskedGlobalPooling1D("mean", name="mean_pool")(x)
    if stacked:
        x = layers.Dense(hidden, activation="relu", name="hidden")(layers.Dropout(dropout)(x))
    return _head(x, inputs, dropout, "fasttext")


def build_model(kind: str, vocab_size: int, max_len: int, stacked: bool = False, train_ids=None) -> keras.Model:
    """A network of family `kind`. `train_ids` (the training texts' token ids) fits what a
    family fits on them: fastText's bigram table (without it, fastText is a bag of words)."""
    bigrams = () if train_ids is None or kind != "fasttext" else bigram_keys(train_ids, vocab_size)
    builders = {
        "lstm": build_lstm,
        "gru": build_gru,
        "bilstm": build_bilstm,
        "conv1d": build_conv1d,
        "transformer": lambda v, stacked: build_transformer(v, max_len, stacked=stacked),
        "fasttext": lambda v, stacked: build_fasttext(v, stacked=stacked, bigrams=bigrams),
    }
    if kind not in builders:
        raise UserError(f"unknown model {kind!r}: choose one of {', '.join(NEURAL)} or all")
    with runtime.without_tensorflow():  # Bidirectional would import it, on any backend
        return builders[kind](vocab_size, stacked=stacked)


LEARNING_RATES = {"fasttext": 1e-2}  # a bag of n-grams learns with large steps (fastText: SGD at 0.1-1)


def compile_model(model, learning_rate=None):
    """Adam (1e-3, or the family's `LEARNING_RATES` entry), binary cross-entropy, PR-AUC; steps
    per compiled call as measured for text networks on the active backend
    (`runtime.STEPS_PER_EXECUTION`: 32 on TensorFlow)."""
    learning_rate = learning_rate or LEARNING_RATES.get(model.name, 1e-3)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(curve="PR", name="pr_auc")],
        steps_per_execution=runtime.steps_per_execution("text"),
    )
    return model


def build_tfidf(C=10.0):
    """Word 1-2 gram TF-IDF (same tokenizer) + class-balanced logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(
            tokenizer=tokenize, lowercase=False, token_pattern=None, ngram_range=(1, 2), min_df=1, sublinear_tf=True
        ),
        LogisticRegression(C=C, class_weight="balanced", max_iter=2000),
    )
