"""`--distribute data-parallel`: keras.distribution.DataParallel on JAX, tested on 4 simulated
CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=4) against a one-device run:
same losses and predictions, every variable replicated, batches split along the batch axis,
partial batches (not divisible by 4) kept rather than dropped; a clear one-line error on
TensorFlow / PyTorch and for a batch size the devices cannot split."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import backends_under_test, check, run_python

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


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("distribute")
    res = {}
    for name, n, flags in (("one", 1, []), ("four", 4, ["--distribute", "data-parallel"])):
        path = out / f"{name}.json"
        check(run_python([TRAIN, str(path), "--seed", "3", *flags], backend="jax", timeout=300, **xla(n)))
        res[name] = json.loads(path.read_text())
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


@pytest.mark.parametrize("other", [b for b in backends_under_test() if b != "jax"])
def test_other_backends_refuse_with_one_line(other):
    p = run_python(["-m", "keras_cases.churn", "--quick", "--distribute", "data-parallel"], backend=other, timeout=300)
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
