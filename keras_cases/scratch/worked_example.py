"""The classic worked example of backpropagation: a 2-2-1 network without biases.

    inputs (i1, i2) = (2, 4), target y = 1, loss 1/2 (y - y_hat)^2, learning rate 0.05
    h1 = W1*i1 + W2*i2,   h2 = W3*i1 + W4*i2,   y_hat = W5*h1 + W6*h2

(hidden units linear, or relu: with these weights both hidden units are positive, so
relu changes nothing.) In Keras' layout the first kernel is [[W1, W3], [W2, W4]]
(row = input, column = hidden unit) and the second is [[W5], [W6]].
"""

from __future__ import annotations

import numpy as np

from keras_cases.scratch.layers import Dense, Linear, Network, activation
from keras_cases.scratch.losses import MSE
from keras_cases.scratch.optimizers import SGD

WEIGHTS = (
    -0.2822470618366393,
    0.8811006806223465,
    1.0880624516582986,
    0.49681749648057094,
    0.3779743052305753,
    0.2997037641550875,
)
X = np.array([[2.0, 4.0]])
Y = np.array([[1.0]])
LEARNING_RATE = 0.05


def kernels(w=WEIGHTS):
    w1, w2, w3, w4, w5, w6 = w
    return [np.array([[w1, w3], [w2, w4]]), np.array([[w5], [w6]])]


def as_w1_to_w6(kernel_1, kernel_2):
    """The six numbers W1..W6 back out of the two kernels (or their gradients)."""
    return [kernel_1[0, 0], kernel_1[1, 0], kernel_1[0, 1], kernel_1[1, 1], kernel_2[0, 0], kernel_2[1, 0]]


def network(hidden="linear"):
    net = Network([Dense(2, 2, use_bias=False), activation(hidden), Dense(2, 1, use_bias=False), Linear()])
    net.set_weights(kernels())
    return net


def one_step(hidden="linear") -> dict:
    """Output, loss and the six gradients at the start; the loss after one SGD step."""
    net, loss = network(hidden), MSE(scale=0.5)
    y_hat = float(net(X)[0, 0])
    value, _, grads = net.loss_and_grads(X, Y, loss)
    SGD(LEARNING_RATE).step(net.params(), grads)
    return {
        "y_hat": y_hat,
        "loss": value,
        "grads": [float(g) for g in as_w1_to_w6(*grads)],
        "loss_after": loss.forward(net(X), Y),
    }
