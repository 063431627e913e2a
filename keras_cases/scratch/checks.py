"""The gradient check of the case: finite differences here, Keras' autodiff on every chosen
backend (each in its own process: Keras fixes its backend at import), and the trained
network exported to Keras."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from keras_cases import UserError, runtime

GRAD_PASS = 1e-7  # max relative error of a hand-written gradient
OPT_PASS = 1e-10  # max |w_scratch - w_keras| after the optimizer steps


def check_backends(text: str) -> list[str]:
    """--check-backends: 'installed', 'none' or a comma-separated list."""
    if text == "installed":
        return runtime.installed_backends()
    if text == "none":
        return []
    names = [b.strip().lower() for b in text.split(",") if b.strip()]
    installed = runtime.installed_backends()
    for b in names:
        if b not in installed:
            raise UserError(
                f"--check-backends: {b!r} is not an installed Keras backend "
                f"(installed: {', '.join(installed) or 'none'})"
            )
    return names


def start_check(backend: str) -> subprocess.Popen:
    """`python -m keras_cases.scratch.keras_check` with KERAS_BACKEND=backend."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, "-m", "keras_cases.scratch.keras_check"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def collect_check(proc: subprocess.Popen, timeout=600) -> dict:
    """The JSON a started check printed, or {"error": its last line of stderr}."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": f"timed out after {timeout} s"}
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": (err.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]}
    try:
        return json.loads(lines[-1])
    except ValueError:
        return {"error": f"no JSON result; its output ended with {lines[-1][:200]!r}"}


def start_checks(backends) -> dict:
    """Launch the Keras checks of the other backends: they run while this one trains.
    (Keras fixes its backend at import, so each backend needs its own process.)"""
    active = os.environ["KERAS_BACKEND"]  # set by `import keras_cases`
    return {b: start_check(b) for b in backends if b != active}


def finish_checks(backends, procs, seed) -> dict:
    """{backend: keras_check result}: the active backend in this process, the others
    collected from their subprocesses."""
    from keras_cases.scratch import keras_check

    return {b: collect_check(procs[b]) if b in procs else keras_check.run_all(seed) for b in backends}


def summarize_checks(fd: dict, keras_results: dict) -> dict:
    """Flat pass/fail numbers for metrics.json."""
    out = {"gradcheck_fd_max_rel_error": max(fd.values())}
    for b, r in keras_results.items():
        if "error" in r:
            out[f"gradcheck_{b}_error"] = r["error"]
            continue
        out[f"gradcheck_keras_{b}_max_rel_error"] = max(r["gradients"].values())
        out[f"optimizer_keras_{b}_max_abs_diff"] = max(r["optimizers"].values())
    ok = out["gradcheck_fd_max_rel_error"] < GRAD_PASS and all(
        "error" not in r
        and max(r["gradients"].values()) < GRAD_PASS
        and max(r["optimizers"].values()) < OPT_PASS
        and not any(r["optimizer_defaults"].values())
        for r in keras_results.values()
    )
    return {**out, "gradcheck_passed": bool(ok)}


def export_keras(net, data, path) -> float:
    """Save the trained scratch network as a float64 Keras model; returns the largest
    |p_keras - p_scratch| on the test set."""
    import keras

    from keras_cases.scratch import keras_check

    with keras_check.float64():
        model, _ = keras_check.to_keras(net, (data.x_train.shape[1],), weights=False)
        runtime.save_model(model, path)  # without importing TensorFlow on JAX or torch
        p = keras.ops.convert_to_numpy(model(data.x_test))
    return float(np.max(np.abs(p - net.predict(data.x_test))))
