"""`--distribute data-parallel`: keras.distribution.DataParallel on JAX, tested on 4 simulated
CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=4) against a one-device run:
same losses and predictions, every variable replicated, batches split along the batch axis,
partial batches (not divisible by 4) kept rather than dropped; a clear one-line error on
TensorFlow / PyTorch and for a batch size the devices cannot split. Then the same over two
JAX processes of 2 CPU devices each (keras.distribution.initialize, coordinated on
127.0.0.1, gloo all-reduces): the same weights as one process with 4 devices, the partial
batches included, and only process 0 writes the run directory."""

import argparse
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, backends_under_test, check, run_python, subprocess_env

# A small functional model with batch norm and dropout (both must behave as on one device:
# batch statistics over the global batch, dropout masks independent of the sharding),
# trained through the shared CLI parser (which applies --distribute) on the project's
# NumPy-shuffled PyDataset. 102 rows in batches of 16: six full batches and a last one of
# 6 rows that 4 devices cannot split; validation 30 rows -> 16 + 14; predict 37 rows.
TRAIN = str(Path(__file__).parent / "scripts" / "distribute_train.py")  # run as a file in a subprocess


def python_stderr(text):
    """stderr without TensorFlow's native (absl) log lines, which TF_CPP_MIN_LOG_LEVEL does
    not silence before absl is initialised: what is left is what Python printed."""
    native = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IWEF]\d{4} )")
    return [line for line in text.strip().splitlines() if not native.match(line)]


def xla(n):
    return {"XLA_FLAGS": f"--xla_force_host_platform_device_count={n}", "JAX_PLATFORMS": "cpu"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A hung collective (a process that died, a port taken) must fail the test, not hang CI: the
# processes still running this many seconds after the start are killed (each takes ~10 s of
# CPU; minutes of wall time were seen only on a 2-core machine at load average 30).
TIMEOUT = 300


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """All four trainings at once: one device; one process x 4 devices; two processes x 2
    devices (both given the same --out, as on a shared file system)."""
    out = tmp_path_factory.mktemp("distribute")
    dp = ["--distribute", "data-parallel"]
    cluster = ["--num-processes", "2", "--coordinator", f"127.0.0.1:{free_port()}"]
    jobs = {
        "one": ([], 1, "one"),
        "four": (dp, 4, "four"),
        "two-0": ([*dp, *cluster, "--process-id", "0"], 2, "two"),
        "two-1": ([*dp, *cluster, "--process-id", "1"], 2, "two"),
    }
    logs = {name: (open(out / f"{name}.out", "w+"), open(out / f"{name}.err", "w+")) for name in jobs}
    procs = {  # output to files, not pipes: a full pipe would stall a process mid-collective
        name: subprocess.Popen(
            [sys.executable, TRAIN, "--seed", "3", "--out", str(out / d), *flags],
            env=subprocess_env("jax", **xla(n)),
            cwd=ROOT,
            stdout=logs[name][0],
            stderr=logs[name][1],
            text=True,
        )
        for name, (flags, n, d) in jobs.items()
    }
    res, deadline = {"out": out}, time.monotonic() + TIMEOUT
    try:
        for name, p in procs.items():
            try:
                p.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name} still running after {TIMEOUT} s (a hung collective?)")
            stdout, stderr = ((f.seek(0), f.read())[1] for f in logs[name])
            check(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
            res[name] = dict(
                line.split(": ", 1) for line in stdout.splitlines() if line.startswith(("run-", "weights-"))
            )
    finally:
        for p in procs.values():
            p.kill()
        for f in (f for pair in logs.values() for f in pair):
            f.close()
    for d in ("one", "four", "two"):
        res[d] = json.loads((out / d / "result.json").read_text())
    return res


def test_four_simulated_devices_are_used_and_reported(runs):
    assert runs["four"]["devices"] == 4
    assert (runs["four"]["distribution"], runs["four"]["distribution_devices"]) == ("data-parallel", 4)
    assert (runs["one"]["devices"], runs["one"]["distribution"], runs["one"]["distribution_devices"]) == (1, "none", 1)


def test_same_losses_and_predictions_as_one_device(runs):
    # Data parallelism changes only the order of float32 sums (per-device partial sums,
    # then an all-reduce): measured 1.2e-7 relative on the losses and 1.5e-7 on the
    # predictions after 21 Adam steps. rtol 1e-4 leaves room for that to compound on other
    # CPUs yet fails on any real difference: dropping the 6-row partial batch moves these
    # losses by 15%, merely changing batch norm's epsilon from 1e-3 to 2e-3 by 0.3%.
    one, four = runs["one"], runs["four"]
    assert len(four["loss"]) == 3
    assert four["loss"][-1] < four["loss"][0]  # it trained
    np.testing.assert_allclose(four["loss"], one["loss"], rtol=1e-4)
    np.testing.assert_allclose(four["val_loss"], one["val_loss"], rtol=1e-4)
    np.testing.assert_allclose(four["pred"], one["pred"], rtol=1e-4, atol=1e-6)
    assert len(four["pred"]) == 37  # the 37 % 4 remainder was predicted, not dropped


def test_every_variable_replicated_on_every_device(runs):
    four = runs["four"]
    assert four["n_variables"] > 10  # model weights, BN statistics, Adam slots
    assert four["replicated"] == four["n_variables"]
    assert four["on_all_devices"] == four["n_variables"]


def test_batches_split_along_the_batch_axis_partial_ones_replicated(runs):
    seen = runs["four"]["inputs"]
    assert seen["16"] == [False, [4, 6]]  # a full batch: 4 rows of 16 on each device
    # the last training batch (6 rows), the validation remainder (14), the predict remainder
    # (37 = 2 x 16 + 5): not divisible by 4, so each device computes the whole small batch
    for rows in ("6", "14", "5"):
        assert seen[rows] == [True, [int(rows), 6]], rows
    assert all(v[0] for v in runs["one"]["inputs"].values())


def test_two_processes_train_the_same_weights_as_one_process_with_four_devices(runs):
    # The same global program on the same 4-device mesh: only the all-reduce differs (gloo
    # across the processes instead of in-process), which changes nothing but the order of
    # float32 sums. Measured after 21 Adam steps: weights differ by at most 6e-8 (absolute,
    # |w| up to 1.2), losses by 8e-8 relative, predictions by 1e-7. rtol 1e-5 / atol 1e-6
    # leaves room for that, yet any real difference fails. Measured by breaking the input
    # step on purpose: each process handing its whole batch over as its share (a 32-row
    # global batch, Keras' per-process convention) moves the weights by up to 0.07, both
    # processes feeding the same half of the batch by 0.16, dropping the partial batches by 0.06.
    four, two = runs["four"], runs["two"]
    assert (two["processes"], two["distribution_processes"], two["devices"]) == (2, 2, 4)
    assert (four["processes"], four["distribution_processes"]) == (1, 1)
    assert two["loss"][-1] < two["loss"][0]  # it trained
    assert len(two["weights"]) == len(four["weights"]) > 4
    for w2, w4 in zip(two["weights"], four["weights"]):
        np.testing.assert_allclose(w2, w4, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(two["loss"], four["loss"], rtol=1e-5)
    np.testing.assert_allclose(two["val_loss"], four["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(two["pred"], four["pred"], rtol=1e-5, atol=1e-7)
    assert len(two["pred"]) == 37  # every process' predict returns all rows, remainder too
    # each device got 4 rows of a 16-row global batch; the 6-, 14- and 5-row remainders
    # (not divisible by 4 devices) ran replicated, as in one process
    assert two["inputs"] == four["inputs"]
    assert two["replicated"] == two["on_all_devices"] == two["n_variables"]
    # the replicas in the two processes hold bit-identical weights
    assert runs["two-0"]["weights-sha256"] == runs["two-1"]["weights-sha256"]


def test_only_process_zero_writes_the_run_directory(runs):
    out = runs["out"] / "two"
    assert sorted(p.name for p in out.iterdir()) == ["result.json", "run.json"]
    assert runs["two"]["process_id"] == 0
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete" and record["argv"][-2:] == ["--process-id", "0"]
    assert Path(runs["two-0"]["run-dir"]) == out
    scratch = Path(runs["two-1"]["run-dir"])  # process 1 wrote into a scratch folder...
    assert scratch != out and not scratch.exists()  # ...removed when its run ended


def test_process_settings_also_come_from_the_variables_keras_reads(monkeypatch):
    from keras_cases import UserError, cli

    ns = argparse.Namespace(distribute="data-parallel", coordinator=None, num_processes=None, process_id=None)
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "10.0.0.1:1234,10.0.0.2:1234")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "1")
    assert cli.processes(ns) == ("10.0.0.1:1234,10.0.0.2:1234", 2, 1)
    ns.process_id = 0  # a flag wins over the variable
    assert cli.processes(ns) == ("10.0.0.1:1234,10.0.0.2:1234", 2, 0)
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "two")
    with pytest.raises(UserError, match=r"^\$KERAS_DISTRIBUTION_NUM_PROCESSES='two': expected an integer"):
        cli.processes(ns)
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "3")
    with pytest.raises(UserError, match="lists 2 addresses for 3 processes"):
        cli.processes(ns)
    for name in (
        "KERAS_DISTRIBUTION_JOB_ADDRESSES",
        "KERAS_DISTRIBUTION_NUM_PROCESSES",
        "KERAS_DISTRIBUTION_PROCESS_ID",
    ):
        monkeypatch.delenv(name)
    assert cli.processes(
        argparse.Namespace(distribute="none", coordinator=None, num_processes=None, process_id=None)
    ) == (None, 1, 0)


MULTI = ["--num-processes", "2", "--process-id", "0", "--coordinator", "127.0.0.1:9"]


@pytest.mark.parametrize("cluster", [[], MULTI], ids=["one-process", "two-processes"])
@pytest.mark.parametrize("other", [b for b in backends_under_test() if b != "jax"])
def test_other_backends_refuse_with_one_line(other, cluster):
    argv = ["-m", "keras_cases.churn", "--quick", "--distribute", "data-parallel", *cluster]
    p = run_python(argv, backend=other, timeout=300)
    assert p.returncode == 2, p.stderr[-2000:]
    lines = python_stderr(p.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "JAX" in lines[0], p.stderr[-2000:]
    assert "Traceback" not in p.stderr


def test_batch_size_the_devices_cannot_split_is_refused():
    p = run_python(
        ["-m", "keras_cases.churn", "--quick", "--distribute", "data-parallel", "--batch-size", "6"],
        backend="jax",
        timeout=300,
        **xla(4),
    )
    assert p.returncode == 2, p.stderr[-2000:]
    lines = python_stderr(p.stderr)
    assert lines == [
        "error: --batch-size 6 does not split evenly over 4 devices "
        "(--distribute data-parallel): use a multiple of 4, e.g. 4"
    ], p.stderr[-2000:]
