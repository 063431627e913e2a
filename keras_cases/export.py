"""Export a saved run's model for production: `python -m keras_cases export --run DIR
--format saved_model|onnx`, then check that the exported artifact predicts what the Keras
model predicts on the run's own validation-like inputs.

- `saved_model`: a TensorFlow SavedModel (TF Serving, TFLite converters); needs TensorFlow
  installed, and works from the JAX and TensorFlow backends.
- `onnx`: an ONNX graph (onnxruntime, TensorRT, ...); Keras exports it through
  torch.onnx, so run it with the torch backend (`--backend torch`); needs `onnx`,
  `onnxscript` and `onnxruntime` (pip install 'keras-cases[export]').
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from keras_cases import UserError, runtime
from keras_cases.runs import load_model, load_run, run_case

FORMATS = {"saved_model": "tf_saved_model", "onnx": "onnx"}


def sample_inputs(model, n=16, seed=0):
    """Random inputs of the model's input shape (float features or integer token ids)."""
    rng = np.random.default_rng(seed)
    spec = model.inputs[0]
    shape = (n, *[d or 8 for d in spec.shape[1:]])
    if "int" in str(spec.dtype):
        return rng.integers(0, 2, size=shape).astype(str(spec.dtype))
    return rng.normal(size=shape).astype("float32")


def registered(case: str) -> None:
    """Import the case that wrote the run (and the shared layers), so the custom layers its
    model uses (the text models' masked layers, positions...) are registered for loading."""
    import importlib

    from keras_cases.__main__ import CASES

    importlib.import_module("keras_cases.layers")
    if case in {name for name, _ in CASES}:
        module = importlib.import_module(f"keras_cases.{case}")
        getattr(module, "load_predictor", None)  # a lazy package loads what it serves with


def export(run_dir, fmt: str, out=None, tolerance=1e-4, overwrite=False):
    d = load_run(run_dir, ("model.keras",))
    case = run_case(d)  # a keras-cases run: its run.json names the case that wrote it
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}: choose {', '.join(FORMATS)}")
    target = Path(out).expanduser() if out else d / ("model.onnx" if fmt == "onnx" else "saved_model")
    if target.exists() and not overwrite:
        raise UserError(f"{target} already exists: pass --overwrite to replace it, or --out elsewhere")
    if not target.parent.is_dir():
        raise UserError(f"--out {target}: the folder {target.parent} does not exist")
    b = runtime.backend()
    if fmt == "onnx" and b != "torch":
        raise UserError("ONNX export runs on the torch backend here: add --backend torch")
    if fmt == "saved_model" and b == "torch":
        raise UserError("SavedModel export needs the jax or tensorflow backend: add --backend jax")
    registered(case)
    model = load_model(d / "model.keras")
    x = sample_inputs(model)
    expected = np.asarray(model.predict(x, verbose=0))
    # export beside the target, check it, and only then move it into place
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staged = tmp / target.name
    try:
        try:
            model.export(str(staged), format=FORMATS[fmt], verbose=False)
        except ImportError as e:
            raise UserError(f"{fmt} export needs more packages: {str(e).splitlines()[0]}")
        err = _check(fmt, staged, x, expected)
        if err > tolerance:
            raise UserError(f"the exported {fmt} model disagrees with Keras by {err:.2e} (> {tolerance})")
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        os.replace(staged, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target, err


def _check(fmt, path, x, expected) -> float:
    """Max abs difference between the exported artifact's predictions and Keras'."""
    if fmt == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("checking the ONNX file needs onnxruntime: pip install onnxruntime")
        sess = ort.InferenceSession(str(path))
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    else:
        got = runtime.saved_model_predict(path, x)
    return float(np.max(np.abs(np.asarray(got).reshape(expected.shape) - expected)))


def export_main(argv):
    p = argparse.ArgumentParser(prog="python -m keras_cases export", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="run directory holding model.keras")
    p.add_argument("--format", default="saved_model", choices=sorted(FORMATS))
    p.add_argument("--out", default=None, help="where to write (default inside the run directory)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export at --out")
    p.add_argument(
        "--backend", default=None, choices=("jax", "tensorflow", "torch"), help="Keras backend (as KERAS_BACKEND)"
    )
    args = p.parse_args(argv)
    target, err = export(args.run, args.format, args.out, overwrite=args.overwrite)
    print(f"exported {args.format} to {target}; predictions match Keras (max abs diff {err:.2e})")
    return 0
