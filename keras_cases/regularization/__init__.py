"""Regularization: over- and underfitting, bias and variance, dropout, weight decay,
early stopping.

- `polynomials`  studies (a) and (b): seeded polynomial data, least-squares fits and the
                 bias-variance decomposition by resampling (NumPy, no Keras import)
- `networks`     the Keras models of studies (c)-(e) (an MLP, a small CNN) and how they
                 are trained and scored
- `studies`      the five studies, each returning its report section
- `case`         the case study: `python -m keras_cases.regularization` (see its docstring)

Importing this package does not import Keras.
"""
