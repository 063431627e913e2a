"""The flags every case study shares, and the one place user mistakes become one line."""

from __future__ import annotations

import argparse
import sys

from keras_cases import BACKENDS, UserError


def parser(prog: str, description: str, epochs: int, batch_size: int,
           threads: int = 0) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("shared by every case study")
    g.add_argument("--epochs", type=positive_int, default=epochs, help="(maximum) training epochs")
    g.add_argument("--batch-size", type=positive_int, default=batch_size, help="minibatch size")
    g.add_argument("--seed", type=int, default=0, help="random seed (weights, shuffling, dropout)")
    g.add_argument("--seeds", type=positive_int, default=1,
                   help="repeat with seeds seed..seed+N-1 and report mean and std")
    g.add_argument("--out", default=None,
                   help="run directory (default runs/<case>/<UTC timestamp>/)")
    g.add_argument("--quick", action="store_true",
                   help="a small smoke run (under a minute on 2 CPU cores)")
    g.add_argument("--backend", choices=BACKENDS, default=None,
                   help="Keras backend (same as KERAS_BACKEND=...; must come before Keras is "
                        "imported, so use it on the command line)")
    g.add_argument("--threads", type=int, default=threads,
                   help="CPU threads for the backend's ops (0: the framework's default)")
    g.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard logs to <run>/tensorboard/<model> "
                        "(view with: tensorboard --logdir <run>/tensorboard)")
    g.add_argument("-v", "--verbose", type=int, choices=(0, 1, 2), default=2,
                   help="Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch")
    return p


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return v


def run(main, argv=None) -> int:
    """Call `main(argv)`; a UserError becomes `error: ...` on stderr and exit code 2."""
    try:
        return main(argv) or 0
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
