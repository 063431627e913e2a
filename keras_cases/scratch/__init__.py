"""NumPy from-scratch networks, checked against Keras autodiff on every backend.

Short modules, one idea each (micrograd / CS231n style):

- `layers`      Dense, activations (linear, sigmoid, tanh, relu, softmax), BatchNorm,
                Flatten, initializers (Glorot / He), `Network` and `mlp([n0, ..., nL])`
- `losses`      binary / categorical cross-entropy, MSE, with closed-form gradients
- `optimizers`  SGD (momentum, Nesterov), RMSprop, Adam: keras.optimizers' exact rules
- `rnn`         a tanh SimpleRNN with backpropagation through time; gradient clipping
- `conv`        a 2-D convolution forward / backward
- `gradcheck`   centered finite differences and the shared list of gradient cases
- `keras_check` the same cases against Keras on the active backend (imports Keras)
- `checks`      the case's gradient check: the Keras checks of every backend (one process
                each), their pass/fail summary, the network exported to Keras
- `report`      the case's report: comparison and gradient-check tables, sections
- `figures`     the case's matplotlib figures
- `worked_example` the classic 2-2-1 example, one SGD step
- `case`        the case study: `python -m keras_cases.scratch` (data, models, training, main)

Importing this package does not import Keras.
"""

from keras_cases.scratch.conv import Conv2D  # noqa: F401
from keras_cases.scratch.layers import (  # noqa: F401
    ACTIVATIONS,
    INITIALIZERS,
    BatchNorm,
    Dense,
    Flatten,
    Layer,
    Linear,
    Network,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    mlp,
)
from keras_cases.scratch.losses import MSE, BinaryCrossEntropy, CategoricalCrossEntropy  # noqa: F401
from keras_cases.scratch.optimizers import SGD, Adam, RMSprop, clip_by_global_norm  # noqa: F401
from keras_cases.scratch.rnn import SimpleRNN  # noqa: F401
