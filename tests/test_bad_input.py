"""Bad input, every command, one table: each row is a command line and its mistake.

Expected of every row: exit code 2, exactly one line on stderr that names the problem
(argparse's own usage errors keep their usage line above it), no traceback, and no file
written or changed anywhere under the row's temporary folder (the working directory is
inside it, so a stray runs/ folder counts). The rows live in tests/bad_input/*.py.

The commands run in this process (`main(argv)` through cli.run, as `python -m` does), so
the table costs one import of Keras instead of one per row; the backend choice, which
needs a fresh process, is checked in subprocesses at the end.
"""

import importlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from bad_input import common, images, services, tabular  # noqa: F401
from conftest import QUICK_CHURN, QUICK_SPAM, ROOT, run_python, shared_run

AREAS = [common, tabular, images, services]
ROWS = [r for a in AREAS for r in a.ROWS]
BUILDERS = {k: v for a in AREAS for k, v in a.BUILDERS.items()}


class Context:
    """What a builder gets: `tmp` (the row's folder, outside the working directory) and
    `run(case)`, a fresh copy of a finished --quick run of that case to break."""

    def __init__(self, tmp: Path, finished):
        self.tmp, self._finished = tmp, finished

    def run(self, case: str, name: str | None = None) -> Path:
        dst = self.tmp / (name or f"{case}_run")
        shutil.copytree(self._finished(case), dst)
        return dst


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """finished(case) -> a finished `--quick` run of that case on this process's backend, read
    only (the rows break copies): the session's shared run (conftest.shared_run), which
    test_churn.py and test_serve.py check too."""
    import keras

    return lambda case: shared_run(tmp_path_factory, FINISHED[case], keras.backend.backend())[0]


FINISHED = {"churn": QUICK_CHURN, "spam": QUICK_SPAM}


def snapshot(root: Path) -> dict:
    return {
        str(p.relative_to(root)): (p.is_dir() or p.stat().st_size, p.is_dir() or p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def invoke(command: str, argv: list[str]) -> int:
    from keras_cases import cli

    if command in ("keras_cases", "tuning", "benchmarks"):
        command += ".__main__"
    module = importlib.import_module(command)
    if not hasattr(module, "main"):  # a case package: keras_cases.<case>.case holds main
        module = importlib.import_module(command + ".case")
    try:
        return cli.run(module.main, argv)
    except SystemExit as e:  # argparse
        return e.code


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_one_line_and_exit_2(row, tmp_path, finished, monkeypatch, capsys):
    _, command, argv, expect = row
    ctx = Context(tmp_path, finished)
    args = []
    for a in argv:
        if a.startswith("{") and a.endswith("}"):
            a = str(BUILDERS[a[1:-1]](ctx))
        args.append(a)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    before = snapshot(tmp_path)
    rc = invoke(command, args)
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error:" in ln]
    assert rc == 2, f"exit {rc}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert len(errors) == 1, err
    if not errors[0].startswith("error:"):  # argparse: "usage: ..." lines, then "prog: error: ..."
        assert lines[0].startswith("usage:"), err
    else:
        assert lines == errors, f"more than the error line on stderr:\n{err}"
    assert expect.lower() in errors[0].lower(), errors[0]
    assert snapshot(tmp_path) == before, "a failed command wrote or changed files"


def test_table_covers_every_command():
    commands = {r[1] for r in ROWS}
    expected = {f"keras_cases.{c}" for c in common.CASES} | {
        "keras_cases",
        "tuning.churn",
        "tuning.architecture",
        "benchmarks",
    }
    assert expected <= commands, sorted(expected - commands)
    predicts = {r[1] for r in ROWS if r[2][:1] == ["predict"]}
    assert {"keras_cases.churn", "keras_cases.spam", "keras_cases.sentiment"} <= predicts
    subcommands = {r[2][0] for r in ROWS if r[1] == "keras_cases" and r[2]}
    from keras_cases.__main__ import COMMANDS

    assert set(COMMANDS) <= subcommands, sorted(set(COMMANDS) - subcommands)  # serve, runs, export, compress
    assert len(ROWS) >= 80, len(ROWS)


# --- backend choice: needs a fresh process with its own HOME ------------------------------
def _home_with_keras_json(tmp_path, backend):
    home = tmp_path / "home"
    (home / ".keras").mkdir(parents=True)
    (home / ".keras" / "keras.json").write_text(json.dumps({"backend": backend, "floatx": "float32"}))
    return home


def _env(home):
    return {"HOME": str(home), "KERAS_HOME": str(home / ".keras")}


def test_keras_json_backend_not_installed_falls_back_with_a_note(tmp_path):
    home = _home_with_keras_json(tmp_path, "no_such_backend_here")
    listing = run_python(["-m", "keras_cases"], **_env(home))
    assert listing.returncode == 0 and "churn" in listing.stdout, listing.stderr
    helped = run_python(["-m", "keras_cases.churn", "--help"], **_env(home))
    assert helped.returncode == 0 and "--csv" in helped.stdout, helped.stderr
    code = "import keras_cases.runtime as r, keras; print(keras.config.backend(), r.installed_backends()[0])"
    # a command line (not a library import) falls back with the note
    proc = run_python(
        ["-m", "keras_cases.churn", "predict", "--run", str(tmp_path / "none"), "--csv", "x"], **_env(home)
    )
    assert proc.returncode == 2 and "run directory not found" in proc.stderr
    assert "keras.json names backend 'no_such_backend_here'" in proc.stderr
    lib = run_python(["-c", code], **_env(home))
    used, first = lib.stdout.split()
    assert used == first


def test_explicit_backend_is_strict(tmp_path):
    from keras_cases.runtime import installed_backends

    home = _home_with_keras_json(tmp_path, installed_backends()[0])
    for env, argv in [({"KERAS_BACKEND": "nope"}, []), ({}, ["--backend", "nope"]), ({}, ["--backend=nope"])]:
        proc = run_python(["-m", "keras_cases.churn", "--quick", *argv], **_env(home), **env)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith(("error: unknown Keras backend", "usage:"))
        assert "Traceback" not in proc.stderr
    missing = [b for b in ("jax", "tensorflow", "torch") if b not in installed_backends()]
    if missing:  # a partial install: the explicit choice of a missing backend is refused
        proc = run_python(["-m", "keras_cases.churn", "--quick"], **_env(home), KERAS_BACKEND=missing[0])
        assert proc.returncode == 2 and "is not installed" in proc.stderr


def test_console_script_reads_backend_flag(tmp_path):
    """`keras-cases export --backend X` (the console script, not python -m) runs on X: each
    backend refuses the export format it cannot write, which only that backend would say."""
    import subprocess

    from keras_cases.runtime import installed_backends

    script = Path(sys.executable).parent / "keras-cases"
    assert script.exists(), "pip install -e . provides the keras-cases script"
    home = _home_with_keras_json(tmp_path, installed_backends()[0])
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"case": "churn", "status": "complete"}))
    (run / "metrics.json").write_text("{}")
    (run / "model.keras").write_bytes(b"not reached")
    env = {**os.environ, **_env(home), "PYTHONPATH": str(ROOT)}
    env.pop("KERAS_BACKEND", None)
    refusals = {
        "torch": ("saved_model", "needs the jax or tensorflow backend"),
        "jax": ("onnx", "runs on the torch backend"),
        "tensorflow": ("onnx", "runs on the torch backend"),
    }
    for b in installed_backends():
        fmt, said = refusals[b]
        proc = subprocess.run(
            [str(script), "export", "--run", str(run), "--format", fmt, "--backend", b],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 2 and said in proc.stderr, (b, proc.stderr)
    proc = subprocess.run(
        [str(script), "export", "--run", str(run), "--backend=nope"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "unknown Keras backend 'nope'" in proc.stderr, proc.stderr
