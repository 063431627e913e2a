"""`--tensorboard` mechanics (the churn tests check a real run's logs on every backend)."""

import pytest
from conftest import tensorboard_scalars as scalars

from keras_cases import UserError, callbacks


def test_scalar_logger_for_hand_written_loops(tmp_path):
    callbacks.log_tensorboard_to(tmp_path)
    try:
        log = callbacks.scalar_logger("gan")
        for step in range(3):
            log(step, {"d_loss": 0.5 + step, "g_loss": 2.0 - step})
        assert callbacks.tensorboard("a model")[0].log_dir == str(tmp_path / "a_model")
    finally:
        callbacks.log_tensorboard_to(None)
    got = scalars(tmp_path / "gan")
    assert got["d_loss"] == pytest.approx([0.5, 1.5, 2.5])
    assert got["g_loss"] == pytest.approx([2.0, 1.0, 0.0])
    assert callbacks.tensorboard("off") == []
    assert callbacks.scalar_logger("off")(0, {"x": 1.0}) is None


def test_missing_tensorboard_is_one_line(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "tensorboard" else real(n, *a))
    with pytest.raises(UserError, match="pip install 'keras-cases\\[tensorboard\\]'"):
        callbacks.log_tensorboard_to(tmp_path)
