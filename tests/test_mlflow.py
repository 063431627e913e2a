"""MLflow tracking against a real `mlflow server` on 127.0.0.1 (temporary sqlite store) and
the local default store: runs are read back with MlflowClient. A server that is down or
killed mid-run costs one warning line, never the run directory."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import check, run_python, subprocess_env
from mlflow.tracking import MlflowClient  # in the [all] extra: never skipped

QUICK = ["-m", "keras_cases.churn", "--quick", "-v", "0"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    store = tmp_path / "server"
    store.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{store / 'mlflow.db'}",
            "--artifacts-destination",
            str(store / "artifacts"),
            "--workers",
            "1",
        ],
        cwd=store,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # its own process group: the server's workers die with it
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            MlflowClient(uri).search_experiments()
            break
        except Exception:
            assert proc.poll() is None, "mlflow server exited"
            time.sleep(1)
    else:
        kill(proc)
        pytest.fail("mlflow server did not start within 120 s")
    yield uri, proc
    kill(proc)


def kill(proc):
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def runs_of(client, case="churn"):
    exp = client.get_experiment_by_name(f"keras-cases-{case}")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def check_logged(client, parent, children, run_dir: Path):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["case"] == "churn" and parent.data.tags["dataset"] == metrics["dataset"]
    assert parent.data.tags["backend"] == metrics["backend"] and parent.data.tags["seed"] == "0"
    assert parent.data.params["epochs"] == "6" and parent.data.params["quick"] == "True"
    for k in ("roc_auc", "recall", "precision", "threshold"):
        assert parent.data.metrics[k] == pytest.approx(metrics[k], rel=1e-12), k
    names = {r.info.run_name for r in children}
    assert names == {"baseline_mlp_seed0", "residual_mlp_seed0"}
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    history = [line.split(",") for line in (run_dir / "history.csv").read_text().splitlines()]
    header, rows = history[0], history[1:]
    for child in children:
        model = child.info.run_name.split("_")[0]
        expected = [float(r[header.index("val_loss")]) for r in rows if r[0] == model]
        got = sorted(client.get_metric_history(child.info.run_id, "val_loss"), key=lambda m: m.step)
        assert [m.step for m in got] == list(range(1, len(expected) + 1))
        assert [m.value for m in got] == pytest.approx(expected, rel=1e-6)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"metrics.json", "report.md", "model.keras", "roc_pr.png", "history.csv"} <= artifacts


def test_tracking_server_gets_params_epochs_metrics_and_artifacts(server, tmp_path):
    uri, _ = server
    proc = check(run_python([*QUICK, "--out", str(tmp_path / "run"), "--mlflow", uri], cwd=tmp_path))
    assert "MLflow: run" in proc.stdout and "warning" not in proc.stderr
    client = MlflowClient(uri)
    parents, children = runs_of(client)
    assert len(parents) == 1
    check_logged(client, parents[0], children, tmp_path / "run")


def test_local_default_store_via_environment(tmp_path):
    check(run_python([*QUICK, "--out", str(tmp_path / "run")], cwd=tmp_path, KERAS_CASES_MLFLOW=""))
    check(run_python([*QUICK, "--out", str(tmp_path / "run2"), "--mlflow"], cwd=tmp_path))
    assert (tmp_path / "mlruns.db").is_file() and (tmp_path / "mlruns").is_dir()
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    parents, children = runs_of(client)
    assert sorted(p.info.run_name for p in parents) == ["run", "run2"]
    first = [p for p in parents if p.info.run_name == "run"][0]
    mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == first.info.run_id]
    check_logged(client, first, mine, tmp_path / "run")


def test_server_down_is_one_warning_and_a_complete_run(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    proc = check(run_python([*QUICK, "--out", str(tmp_path / "run"), "--mlflow", dead], cwd=tmp_path))
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: MLflow")]
    assert len(warnings) == 1, proc.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "complete"
    assert (tmp_path / "run" / "metrics.json").is_file() and (tmp_path / "run" / "model.keras").is_file()


def test_server_killed_mid_run_leaves_a_complete_run(server, tmp_path):
    uri, server_proc = server
    client = MlflowClient(uri)
    proc = subprocess.Popen(
        [sys.executable, *QUICK, "--out", str(tmp_path / "run"), "--mlflow", uri],
        cwd=tmp_path,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # the run has started logging
        try:
            parents, _ = runs_of(client)
            if parents:
                break
        except AssertionError:
            pass
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before the server could be killed"
    kill(server_proc)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert len([line for line in err.splitlines() if line.startswith("warning: MLflow")]) == 1, err[-3000:]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "complete"
    assert (tmp_path / "run" / "report.md").is_file()


def test_without_mlflow_installed_the_flag_is_one_line(tmp_path):
    # find_spec answering None for mlflow stands in for a missing install
    code = (
        "import sys, importlib.util; sys.modules['mlflow'] = None; "
        "importlib.util.find_spec = (lambda f: (lambda n, *a: None if n == 'mlflow' else f(n, *a)))(importlib.util.find_spec); "
        "from keras_cases import cli, churn; sys.exit(cli.run(churn.main, ['--quick', '--mlflow']))"
    )
    proc = run_python(["-c", code], cwd=tmp_path)
    assert proc.returncode == 2 and "pip install 'keras-cases[mlflow]'" in proc.stderr, proc.stderr
    assert not (tmp_path / "runs").exists()


SEARCH = ["-m", "tuning.architecture", "--data", "digits", "--quick", "--max-trials", "3", "--budget", "5000"]


def test_tuning_search_is_one_run_with_a_nested_run_per_trial(tmp_path):
    out = tmp_path / "search"
    proc = check(run_python([*SEARCH, "--epochs", "2", "--directory", str(out), "--mlflow"], cwd=tmp_path))
    assert "MLflow: run" in proc.stdout and "warning" not in proc.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    exp = client.get_experiment_by_name("keras-cases-tuning-architecture")
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    metrics = json.loads((out / "metrics.json").read_text())
    assert parent.info.status == "FINISHED" and parent.data.tags["search"] == "architecture"
    assert parent.data.tags["backend"] == metrics["backend"] and parent.data.tags["seed"] == "0"
    p = parent.data.params
    assert (p["max_trials"], p["budget"], p["data"], p["algorithm"], p["epochs"]) == (
        "3",
        "5000",
        "digits",
        "random",
        "2",
    )
    for k in ("test_accuracy", "val_accuracy", "params", "trials", "completed", "rejected_over_budget"):
        assert parent.data.metrics[k] == pytest.approx(metrics[k], rel=1e-12), k
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {
        "trials.csv",
        "metrics.json",
        "report.md",
        "model.keras",
        "pareto.png",
        "best_hyperparameters.json",
    } <= artifacts

    trials = {t["trial_id"]: t for t in (json.loads(f.read_text()) for f in out.glob("keras_tuner/trial_*/trial.json"))}
    nested = {r.data.tags["trial_id"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert len(trials) == 3 and nested.keys() == trials.keys()
    frame = {line.split(",")[0]: line for line in (out / "trials.csv").read_text().splitlines()[1:]}
    done = [t for t in trials if trials[t]["status"] == "COMPLETED"]
    assert done and metrics["completed"] == len(done)
    for tid, t in trials.items():
        r = nested[tid]
        assert r.info.run_name == f"trial_{tid}" and r.data.tags["status"] == t["status"]
        assert r.data.params == {k: str(v) for k, v in t["hyperparameters"]["values"].items()}
        history = sorted(client.get_metric_history(r.info.run_id, "val_accuracy"), key=lambda m: m.step)
        if tid not in done:
            assert r.info.status == "FAILED" and not history and "over budget" in r.data.tags["note"]
            continue
        assert r.info.status == "FINISHED" and tid in frame
        assert [m.step for m in history] == list(range(1, int(r.data.metrics["epochs"]) + 1))
        assert max(m.value for m in history) == pytest.approx(t["score"]) == r.data.metrics["score"]
        assert {"loss", "accuracy", "val_loss", "params", "seconds"} <= set(r.data.metrics)


def test_tuning_search_with_tracking_down_is_one_warning_and_complete(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    proc = check(
        run_python(
            [*SEARCH, "--epochs", "1", "--max-trials", "2", "--directory", str(tmp_path / "s"), "--mlflow", dead],
            cwd=tmp_path,
        )
    )
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: MLflow")]
    assert len(warnings) == 1, proc.stderr[-3000:]
    assert json.loads((tmp_path / "s" / "metrics.json").read_text())["trials"] == 2
