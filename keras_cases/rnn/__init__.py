"""RNNs: vanishing gradients on the copy task, and SimpleRNN vs LSTM vs GRU.

- `tasks`      seeded NumPy generators: the copy task, trend / sine / random-walk series
               (no Keras import)
- `cells`      keras.ops cells (an LSTM with a gate held open, a GRU), the hidden-state
               gradient probe, the spectral-radius callback
- `models`     the copy-task and series models, NumPy-drawn weights and gate biases
- `training`   compile once, re-initialise per seed (`Trainer`); the copy-task fits every
               study shares (`CopyRuns`)
- `compare`    study: SimpleRNN vs LSTM vs GRU on the copy task and the series task
- `gradients`  study: ||dL/dh_t|| per time step, the recurrent matrix's spectral radius
- `ablation`   study: the LSTM with one gate held open
- `figures`    the case's matplotlib figures
- `case`       the case study: `python -m keras_cases.rnn` (parser, `main`, the study list;
               see its docstring)

Importing this package does not import Keras.
"""
