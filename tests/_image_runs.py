"""Quick runs on every backend for test_representation.py and test_transfer.py.

One subprocess per backend (in order) runs a case's `--quick`, predicts with every model
it saved, and loads the models the backends before it saved: so a model saved on one
backend is checked on another without a process per pair (each backend's start-up and
compilation cost more than the checks)."""

import json
import os
from pathlib import Path

import numpy as np
from conftest import backends_under_test, check, run_python

# quick runs are compile-bound: XLA's -O0 compiles several times faster on CPU (JAX)
XLA_O0 = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

PREDICT = str(Path(__file__).parent / "scripts" / "image_predict.py")  # run as a file in a subprocess


def run_everywhere(out, body: str, saved: dict, extra_backend=None):
    """Run `body` (indented Python using `here`, `out`, `extra`) then the prediction checks
    on every backend (tests/scripts/image_predict.py); `extra` is "extra" on `extra_backend`
    and "-" elsewhere."""
    done = []
    for b in backends_under_test():
        check(
            run_python(
                [PREDICT, str(out), b, ",".join(done), json.dumps(saved), "extra" if b == extra_backend else "-", body],
                backend=b,
                cwd=out,
                XLA_FLAGS=XLA_O0,
            )
        )
        done.append(b)
    return out


def same_predictions_everywhere(out):
    """[(saved on, loaded on, model, max abs difference, predictions)] for every ordered
    pair of backends."""
    bs = backends_under_test()
    rows = []
    for i, b in enumerate(bs):
        for a in bs[:i]:
            own = np.load(out / a / "own.npz")
            got = np.load(out / b / f"from_{a}.npz")
            for k in own.files:
                rows.append((a, b, k.replace("|", "/"), float(np.max(np.abs(own[k] - got[k]))), own[k]))
    return rows


def write_colour_folder(root, counts, size=(20, 14)):
    """root/<colour>/<i>.png: noisy flat-colour images, `counts` per class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = {"red": (200, 30, 30), "blue": (30, 30, 200), "green": (30, 200, 30)}
    for c, n in counts.items():
        (root / c).mkdir(parents=True)
        for i in range(n):
            px = np.clip(np.array(colours[c]) + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(root / c / f"{i}.png")
