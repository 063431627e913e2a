"""keras_cases.explain on every backend: known answers on a linear model, integrated gradients'
completeness (and its error falling as steps grow), SmoothGrad without noise is the gradient,
Grad-CAM finds the quadrant a model was built to look at, and the same weights give the same
attributions on every backend."""

import json

import numpy as np
import pytest
from conftest import ROOT, backends_under_test, check, run_python


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    out = {}
    for b in backends_under_test():
        path = tmp_path_factory.mktemp("explain") / f"{b}.npz"
        proc = check(run_python([str(ROOT / "tests" / "scripts" / "explain_checks.py"), str(path)], backend=b))
        out[b] = (json.loads(proc.stdout.strip().splitlines()[-1]), np.load(path))
    return out


def test_explanations_hold_on_every_backend(backend, explained):
    c, _ = explained[backend]
    assert c["linear_grad_err"] < 1e-6 and c["linear_ig_err"] < 1e-5  # gradient = w, IG = w (x - 0)
    assert c["smooth_completeness_rel"] < 1e-4  # a smooth net: Gauss-Legendre is near exact
    errs = c["cnn_completeness_rel"]
    assert errs["default"] < 0.01  # the bar: within 1% at the default step count
    assert errs["2"] > errs["8"] > errs["32"] > errs["128"]  # and it falls as steps grow
    assert errs["2"] > 0.05  # the ReLU net is not trivially linear along the path
    assert c["smoothgrad_zero_err"] == 0.0
    assert c["smoothgrad_tiny_err"] < 1e-3 * max(c["grad_scale"], 1e-3) * 10
    assert c["cam_shape"] == [2, 16, 16] and c["cam_range"] == [0.0, 1.0]
    assert c["cam_top_left"] > 0.9 and c["cam_bottom_right"] > 0.9
    assert c["cnn_cam_shape"] == [6, 12, 12]


def test_same_weights_same_attributions_across_backends(explained):
    """float32 on CPU: the backends sum in different orders, so agreement to 1e-4 of the largest
    attribution (relative), not bit-for-bit. The ReLU CNN's integrated gradients are held to
    the same 1e-4 as a whole (relative norm of the difference): along the path a pre-activation
    within rounding of 0 may switch its ReLU on one backend and not on another, which moves the
    few pixels under that unit by a step of the path (seen: 1 of 1,728 elements, by 1.3e-4 of
    the largest, on one CPU), while a wrong backend would differ everywhere."""
    if len(explained) < 2:
        pytest.skip("one backend installed")
    ref_name, (_, ref) = next(iter(explained.items()))
    for name, (_, arrays) in explained.items():
        for key in ("ig", "grad", "cam"):
            scale = float(np.abs(ref[key]).max())
            np.testing.assert_allclose(
                arrays[key], ref[key], atol=1e-4 * scale, rtol=0, err_msg=f"{name} vs {ref_name}: {key}"
            )
        diff = np.linalg.norm(arrays["cnn_ig"] - ref["cnn_ig"]) / np.linalg.norm(ref["cnn_ig"])
        assert diff < 1e-4, f"{name} vs {ref_name}: cnn_ig differs by {diff:.2e} of its norm"
