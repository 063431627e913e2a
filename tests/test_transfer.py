"""Transfer learning: parameter counts by hand, block grouping of keras.applications
(names, and real MobileNetV3 / ResNet50 backbones), one-line user errors, a folder of your
own images, the quick run on every backend (shared subprocess, see _image_runs.py) with a
frozen backbone that really does not change during the head stage, a model saved on one
backend predicting the same on another, the notebook."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from _image_runs import XLA_O0, run_everywhere, same_predictions_everywhere, write_colour_folder
from conftest import backends_under_test, check, execute_notebook, run_python

from keras_cases import backbones, cli, evaluation, runtime
from keras_cases.transfer import bases, case, training

SAVED = {"model.keras": (5, 32, 32, 3), "pretrained_backbone.keras": (5, 32, 32, 3)}
QUICK = str(Path(__file__).parent / "scripts" / "transfer_quick.py")  # run as a file in a subprocess
BODY = f"    import runpy\n    runpy.run_path({QUICK!r})['run'](here, out, extra)\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """<dir>/<backend>/: a quick run per backend and predictions across backends; on torch
    also <dir>/apps.json and <dir>/folder/ (a run on an image folder)."""
    out = tmp_path_factory.mktemp("transfer")
    write_colour_folder(out / "colours", {"red": 20, "blue": 6, "green": 10})
    bs = backends_under_test()
    return run_everywhere(out, BODY, SAVED, extra_backend="torch" if "torch" in bs else bs[-1])


def small_model(image_size=16, n_classes=3, seed=0):
    base = backbones.build_backbone((4, 8), size=16)
    runtime.init_weights(base, 11)
    return training.build_model(base, [], image_size, 16, n_classes, seed), base


def trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def test_parameter_counts_by_hand():
    # backbone (4, 8): (3x3x3x4 + 4x4) + (3x3x4x8 + 4x8) = 124 + 320; head 8 x 3 + 3
    model, base = small_model(image_size=24)  # a Resizing layer inside: no parameters
    assert model.count_params() == 444 + 27 == 471
    assert [layer.name for layer in model.layers][2:4] == ["resize", "rotation_backbone"]
    pattern = bases.REPRESENTATION_BLOCKS
    assert [k for k, _ in bases.blocks(base, pattern)] == ["block1", "block2"]
    assert bases.set_stage(model, base, "frozen", pattern, 1) == [] and trainable(model) == 27
    assert bases.set_stage(model, base, "fine-tuned", pattern, 1) == ["block2"]
    assert trainable(model) == 288 + 27  # block 2's kernel; its batch norm stays frozen
    assert bases.set_stage(model, base, "fine-tuned", pattern, 2) == ["block1", "block2"]
    assert trainable(model) == 108 + 288 + 27
    assert bases.set_stage(model, base, "fine-tuned", pattern, 0) == [] and trainable(model) == 27


# layer names of the keras.applications backbones (Keras 3), in order, abridged
APP_NAMES = {
    "mobilenetv3small": [
        "input_layer",
        "rescaling",
        "conv",
        "conv_bn",
        "activation",
        "expanded_conv_depthwise_pad",
        "expanded_conv_depthwise",
        "expanded_conv_squeeze_excite_conv",
        "expanded_conv_project",
        "expanded_conv_1_expand",
        "expanded_conv_1_project_bn",
        "re_lu_4",
        "multiply_1",
        "expanded_conv_10_expand",
        "expanded_conv_10_project",
        "conv_1",
        "conv_1_bn",
        "activation_17",
    ],
    "efficientnetb0": [
        "input_layer",
        "rescaling",
        "normalization",
        "stem_conv",
        "stem_bn",
        "block1a_dwconv",
        "block1a_project_bn",
        "block2a_expand_conv",
        "block2b_dwconv",
        "block7a_project_conv",
        "block7a_project_bn",
        "top_conv",
        "top_bn",
        "top_activation",
    ],
    "resnet50": [
        "input_layer",
        "conv1_pad",
        "conv1_conv",
        "conv1_bn",
        "pool1_pool",
        "conv2_block1_1_conv",
        "conv2_block1_0_conv",
        "conv2_block1_add",
        "conv2_block2_1_conv",
        "conv5_block3_3_conv",
        "conv5_block3_3_bn",
        "conv5_block3_out",
    ],
}
WEIGHTED = ("conv", "bn", "dwconv", "expand", "project", "normalization", "squeeze_excite_conv")


def test_blocks_of_keras_applications_by_name():
    expected = {
        "mobilenetv3small": ["stem", "expanded_conv", "expanded_conv_1", "expanded_conv_10"],
        "efficientnetb0": ["stem", "block1a", "block2a", "block2b", "block7a"],
        "resnet50": ["stem", "conv2_block1", "conv2_block2", "conv5_block3"],
    }
    for name, names in APP_NAMES.items():
        layers = [SimpleNamespace(name=n, weights=[1] if n.endswith(WEIGHTED) or "conv" in n else []) for n in names]
        groups = bases.blocks(SimpleNamespace(layers=layers), bases.APPLICATIONS[name][2])
        assert [k for k, _ in groups] == expected[name], name
        last = [layer.name for layer in groups[-1][1]]
        # the final 1x1 conv (MobileNetV3's conv_1, EfficientNet's top_conv) joins the last block
        assert {"mobilenetv3small": "conv_1", "efficientnetb0": "top_conv", "resnet50": "conv5_block3_out"}[
            name
        ] in last


def test_real_keras_applications_blocks_weight_files_and_resnet_rgb(runs):
    r = json.loads((runs / "apps.json").read_text())
    assert r["mobilenet_blocks"] == ["stem", "expanded_conv"] + [f"expanded_conv_{i}" for i in range(1, 11)]
    assert {"conv_1", "conv_1_bn"} <= set(r["mobilenet_last_block"])
    assert r["mobilenet_file_weights_loaded"]  # --weights PATH for a keras.applications backbone
    assert r["mobilenet_model_params"] == r["mobilenet_base_params"] + 576 * 10 + 10
    head = 576 * 10 + 10
    unfrozen, n = r["mobilenet_trainable"]["1"]
    assert unfrozen == ["expanded_conv_10"] and n == r["mobilenet_top_non_bn_params"] + head
    assert r["mobilenet_trainable"]["2"][0] == ["expanded_conv_9", "expanded_conv_10"]
    assert r["mobilenet_trainable"]["2"][1] > n
    assert r["resnet_rgb_rel_diff"] < 1e-4
    # Grad-CAM at a nested keras.applications backbone: its 3x3 last feature map (at 96x96),
    # upsampled to the 32x32 image, peak 1, not flat
    assert r["cam_method"] == "Grad-CAM at layer 'MobileNetV3Small' (the class logit, before the softmax)"
    assert r["cam_map"] == [3, 3] and r["cam_shape"] == [2, 32, 32] and r["cam_range"][1] == 1.0
    assert r["cam_distinct"] > 9
    # what --unfreeze-blocks is checked against before any data loads
    assert r["n_blocks"] == {name: spec[3] for name, spec in bases.APPLICATIONS.items()}


def test_class_weights_balance_the_classes():
    y = np.array([0] * 8 + [1] * 2)
    w = evaluation.class_weights(y, 2)
    assert w[0] == pytest.approx(10 / 16) and w[-1] == pytest.approx(10 / 4)
    assert w[y == 0].sum() == pytest.approx(w[y == 1].sum())


def test_user_mistakes_are_one_line_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_CASES_OFFLINE", "1")
    one = tmp_path / "one"
    write_colour_folder(one, {"red": 6})
    bad = tmp_path / "bad"
    write_colour_folder(bad, {"red": 6, "blue": 6})
    (bad / "blue" / "oops.png").write_text("a text file with an image extension")
    cases = [
        (["--backbone", "vgg99"], "unknown backbone 'vgg99'"),
        (
            ["--backbone", "mobilenetv3small", "--weights", "imagenet"],
            "ImageNet weights for mobilenetv3small are not in",
        ),
        (["--backbone", "resnet50"], "--weights PATH (a weights file), --weights none, or --backbone representation"),
        (["--weights", str(tmp_path / "missing.keras")], "missing.keras: no such file or directory"),
        (["--weights", str(tmp_path)], "holds no rotation_backbone.keras"),
        (["--images", str(tmp_path / "nowhere")], "image folder not found"),
        (["--images", str(one), "--weights", "none"], "at least 2"),
        (["--images", str(bad), "--weights", "none"], "oops.png is not a readable image"),
        (["--backbone", "representation", "--weights", "imagenet"], "has no ImageNet weights"),
        (["--fine-tune-lr-factor", "3"], "must be in (0, 1]"),
    ]
    for argv, message in cases:
        assert cli.run(case.main, argv + ["--out", str(tmp_path / "run")]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err, (argv, err)
    (tmp_path / "not_a_model.keras").write_text("nope")
    assert cli.run(case.main, ["--weights", str(tmp_path / "not_a_model.keras")]) == 2
    assert "is not a Keras model file" in capsys.readouterr().err


def chance_bar(n_test: int, n_classes: int, z: float = 4.0) -> float:
    """Accuracy a model that learned nothing stays below: chance on balanced classes plus z
    binomial standard errors of n_test guesses (z = 4: exceeded by luck with p < 1e-4)."""
    p = 1 / n_classes
    return p + z * (p * (1 - p) / n_test) ** 0.5


def test_own_imbalanced_image_folder(runs):
    out = runs / "folder"  # 20 red, 6 blue, 10 green PNGs of 20x14, read at 24x24
    m = json.loads((out / "metrics.json").read_text())
    # flat colours are easy: fine-tuned, at most one test image in eight wrong on average over the
    # 3 seeds; always answering the largest class (red) gets 4 of the 8 right
    assert m["n_test"] == 8 and m["seeds"] == 3
    assert m["fine_tuned_test_accuracy"] >= 7 / 8 and m["fine_tuned_macro_f1"] >= 0.8, m
    assert m["class_names"] == ["blue", "green", "red"] == json.loads((out / "classes.json").read_text())["class_names"]
    assert m["n_train"] + m["n_val"] + m["n_test"] == 36 and m["image_size"] == 24 and m["backbone_size"] == 32
    assert m["frozen_trainable_params"] == 128 * 3 + 3 and "random weights" in m["backbone_description"]
    assert {"frozen_f1_blue", "fine_tuned_f1_red", "fine_tuned_macro_f1"} <= set(m)
    report = (out / "report.md").read_text()
    assert "| blue |" in report and "(confusion_matrix.png)" in report


def test_quick_run_on_every_backend(backend, runs):
    d = runs / backend
    m = json.loads((d / "metrics.json").read_text())
    for k in ("backend", "keras_version", "dataset", "n_train", "n_test", "seconds", "seed"):
        assert k in m, k
    assert m["backend"] == backend and m["backbone"] == "representation" and m["n_train"] == m["n_test"] == 500
    assert "pretrained here on the fly" in m["backbone_description"]
    assert m["model_parameters"] == 93_920 + 128 * 10 + 10
    assert m["frozen_trainable_params"] == 1290 and m["fine_tuned_trainable_params"] == 9 * 64 * 128 + 1290
    # the head stage moved no backbone weight (batch-norm statistics included); fine-tuning
    # moved exactly the top block's kernel (its batch norm stays frozen)
    assert m["frozen_backbone_weights_changed"] == [] and m["backbone_weight_arrays"] == 3 * 5
    assert m["fine_tuned_backbone_weights_changed"] == ["block3_conv/kernel"]
    # both stages learn (the backbone pretrained on the fly is worth something): an untrained or
    # broken model stays at chance, 0.1 +- 0.013 on 500 test images
    for k in ("frozen_test_accuracy", "fine_tuned_test_accuracy"):
        assert m[k] > chance_bar(m["n_test"], 10), (k, m[k])
    assert m["fine_tuned_macro_f1"] > chance_bar(m["n_test"], 10), m["fine_tuned_macro_f1"]
    assert m["class_names"][0] == "airplane" and len(m["class_names"]) == 10
    for name in (
        "model.keras",
        "classes.json",
        "pretrained_backbone.keras",
        "history.csv",
        "report.md",
        "confusion_matrix.png",
        "learning_curves.png",
        "gradcam.png",
        "config.json",
    ):
        assert (d / name).is_file(), name
    h = pd.read_csv(d / "history.csv")
    assert set(h.model) == {"frozen", "fine-tuned"} and "val_accuracy" in h
    report = (d / "report.md").read_text()
    assert "## Per class" in report
    # Grad-CAM of the saved model at the backbone (4x4 last map) on right and wrong test images
    assert "## What the model looks at" in report and "](gradcam.png)" in report
    assert "Grad-CAM at layer 'rotation_backbone'" in report
    assert m["gradcam_shown_right"] == m["gradcam_shown_wrong"] == 8 and m["gradcam_feature_map"] == [4, 4]


def test_auto_weights_without_a_network_fall_back_with_a_note(tmp_path):
    """`--weights auto` where ImageNet weights cannot be had and KERAS_CASES_OFFLINE is not set:
    an empty KERAS_HOME, and every proxy pointing at a closed port, so the download fails at
    once. The run goes on with the offline backbone, prints one note, and records it."""
    (tmp_path / "keras_home").mkdir()
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused
    proxies = {k: closed for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}
    out = tmp_path / "run"
    proc = check(
        run_python(
            [
                "-m",
                "keras_cases.transfer",
                "--quick",
                "--per-class",
                "2",
                "--epochs",
                "1",
                "--fine-tune-epochs",
                "1",
                "--pretrain-epochs",
                "1",
                "--out",
                str(out),
                "-v",
                "0",
            ],
            backend=backends_under_test()[0],
            cwd=tmp_path,
            timeout=300,
            KERAS_HOME=tmp_path / "keras_home",
            KERAS_CASES_OFFLINE="0",
            no_proxy="",
            NO_PROXY="",
            XLA_FLAGS=XLA_O0,
            **proxies,
        )
    )
    notes = [line for line in proc.stdout.splitlines() if line.startswith("note: --weights auto")]
    assert len(notes) == 1, proc.stdout
    assert "ImageNet weights for mobilenetv3small could not be downloaded" in notes[0]
    assert "using the offline representation backbone instead" in notes[0]
    m = json.loads((out / "metrics.json").read_text())
    assert m["backbone"] == "representation" and m["weights_note"] == notes[0].removeprefix("note: ")
    assert m["weights"] == str(out / "pretrained_backbone.keras") and (out / "pretrained_backbone.keras").is_file()
    assert "pretrained here on the fly" in m["backbone_description"]
    assert not list((tmp_path / "keras_home").rglob("*.h5")), "no half-downloaded weights left behind"


def test_model_saved_on_one_backend_predicts_the_same_on_another(runs):
    n = len(backends_under_test())
    rows = same_predictions_everywhere(runs)
    assert len(rows) == 2 * n * (n - 1) // 2
    for a, b, name, diff, pred in rows:
        assert pred.std() > 1e-4, (name, "constant predictions prove nothing")
        assert diff < 1e-4, (a, b, name, diff)
        if name == "model.keras":
            np.testing.assert_allclose(pred.sum(1), 1, rtol=1e-5)  # class probabilities of raw pixels


def test_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", XLA_O0)  # the kernel compiles faster (JAX)
    _, out = execute_notebook("transfer.ipynb", tmp_path)
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_classes"] == 10 and "fine_tuned_macro_f1" in m and m["weights"] == "none"
    assert (out / "confusion_matrix.png").is_file() and (out / "classes.json").is_file()
