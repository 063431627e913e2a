"""Explaining image classifiers: ImagePredictor.explain (the explanation protocol's Grad-CAM
for served image runs) on every backend, on models built with set weights (no training)."""

import json
from pathlib import Path

import pytest
from _image_runs import XLA_O0
from conftest import check, run_python

CHECKS = str(Path(__file__).parent / "scripts" / "image_explain_checks.py")  # run as a file in a subprocess


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    cache = {}

    def get(backend):
        if backend not in cache:
            out = tmp_path_factory.mktemp(f"explain_{backend}")
            proc = check(run_python([CHECKS, str(out)], backend=backend, XLA_FLAGS=XLA_O0))  # JAX compiles faster
            cache[backend] = json.loads(proc.stdout.splitlines()[-1])
        return cache[backend]

    return get


def test_predictor_explains_where_the_predicted_class_looks(backend, explained):
    c = explained(backend)
    # 64x48 images: the heatmap is averaged over 2x2 blocks to 32x24 (at most 32 a side)
    assert c["shape"] == [[32, 24], [32, 24]] and c["range"] == [0.0, 1.0] and c["finite"]
    # image 0 has a red square top left (class red) and a smaller blue one bottom right: the map
    # of the predicted class ignores the blue one; image 1 is blue only
    assert c["classes"] == c["targets"] == ["red", "blue"] and c["predictions_match"]
    assert c["top_left_mass"] > 0.9 and c["bottom_right_mass"] > 0.9
    assert c["items"] == [[], []] and "Grad-CAM at layer 'conv'" in c["method"] and "logit" in c["method"]


def test_where_grad_cam_looks_and_models_it_cannot_explain(backend, explained):
    c = explained(backend)
    assert c["no_conv_error"].endswith("has no convolution to explain: Grad-CAM needs a convolutional layer")
    assert c["bad_instance_error"].startswith("instances.0.image: not base64")
    assert c["cifar_layer"] == "block3_gelu2"  # the last conv block's activation, before the global pool
    # transfer: the nested backbone's output (its last feature map), explained through the predictor
    assert c["transfer_layer"] == "rotation_backbone" and "'rotation_backbone'" in c["transfer_method"]
    assert c["transfer_shape"] == [24, 24]


def test_filter_grid_and_feature_maps_have_a_panel_each(tmp_path):
    """plots.conv_filters / plots.feature_maps on architecture CNNs (2-D: 8x8 digits, two blocks;
    1-D: MNIST-1D's 40 steps, three blocks; the cifar network's in the next test); a model
    without a convolution is refused in one sentence."""
    import keras
    import numpy as np

    from keras_cases import UserError, plots
    from keras_cases.architecture.models import build_model
    from keras_cases.architecture.sizes import Spec

    def pools(m):
        return [la.name for la in m.layers if isinstance(la, (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D))]

    cnn2 = build_model(Spec("cnn", (6,)), (8, 8), 10)  # 6 channels: fewer than the 8 shown per block
    assert plots.conv_filters(cnn2, tmp_path / "f2.png") == 6
    assert plots.feature_maps(cnn2, np.ones((8, 8), "float32"), pools(cnn2), tmp_path / "m2.png") == 1 + 2 * 6
    cnn1 = build_model(Spec("cnn", (5,)), (40,), 10)
    assert len(pools(cnn1)) == 3 and plots.conv_filters(cnn1, tmp_path / "f1.png") == 5
    assert plots.feature_maps(cnn1, np.ones(40, "float32"), pools(cnn1), tmp_path / "m1.png") == 1 + 3
    assert plots.conv_filters(cnn1, tmp_path / "f1.png", limit=3) == 3
    for name in ("f2", "m2", "f1", "m1"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000, name
    mlp = build_model(Spec("mlp", (4,)), (8, 8), 10)
    with pytest.raises(UserError, match="has no convolution layer: it has no filters to show"):
        plots.conv_filters(mlp, tmp_path / "no.png")
    with pytest.raises(UserError, match="no convolution blocks"):
        plots.feature_maps(mlp, np.ones((8, 8)), pools(mlp), tmp_path / "no.png")
    assert not (tmp_path / "no.png").exists()


def test_cifar_report_section_explains_the_recipe(tmp_path):
    """The recipe study's "What the network looks at" (cifar/recipe.explain_recipe) on an untrained
    quick-size network and 60 test images, half of them labelled with another class than the one
    predicted: the section lists its three figures, the Grad-CAM figure shows the first right answer
    of each predicted class and 8 mistakes, over a 3x3 feature map. (The quick run of
    test_cifar.py writes the same section.)"""
    from types import SimpleNamespace

    import numpy as np

    from keras_cases import runtime
    from keras_cases.cifar import Recipe, build_model
    from keras_cases.cifar.recipe import explain_recipe

    r = Recipe(widths=(8, 16, 32))
    net = build_model(r)
    runtime.init_weights(net, 0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)
    pred = net.predict(x, batch_size=1000, verbose=0).argmax(1)
    y = pred.copy()
    y[1::2] = (pred[1::2] + 1) % 10  # half right, half wrong
    names = [f"c{i}" for i in range(10)]
    d = SimpleNamespace(x_test=x, y_test=y, class_names=names)
    run = SimpleNamespace(path=lambda name: tmp_path / name)
    metrics = {}
    text = explain_recipe(run, net, d, r, metrics)
    for png in ("gradcam.png", "filters.png", "feature_maps.png"):
        assert f"]({png})" in text and (tmp_path / png).stat().st_size > 1000, png
    assert "### What the network looks at" in text and "Grad-CAM at layer 'block3_gelu2'" in text
    assert metrics["gradcam_shown_wrong"] == 8 and metrics["gradcam_sample"] == 60
    assert metrics["gradcam_shown_right"] == min(8, len(set(pred[::2])))
    assert metrics["gradcam_feature_map"] == [3, 3] and metrics["gradcam_centre_area"] == 0.25
