"""The two networks, functional Keras, on every backend.

`gpt`: a decoder-only transformer (Radford et al. 2018/2019, at toy scale): byte embedding
plus learned positions, `layers` pre-norm blocks of causal multi-head self-attention and a
GELU MLP, a final LayerNorm, and logits from the transposed embedding matrix (weight tying,
keras.layers.ReversibleEmbedding). `lstm`: the classic character-level LSTM language model.
Both map (batch, length) byte ids to (batch, length, VOCAB) next-byte logits.
Two of Primer's changes (So et al. 2021, found by searching for a better small language model)
are options of `gpt`: `local`, a causal depthwise convolution over the last few positions
before each attention (see `local_mixing`), and `activation="relu2"`, the squared ReLU in the
MLP.

`input_ngrams` n >= 2 adds to each byte's embedding a learned embedding of every byte n-gram
that ends at it (2 to n bytes, hashed into `buckets` rows each; the hash n-gram embeddings of
the Byte Latent Transformer, Pagnoni et al. 2024): the statistics of short contexts are then a
table look-up away instead of something attention has to learn first, which is what a small
model on a small CPU budget needs. Still causal: only the byte and the ones before it. The
tables are most of the parameters ((n - 1) x buckets x width) and, on a small corpus, what
overfits first: a rare n-gram's row is fitted to its few occurrences. Fewer buckets share rows
between rare n-grams, and weight decay (`compile_model`, on the matrices: kernels and
embeddings, not biases or LayerNorm scales) pulls the rows that are seldom updated back to
zero, so those n-grams fall back on the shorter ones.
"""

from __future__ import annotations

import keras

from keras_cases.layers import PositionEmbedding
from keras_cases.textgen.corpus import BOUNDARY, BUCKETS, VOCAB


@keras.saving.register_keras_serializable("keras_cases_textgen")
class HashedNGramEmbedding(keras.layers.Layer):
    """Sum of learned embeddings of the 2..`order`-byte n-grams ending at each position
    (bytes before the window count as BOUNDARY); (batch, length) ids -> (batch, length, width)."""

    def __init__(self, order, width, buckets=BUCKETS, **kwargs):
        super().__init__(**kwargs)
        self.order, self.width, self.buckets = int(order), int(width), int(buckets)

    def build(self, input_shape):
        rows = (self.order - 1) * self.buckets
        self.embeddings = self.add_weight(shape=(rows, self.width), initializer="uniform", name="embeddings")

    def call(self, ids):
        ids = keras.ops.cast(ids, "int32")
        key, total = ids, 0
        for n in range(2, self.order + 1):
            prev = keras.ops.pad(ids[:, : -(n - 1)], [[0, 0], [n - 1, 0]], constant_values=BOUNDARY)
            key = keras.ops.mod(key * VOCAB + prev, self.buckets)  # < buckets * 257: fits int32
            total = total + keras.ops.take(self.embeddings, key + (n - 2) * self.buckets, axis=0)
        return total

    def get_config(self):
        return {**super().get_config(), "order": self.order, "width": self.width, "buckets": self.buckets}


@keras.saving.register_keras_serializable("keras_cases_textgen")
def relu_squared(x):
    """Primer's squared ReLU (So et al. 2021)."""
    return keras.ops.square(keras.ops.relu(x))


ACTIVATIONS = {"gelu": "gelu", "relu2": relu_squared}


def embed_bytes(ids, embedded, width: int, input_ngrams: int, buckets: int = BUCKETS):
    if input_ngrams < 2:
        return embedded
    ngrams = HashedNGramEmbedding(input_ngrams, width, buckets, name="ngram_embedding")(ids)
    return keras.layers.Add()([embedded, ngrams])


def local_mixing(h, kernel: int, name: str):
    """h plus a causal depthwise convolution of h over the last `kernel` positions, started at
    zero so the block starts as the plain one (Primer's depthwise convolution before attention,
    So et al. 2021): each channel may mix in its own values at the bytes just before, a
    locality attention has to learn otherwise."""
    if kernel < 2:
        return h
    past = keras.layers.ZeroPadding1D((kernel - 1, 0), name=f"{name}_pad")(h)
    conv = keras.layers.DepthwiseConv1D(kernel, use_bias=False, depthwise_initializer="zeros", name=name)(past)
    return keras.layers.Add(name=f"{name}_add")([h, conv])


def gpt(
    context: int,
    width: int = 128,
    layers: int = 4,
    heads: int = 4,
    dropout: float = 0.1,
    input_ngrams: int = 0,
    buckets: int = BUCKETS,
    local: int = 0,
    activation: str = "gelu",
) -> keras.Model:
    ids = keras.Input((context,), dtype="int32", name="bytes")
    embed = keras.layers.ReversibleEmbedding(VOCAB, width, name="embedding")
    x = embed_bytes(ids, embed(ids), width, input_ngrams, buckets)
    x = PositionEmbedding(max_len=context, name="positions")(x)
    x = keras.layers.Dropout(dropout)(x)
    for i in range(layers):
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=f"block{i}_norm1")(x)
        h = local_mixing(h, local, f"block{i}_local")
        h = keras.layers.MultiHeadAttention(heads, width // heads, dropout=dropout, name=f"block{i}_attention")(
            h, h, use_causal_mask=True
        )
        x = keras.layers.Add()([x, keras.layers.Dropout(dropout)(h)])
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=f"block{i}_norm2")(x)
        h = keras.layers.Dense(4 * width, activation=ACTIVATIONS[activation], name=f"block{i}_mlp_in")(h)
        h = keras.layers.Dense(width, name=f"block{i}_mlp_out")(h)
        x = keras.layers.Add()([x, keras.layers.Dropout(dropout)(h)])
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    return keras.Model(ids, embed(x, reverse=True), name="gpt")


def lstm(
    context: int, width: int = 256, dropout: float = 0.1, input_ngrams: int = 0, buckets: int = BUCKETS
) -> keras.Model:
    ids = keras.Input((context,), dtype="int32", name="bytes")
    x = embed_bytes(ids, keras.layers.Embedding(VOCAB, 64, name="embedding")(ids), 64, input_ngrams, buckets)
    x = keras.layers.LSTM(width, return_sequences=True, dropout=dropout, name="lstm")(x)
    return keras.Model(ids, keras.layers.Dense(VOCAB, name="logits")(x), name="lstm")


def decayed(variable) -> bool:
    """Weight decay on the matrices only: kernels and embedding tables, not biases (the
    attention's are 2-D) or LayerNorm scales and offsets."""
    return len(variable.shape) >= 2 and variable.name not in ("bias", "gamma", "beta")


def compile_model(model: keras.Model, lr: float, steps: int, warmup: int, weight_decay: float = 0.1) -> keras.Model:
    """AdamW (decoupled `weight_decay` on the matrices, see `decayed`) with linear warm-up then
    cosine decay over `steps`; cross-entropy on logits."""
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(1, steps - warmup), warmup_target=lr, warmup_steps=warmup, alpha=0.1
    )
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay, beta_2=0.99, clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_list=[v for v in model.trainable_variables if not decayed(v)])
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
