"""The two networks, functional Keras, on every backend.

`gpt`: a decoder-only transformer (Radford et al. 2018/2019, at toy scale): byte embedding
plus learned positions, `layers` pre-norm blocks of causal multi-head self-attention and a
GELU MLP, a final LayerNorm, and logits from the transposed embedding matrix (weight tying,
keras.layers.ReversibleEmbedding). `lstm`: the classic character-level LSTM language model.
Both map (batch, length) byte ids to (batch, length, VOCAB) next-byte logits.
"""

from __future__ import annotations

import keras

from keras_cases.layers import PositionEmbedding
from keras_cases.textgen.corpus import VOCAB


def gpt(context: int, width: int = 128, layers: int = 4, heads: int = 4, dropout: float = 0.1) -> keras.Model:
    ids = keras.Input((context,), dtype="int32", name="bytes")
    embed = keras.layers.ReversibleEmbedding(VOCAB, width, name="embedding")
    x = PositionEmbedding(max_len=context, name="positions")(embed(ids))
    x = keras.layers.Dropout(dropout)(x)
    for i in range(layers):
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=f"block{i}_norm1")(x)
        h = keras.layers.MultiHeadAttention(heads, width // heads, dropout=dropout, name=f"block{i}_attention")(
            h, h, use_causal_mask=True
        )
        x = keras.layers.Add()([x, keras.layers.Dropout(dropout)(h)])
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=f"block{i}_norm2")(x)
        h = keras.layers.Dense(4 * width, activation="gelu", name=f"block{i}_mlp_in")(h)
        h = keras.layers.Dense(width, name=f"block{i}_mlp_out")(h)
        x = keras.layers.Add()([x, keras.layers.Dropout(dropout)(h)])
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    return keras.Model(ids, embed(x, reverse=True), name="gpt")


def lstm(context: int, width: int = 256, dropout: float = 0.1) -> keras.Model:
    ids = keras.Input((context,), dtype="int32", name="bytes")
    x = keras.layers.Embedding(VOCAB, 64, name="embedding")(ids)
    x = keras.layers.LSTM(width, return_sequences=True, dropout=dropout, name="lstm")(x)
    return keras.Model(ids, keras.layers.Dense(VOCAB, name="logits")(x), name="lstm")


def compile_model(model: keras.Model, lr: float, steps: int, warmup: int) -> keras.Model:
    """AdamW with linear warm-up then cosine decay over `steps`; cross-entropy on logits."""
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(1, steps - warmup), warmup_target=lr, warmup_steps=warmup, alpha=0.1
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01, beta_2=0.99, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model
