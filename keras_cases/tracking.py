"""Experiment tracking with MLflow: `--mlflow [URI]` (or KERAS_CASES_MLFLOW=URI) on every case.

One MLflow run per case invocation (the run directory's name, in the experiment
`keras-cases-<case>`), with the parsed flags as parameters and tags for case, backend,
dataset, seed and git commit; a nested run per trained model (each `fit` that goes through
callbacks.resumable: per-epoch metrics, step = epoch); at the end the numeric values of
metrics.json as metrics and the run directory (report, plots, model files) as artifacts.
The default URI is a local store in the working directory (sqlite:///mlruns.db, artifacts
under ./mlruns), so it works with no server; a tracking server's http(s):// URI works the
same.

A KerasTuner search (`python -m tuning.<search> --mlflow [URI]`) is one MLflow run in the
experiment `keras-cases-tuning-<search>` (flags as params; search, backend, seed, commit
tags) with a nested run per trial: its hyperparameters as params, its per-epoch metrics
(step = epoch), its score and status; at the end metrics.json and the result files.

Tracking never costs a result: when the store cannot be reached or refuses, that is one
warning line, tracking stops for this run, and training goes on to write its run directory.
Only this module imports mlflow.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

from keras_cases import UserError

DEFAULT_URI = "sqlite:///mlruns.db"
ENV = "KERAS_CASES_MLFLOW"
_active: dict = {}  # {"client", "run_id", "uri", "dir"} while a tracked run is open


def requested(flag) -> str | None:
    """The tracking URI asked for by `--mlflow [URI]` (flag: None, "" for the default, or
    a URI) or by $KERAS_CASES_MLFLOW; None when tracking is off."""
    uri = flag if flag is not None else os.environ.get(ENV)
    if uri is None:
        return None
    return uri.strip() or DEFAULT_URI


def check_installed() -> None:
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        raise UserError("--mlflow needs MLflow: pip install 'keras-cases[mlflow]'")


def _warn(what: str, e: BaseException) -> None:
    first = (str(e).strip().splitlines() or [""])[0][:200]
    print(
        f"warning: MLflow {what} failed at {_active.get('uri')} ({type(e).__name__}: {first}); "
        f"tracking stops, the run goes on and is saved in {_active.get('dir')}",
        file=sys.stderr,
        flush=True,
    )
    _active.clear()


def _safely(what: str, fn, *a, **k):
    if not _active:
        return None
    try:
        return fn(*a, **k)
    except Exception as e:  # a tracking failure must never end the training
        _warn(what, e)
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _client(uri: str):
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a dead server: fail fast
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def start(run, uri: str, params: dict) -> None:
    """Open the MLflow run of `run` (a runs.Run) under experiment keras-cases-<case>."""
    from keras_cases import runtime

    tags = {
        "case": run.case,
        "backend": runtime.backend(),
        "seed": str(params.get("seed")),
        "run_dir": str(run.dir.resolve()),
        "mlflow.source.name": f"python -m keras_cases.{run.case}",
    }
    _open(uri, run.dir, f"keras-cases-{run.case}", run.dir.name, tags, params)


def _open(uri: str, directory, experiment: str, run_name: str, tags: dict, params: dict) -> None:
    """Open a top-level MLflow run (creating its experiment), or warn once and stay off."""
    _active.update(uri=uri, dir=str(directory))

    def go():
        client = _client(uri)
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            local = uri.startswith("sqlite:") or "://" not in uri
            exp_id = client.create_experiment(
                experiment, artifact_location=Path("mlruns").resolve().as_uri() if local else None
            )
        else:
            exp_id = exp.experiment_id
        commit = _git_commit()
        r = client.create_run(
            exp_id, run_name=run_name, tags={**tags, **({"mlflow.source.git.commit": commit} if commit else {})}
        )
        _active.update(client=client, run_id=r.info.run_id, experiment_id=exp_id)
        _log_params(client, r.info.run_id, params)
        print(f"MLflow: run {r.info.run_id} in experiment {experiment} at {uri}", flush=True)

    try:
        go()
    except Exception as e:
        _warn("start", e)


def _log_params(client, run_id, params: dict) -> None:
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in sorted(params.items()) if v is not None]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i : i + 100])


def _metrics(values: dict, step: int = 0, prefix: str = "") -> list:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    out = []
    for k, v in flatten(values, prefix).items():
        out.append(Metric(k, v, now, step))
    return out


def flatten(values: dict, prefix: str = "") -> dict:
    """The finite numbers in a nested dict, keyed a/b/c (what MLflow gets of metrics.json)."""
    out = {}
    for k, v in values.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[key] = float(v)
    return out


class ModelRun:
    """A nested MLflow run for one trained model (or one tuner trial, with its
    hyperparameters as `params`): `epoch(step, logs)` logs its metrics."""

    def __init__(self, name: str, params: dict | None = None, tags: dict | None = None):
        self.run_id = None
        if not _active:
            return
        a = _active

        def go():
            r = a["client"].create_run(
                a["experiment_id"], run_name=name, tags={"mlflow.parentRunId": a["run_id"], **(tags or {"model": name})}
            )
            if params:
                _log_params(a["client"], r.info.run_id, params)
            return r.info.run_id

        self.run_id = _safely("nested run", go)

    def epoch(self, step: int, logs: dict) -> None:
        if self.run_id and _active:
            _safely("metric logging", lambda: _active["client"].log_batch(self.run_id, metrics=_metrics(logs, step)))

    def end(self, status: str = "FINISHED", metrics: dict | None = None, tags: dict | None = None) -> None:
        if not (self.run_id and _active):
            return
        client = _active["client"]

        def go():
            for k, v in (tags or {}).items():
                client.set_tag(self.run_id, k, str(v)[:5000])
            if metrics:
                client.log_batch(self.run_id, metrics=_metrics(metrics))
            client.set_terminated(self.run_id, status)

        _safely("nested run end", go)


def model_callback(name: str):
    """A Keras callback logging each epoch of a fit as a nested run, or None when off."""
    if not _active:
        return None
    import keras

    class _Log(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.run = ModelRun(name)

        def on_epoch_end(self, epoch, logs=None):
            self.run.epoch(epoch + 1, logs or {})

        def on_train_end(self, logs=None):
            self.run.end()

    return _Log()


def finish(run, status: str) -> None:
    """Log metrics.json and the run directory, then close the MLflow run with the status."""
    if not _active:
        return
    client, run_id = _active["client"], _active["run_id"]
    metrics = run.dir / "metrics.json"

    def log_results():
        if metrics.is_file():
            from keras_cases.runs import read_json

            values = read_json(metrics)
            if isinstance(values.get("dataset"), str):
                client.set_tag(run_id, "dataset", values["dataset"])
            items = _metrics(values)
            for i in range(0, len(items), 500):
                client.log_batch(run_id, metrics=items[i : i + 500])
        for f in sorted(run.dir.rglob("*")):
            rel = f.relative_to(run.dir)
            if f.is_file() and rel.parts[0] != "checkpoints":
                client.log_artifact(run_id, str(f), artifact_path=str(rel.parent) if rel.parent.parts else None)

    _safely("artifact logging", log_results)
    state = {"complete": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
    _safely("run end", lambda: client.set_terminated(run_id, state))
    _active.clear()


# --- KerasTuner searches (tuning/) ---------------------------------------------------------
_trial: dict = {}  # {"run": ModelRun} while a tracked trial runs


def start_search(name: str, directory, params: dict, tuner_id: str | None = None) -> bool:
    """Open the MLflow run of a search (`python -m tuning.<name>`) under experiment
    keras-cases-tuning-<name>, if `--mlflow` / $KERAS_CASES_MLFLOW asks for it; the parsed
    flags are its params. In distributed mode every process (chief, workers) has its own run,
    named <directory>-<tuner id>: the workers' hold their trials, the chief's the results.
    Returns whether tracking is on."""
    uri = requested(params.get("mlflow"))
    if uri is None:
        return False
    from keras_cases import runtime

    directory = Path(directory)
    tags = {
        "search": name,
        "backend": runtime.backend(),
        "seed": str(params.get("seed")),
        "directory": str(directory.resolve()),
        "mlflow.source.name": f"python -m tuning.{name}",
    }
    if tuner_id:
        tags["tuner_id"] = tuner_id
    run_name = directory.resolve().name + (f"-{tuner_id}" if tuner_id else "")
    _open(uri, directory, f"keras-cases-tuning-{name}", run_name, tags, params)
    return bool(_active)


def trial_begin(trial_id: str, hyperparameters: dict) -> None:
    """A nested run `trial_<id>` with the trial's hyperparameters as params."""
    _trial.clear()
    if _active:
        _trial["run"] = ModelRun(f"trial_{trial_id}", params=hyperparameters, tags={"trial_id": str(trial_id)})


def trial_epoch(step: int, logs: dict) -> None:
    """The running trial's metrics of one epoch (step = epoch, counted from 1)."""
    if _trial:
        _trial["run"].epoch(step, logs or {})


def trial_end(status: str, score=None, metrics: dict | None = None, note: str = "") -> None:
    """Close the trial's nested run: its score and final metrics, the tuner's status as a
    tag (FINISHED in MLflow for a COMPLETED trial, FAILED otherwise)."""
    run = _trial.pop("run", None)
    if run is None:
        return
    values = {**(metrics or {}), **({"score": score} if score is not None else {})}
    run.end(
        "FINISHED" if status == "COMPLETED" else "FAILED",
        values,
        {"status": status, **({"note": note} if note else {})},
    )


def finish_search(directory, files, status: str) -> None:
    """Log the values of metrics.json (when one of `files`) and the result `files` of the
    search (those that exist), then close its run: status complete, interrupted or failed."""
    if not _active:
        return
    _trial.clear()
    client, run_id, d = _active["client"], _active["run_id"], Path(directory)

    def log_results():
        if "metrics.json" in files and (d / "metrics.json").is_file():
            from keras_cases.runs import read_json

            items = _metrics(read_json(d / "metrics.json"))
            for i in range(0, len(items), 500):
                client.log_batch(run_id, metrics=items[i : i + 500])
        for f in files:
            if (d / f).is_file():
                client.log_artifact(run_id, str(d / f))

    _safely("artifact logging", log_results)
    state = {"complete": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
    _safely("run end", lambda: client.set_terminated(run_id, state))
    _active.clear()
