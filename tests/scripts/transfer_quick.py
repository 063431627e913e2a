"""The transfer quick run of one backend, for tests/test_transfer.py: loaded by
_image_runs.run_everywhere's body (tests/scripts/image_predict.py) and called with `here`,
`out` and `extra`; on the "extra" backend also keras.applications checks (apps.json) and a
run on a folder of your own images (out/folder/)."""

import json

import keras
import numpy as np

from keras_cases.transfer import bases, case, training


def run(here, out, extra):
    # cwd is the output folder: no runs/representation, so the backbone is pretrained on the fly
    # (--backbone named: with ImageNet weights in ~/.keras/models, auto would take MobileNetV3)
    assert case.main(["--quick", "--backbone", "representation", "--out", str(here), "-v", "0"]) == 0
    if extra != "extra":
        return
    # keras.applications backbones (cheap to build on torch, not on JAX): block names, a
    # weights file, and ResNet50's RGB conversion
    size = {"include_top": False, "weights": None, "input_shape": (32, 32, 3)}
    nets = {
        "mobilenetv3small": keras.applications.MobileNetV3Small(**size),
        "efficientnetb0": keras.applications.EfficientNetB0(**size),
        "resnet50": keras.applications.ResNet50(**size),
    }
    res = {**mobilenet_checks(nets["mobilenetv3small"], out), **resnet_checks(nets["resnet50"], out)}
    res.update(gradcam_checks())
    res["n_blocks"] = {name: len(bases.blocks(net, bases.APPLICATIONS[name][2])) for name, net in nets.items()}
    (out / "apps.json").write_text(json.dumps(res))
    # your own images: an imbalanced folder of three colours, read at 24x24 (resized to 32)
    folder = ["--images", str(out / "colours"), "--image-size", "24", "--weights", "none"]
    stages = ["--epochs", "3", "--fine-tune-epochs", "1", "--batch-size", "8"]
    assert case.main([*folder, *stages, "--out", str(out / "folder"), "-v", "0"]) == 0


def mobilenet_checks(m, out) -> dict:
    """Its blocks, a weights file loaded into it, and what each --unfreeze-blocks trains."""
    res = {}
    pattern = bases.APPLICATIONS["mobilenetv3small"][2]
    groups = bases.blocks(m, pattern)
    res["mobilenet_blocks"] = [k for k, _ in groups]
    res["mobilenet_last_block"] = [layer.name for layer in groups[-1][1]]
    res["mobilenet_top_non_bn_params"] = int(
        sum(
            np.prod(w.shape)
            for layer in groups[-1][1]
            if type(layer).__name__ != "BatchNormalization"
            for w in layer.weights
        )
    )
    bases.init_random(m, 3)
    m.save_weights(out / "mobilenet.weights.h5")
    base, pre = bases.application("mobilenetv3small", str(out / "mobilenet.weights.h5"), 32, 0)
    res["mobilenet_file_weights_loaded"] = all(
        np.array_equal(a, b) for a, b in zip(m.get_weights(), base.get_weights())
    )
    model = training.build_model(base, pre, 32, 32, 10, 0)
    res["mobilenet_model_params"], res["mobilenet_base_params"] = int(model.count_params()), int(base.count_params())
    res["mobilenet_trainable"] = {
        u: (
            bases.set_stage(model, base, "fine-tuned", pattern, u),
            int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        )
        for u in (1, 2)
    }
    return res


def resnet_checks(r, out) -> dict:
    """ResNet50 with its first kernel's input channels reversed, on RGB minus the mean, is
    the original network on caffe-preprocessed (BGR) input."""
    bases.init_random(r, 4)
    r.save_weights(out / "resnet.weights.h5")
    base, pre = bases.application("resnet50", str(out / "resnet.weights.h5"), 32, 0)
    x = np.random.default_rng(5).integers(0, 256, (2, 32, 32, 3)).astype("float32")
    ours = base.predict(keras.ops.convert_to_numpy(pre[0](x)), verbose=0)
    ref = r.predict(keras.applications.resnet50.preprocess_input(x.copy()), verbose=0)
    return {"resnet_rgb_rel_diff": float(np.max(np.abs(ours - ref)) / (np.max(np.abs(ref)) + 1e-12))}


def gradcam_checks() -> dict:
    """Grad-CAM through a keras.applications backbone nested in the transfer model (MobileNetV3
    at 96x96, its default size here: a 3x3 last feature map), as ImagePredictor and the report
    compute it; random weights, two images."""
    from keras_cases.data.image_serving import cam_setup, gradcam

    base, pre = bases.application("mobilenetv3small", "none", 96, 0)
    setup = cam_setup(training.build_model(base, pre, 32, 96, 10, 0))
    x = np.random.default_rng(6).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    cam = gradcam(setup, x, [1, 2])
    return {
        "cam_method": setup[2],
        "cam_map": [int(v) for v in setup[0].get_layer(setup[1]).output.shape[1:3]],
        "cam_shape": list(cam.shape),
        "cam_range": [float(cam.min()), float(cam.max())],
        "cam_distinct": int(len(np.unique(np.round(cam, 4)))),
    }
