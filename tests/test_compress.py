"""`python -m keras_cases compress`: int8, prune and distill of a saved spam run, on every
backend. The teacher is one quick spam run (conv1d, a 2,000-token vocabulary) made once
for the module on the first backend under test; each backend compresses it in a
subprocess (tests/scripts/compress_check.py), loads the result the way `serve` does, and
reports what is checked here."""

import json
from pathlib import Path

import pytest
from _image_runs import XLA_O0
from conftest import backends_under_test, check, run_python

CHECK = str(Path(__file__).parent / "scripts" / "compress_check.py")
SPAM_RATE = 0.134  # share of spam in the collection: the PR-AUC of a model that has learnt nothing


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("compress") / "spam_teacher"
    argv = ["-m", "keras_cases.spam", "--quick", "--model", "conv1d", "--max-tokens", "2000", "-v", "0"]
    check(run_python([*argv, "--out", str(out)], backend=backends_under_test()[0], XLA_FLAGS=XLA_O0))
    return out


def compress(teacher, out, backend, method, *flags) -> dict:
    proc = check(run_python([CHECK, str(teacher), str(out), method, *flags], backend=backend, XLA_FLAGS=XLA_O0))
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    found = json.loads(line[len("RESULT ") :])
    # a run of the same case, with its provenance, that serve's loader reads and predicts with
    assert found["case"] == "spam" and found["config_method"] == method
    assert Path(found["config_teacher"]) == teacher
    assert set(found["predicted"]) <= set(found["labels"]) and len(found["predicted"]) == 2
    return found


def test_int8_kernels_are_int8_and_predictions_agree(teacher, tmp_path, backend):
    found = compress(teacher, tmp_path / "int8", backend, "int8")
    dtypes = found["kernel_dtypes"]
    assert dtypes["embedding/embeddings"] == "int8" and dtypes["score/kernel"] == "int8", dtypes
    assert dtypes["conv_1/kernel"] == "float32"  # Keras has no int8 Conv1D: left in float, and said so
    # int8 weights move a probability by a little; a wrong scale or a dropped layer moves it by a lot
    assert found["max_abs_diff"] < 0.05, found
    assert found["same_label"] >= 0.99 and found["agreement"] >= 0.99, found
    assert found["pr_auc"] > 0.8


def test_prune_keeps_the_target_zeros_after_fine_tuning(teacher, tmp_path, backend):
    found = compress(
        teacher, tmp_path / "prune", backend, "prune", "--sparsity", "0.7", "--epochs", "1", "--rounds", "1"
    )
    zeros = found["zero_fraction"]
    assert set(zeros) == {"embedding/embeddings", "conv_1/kernel", "score/kernel"}, zeros
    # fine-tuning moved every other weight; the mask kept these at exactly zero
    assert all(abs(z - 0.7) < 0.005 for z in zeros.values()), zeros
    assert found["pr_auc"] > SPAM_RATE + 0.5, found


def test_distill_student_is_smaller_and_learns(teacher, tmp_path, backend):
    found = compress(teacher, tmp_path / "distill", backend, "distill", "--epochs", "2", "--temperature", "2")
    assert found["params"] <= found["teacher_params"] // 4, found
    assert found["pr_auc"] > SPAM_RATE + 0.5, found
