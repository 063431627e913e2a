"""Custom Keras layers that more than one case uses (registered once, so a process that
imports several cases always loads a saved model with the right class)."""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable("keras_cases")
class PositionEmbedding(layers.Layer):
    """Adds a learned embedding of each step's position; keeps the mask.

    `max_len`: the longest sequence it takes (text: any length up to max_len, the first
    `steps` rows are added). Without it the table has the input's own fixed length (the
    forecast transformer's patches). Both configs load: forecast runs saved before this
    layer was shared have no max_len, text runs have one.
    """

    def __init__(self, max_len=None, **kwargs):
        super().__init__(**kwargs)
        self.max_len = None if max_len is None else int(max_len)
        self.supports_masking = True

    def build(self, input_shape):
        steps = self.max_len if self.max_len is not None else input_shape[1]
        self.embeddings = self.add_weight(
            shape=(steps, input_shape[-1]), initializer="glorot_uniform", name="embeddings"
        )

    def call(self, inputs):
        steps = ops.shape(inputs)[1]
        return inputs + ops.expand_dims(ops.take(self.embeddings, ops.arange(steps), axis=0), 0)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        config = super().get_config()
        if self.max_len is not None:
            config["max_len"] = self.max_len
        return config
