"""Sequences: change-point detection and summarise-and-query memory.

- `data`         the seeded synthetic sequences: change points (and the exact Bayes
                 posterior), digit sequences with queries (no Keras import)
- `models`       the causal LSTM and dilated-Conv1D detectors, the query network, and the
                 training loop both studies share
- `changepoint`  study 1: causal change-point detection against the Bayes-optimal ceiling
- `query`        study 2: summarise a digit sequence, answer queries from the summary
- `figures`      the change-point study's figures
- `case`         the case study: `python -m keras_cases.sequences` (see its docstring)

Importing this package does not import Keras.
"""
