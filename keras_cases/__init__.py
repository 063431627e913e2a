"""keras-cases: classic deep-learning case studies in Keras 3, on JAX, TensorFlow and PyTorch.

Importing the package chooses the Keras backend *before* anything imports Keras, so a
wrong or missing backend is reported in one sentence instead of a traceback from deep
inside Keras:

- `KERAS_BACKEND` if set, else `--backend NAME` on a `python -m keras_cases.<case>` command
  line, else the backend in ~/.keras/keras.json, else the first installed of jax,
  tensorflow, torch.
"""

import os
import sys

__version__ = "0.1.0"

BACKENDS = ("jax", "tensorflow", "torch")


class UserError(Exception):
    """A mistake in the user's input: reported as one line, exit code 2, no traceback."""


def _select_backend():
    from keras_cases import runtime

    as_cli = bool(sys.argv) and sys.argv[0] == "-m"
    if as_cli and "--backend" in sys.argv[1:]:
        i = sys.argv.index("--backend")
        if i + 1 < len(sys.argv):
            os.environ["KERAS_BACKEND"] = sys.argv[i + 1]
    for i, arg in enumerate(sys.argv[1:] if as_cli else []):
        if arg.startswith("--backend="):
            os.environ["KERAS_BACKEND"] = arg.split("=", 1)[1]
    try:
        runtime.select_backend()
    except UserError as e:
        if as_cli:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2)
        raise


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_select_backend()
