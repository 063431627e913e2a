"""RNNs: vanishing gradients on the copy task, and SimpleRNN vs LSTM vs GRU.

- `tasks`    seeded NumPy generators: the copy task, trend / sine / random-walk series
             (no Keras import)
- `cells`    keras.ops cells (an LSTM with a gate held open, a GRU), the hidden-state
             gradient probe, the spectral-radius callback
- `figures`  the case's matplotlib figures
- `case`     the case study: `python -m keras_cases.rnn` (see its docstring)

Importing this package does not import Keras.
"""
