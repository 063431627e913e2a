"""keras-cases: classic deep-learning case studies in Keras 3, on JAX, TensorFlow and PyTorch.

Importing the package chooses the Keras backend *before* anything imports Keras, so a
wrong or missing backend is reported in one sentence instead of a traceback from deep
inside Keras:

- `--backend NAME` on a keras-cases command line (`python -m ...` or the `keras-cases`
  script), else `KERAS_BACKEND`: both strict (one line if unknown or not installed);
  else the backend in ~/.keras/keras.json if it is installed (Keras writes "tensorflow"
  there on first import), else the first installed of jax, tensorflow, torch.
"""

import os
import sys

__version__ = "0.1.0"

BACKENDS = ("jax", "tensorflow", "torch")


class UserError(Exception):
    """A mistake in the user's input: reported as one line, exit code 2, no traceback."""


def _command_line() -> list[str] | None:
    """The arguments of a keras-cases command line (`python -m keras_cases...` or the
    `keras-cases` console script), else None (a library import, a notebook, pytest)."""
    orig = list(getattr(sys, "orig_argv", []) or [])
    if "-m" in orig:
        i = orig.index("-m")
        module = orig[i + 1] if i + 1 < len(orig) else ""
        if module.split(".")[0] in ("keras_cases", "tuning", "benchmarks"):
            return orig[i + 2 :]
        return None
    if sys.argv and os.path.basename(sys.argv[0]).startswith("keras-cases"):
        return sys.argv[1:]
    return None


def _select_backend():
    from keras_cases import runtime

    args = _command_line()
    if args is not None:
        for i, arg in enumerate(args):
            if arg == "--backend" and i + 1 < len(args):
                os.environ["KERAS_BACKEND"] = args[i + 1]
            elif arg.startswith("--backend="):
                os.environ["KERAS_BACKEND"] = arg.split("=", 1)[1]
    try:
        runtime.select_backend()
    except UserError as e:
        if args is None:
            raise
        if not args or "-h" in args or "--help" in args:
            # the listing and --help need no backend: let them run on whatever is installed
            found = runtime.installed_backends()
            if found:
                os.environ["KERAS_BACKEND"] = found[0]
            return
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_select_backend()
