"""Representation learning: autoencoders vs PCA, encoder reuse, a self-supervised pretext task.

- `common`        what the studies share: restarting a compiled model, training a classifier
- `autoencoders`  study ae: dense autoencoders on MNIST against PCA
- `reuse`         study reuse: the autoencoder's encoder as a classifier on a few labels
- `rotation`      study rotation: the rotation pretext on CIFAR-10 and transfer of its blocks
                  (the backbone itself: keras_cases.backbones, shared with the transfer case)
- `case`          the case study: `python -m keras_cases.representation` (see its docstring)

Importing this package does not import Keras.
"""


def load_predictor(run_dir):
    """For `python -m keras_cases serve --run DIR` (see case.load_predictor)."""
    from keras_cases.representation.case import load_predictor

    return load_predictor(run_dir)


def main(argv=None):
    """`python -m keras_cases.representation` as a function (see case.main)."""
    from keras_cases.representation.case import main

    return main(argv)
