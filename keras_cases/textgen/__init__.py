"""Text generation: a miniature GPT trained on real text, against an n-gram and an LSTM.

- `corpus`  the documents (your `--text FILE`, or the SMS collection and the UCI sentences),
            split by document, as byte streams; windows for next-byte prediction
- `ngram`   an interpolated byte n-gram model (Witten-Bell), order chosen on validation
- `models`  the decoder-only transformer (causal self-attention, learned positions, pre-norm,
            weight tying) and the character LSTM, functional Keras
- `sample`  temperature / top-k / top-p sampling, and `python -m keras_cases.textgen sample`
- `case`    the case study: `python -m keras_cases.textgen` (see its docstring)

Importing this package does not import Keras.
"""


def load_predictor(run_dir):
    """The served form of a run (`python -m keras_cases serve --run DIR`)."""
    from keras_cases.textgen.sample import Generator

    return Generator(run_dir)
