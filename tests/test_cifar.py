"""The CIFAR-10 recipe: whitening, exact parameter counts, a frozen first layer, NumPy
augmentation, budget planning helpers, a quick run per backend that writes every artifact,
a saved model predicting the same on every backend, and serving it with an image upload."""

import base64
import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import backends_under_test, check, execute_notebook, run_python, shared_run
from test_serve import start

from keras_cases.data import images

SCRIPTS = Path(__file__).parent / "scripts"  # run as files in subprocesses
FROZEN = str(SCRIPTS / "cifar_frozen_whitening.py")
PREDICT = str(SCRIPTS / "saved_model_predictions.py")


def chance_bar(n_test: int, n_classes: int, z: float = 4.0) -> float:
    """Accuracy a model that learned nothing stays below: chance on balanced classes plus z
    binomial standard errors of n_test guesses (z = 4: exceeded by luck with p < 1e-4)."""
    p = 1 / n_classes
    return p + z * (p * (1 - p) / n_test) ** 0.5


def test_whitening_filters_whiten_the_patches():
    from keras_cases.cifar import whitening_filters

    rng = np.random.default_rng(0)
    base = rng.normal(size=(400, 9, 9, 1)) * np.array([60.0, 20.0, 5.0])  # correlated channels
    x = np.clip(128 + base + rng.normal(size=(400, 9, 9, 3)) * 4, 0, 255).astype(np.uint8)
    k, b = whitening_filters(x, eps=0.0, n=400)
    assert k.shape == (2, 2, 3, 24) and b.shape == (24,)
    xs = x.astype("float64") / 255
    patches = np.stack([xs[:, i : i + 8, j : j + 8] for i in range(2) for j in range(2)], axis=3).reshape(-1, 12)
    out = patches @ k.reshape(12, 24).astype("float64") + b
    assert np.allclose(out.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(np.cov(out[:, :12], rowvar=False), np.eye(12), atol=2e-3)
    np.testing.assert_allclose(out[:, 12:], -out[:, :12], atol=1e-4)  # both signs


def conv_bn(cin, cout):
    return 9 * cin * cout + 4 * cout  # conv without bias; BN gamma, beta, mean, variance


def test_parameter_counts_are_exact():
    from keras_cases.cifar import Recipe, build_model

    m = build_model(Recipe(widths=(8, 16, 32)))
    whiten = 2 * 2 * 3 * 24 + 24
    blocks = conv_bn(24, 8) + conv_bn(8, 8) + conv_bn(8, 16) + conv_bn(16, 16) + conv_bn(16, 32) + conv_bn(32, 32)
    dense = 32 * 10 + 10
    assert m.count_params() == whiten + blocks + dense
    bn_stats = 2 * 2 * (8 + 16 + 32)
    trainable = sum(int(np.prod(v.shape)) for v in m.trainable_weights)
    assert trainable == blocks + dense - bn_stats  # the whitening layer is fixed
    no_bn = build_model(Recipe(widths=(8, 16, 32), batchnorm=False, whiten=False))
    assert (
        no_bn.count_params()
        == whiten + sum(9 * a * b + b for a, b in [(24, 8), (8, 8), (8, 16), (16, 16), (16, 32), (32, 32)]) + dense
    )


def test_flip_crop_is_a_flipped_shifted_window():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(64, 8, 8, 3), dtype=np.uint8)
    out = images.flip_crop(x, np.random.default_rng(1), pad=2)
    assert out.shape == x.shape and out.dtype == np.uint8
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    flipped = np.pad(x[:, :, ::-1], ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    n_flipped = 0
    for i in range(len(x)):
        windows = {
            (dy, dx, f)
            for dy in range(5)
            for dx in range(5)
            for f, src in ((0, padded), (1, flipped))
            if np.array_equal(src[i, dy : dy + 8, dx : dx + 8], out[i])
        }
        assert windows, i
        n_flipped += min(f for _, _, f in windows)
    assert 15 < n_flipped < 49  # about half are mirrored
    np.testing.assert_array_equal(images.flip_crop(x, np.random.default_rng(1), pad=0, flip=False), x)
    a = images.augmented_batches(x, np.arange(64), 16, seed=3)
    b = images.augmented_batches(x, np.arange(64), 16, seed=3)
    np.testing.assert_array_equal(a[1][0], b[1][0])


def test_time_to_level_and_bad_widths():
    from keras_cases import UserError
    from keras_cases.cifar import parse_widths, time_to

    h = {"val_accuracy": [0.5, 0.81, 0.79, 0.86], "wall_seconds": [10, 20, 30, 40]}
    assert (time_to(h, 0.8), time_to(h, 0.85), time_to(h, 0.9)) == (20.0, 40.0, None)
    assert parse_widths("16,32,64") == (16, 32, 64)
    with pytest.raises(UserError):
        parse_widths("16,x")


def test_studies_flag_all_and_the_earlier_study_flag():
    from keras_cases import UserError
    from keras_cases.cifar.case import make_parser, parse_studies

    for argv, want in (
        ([], ["recipe"]),
        (["--studies", "all"], ["recipe", "ablation"]),
        (["--studies", "ablation,recipe"], ["recipe", "ablation"]),
        (["--studies", "ablation"], ["ablation"]),
        (["--study", "both"], ["recipe", "ablation"]),
        (["--study", "ablation"], ["ablation"]),
    ):
        assert parse_studies(make_parser().parse_args(argv).studies) == want, argv
    with pytest.raises(UserError, match="unknown study 'everything'"):
        parse_studies("everything")


def test_min_image_size_is_where_the_feature_map_ends():
    from keras_cases.cifar import Recipe, build_model, min_image_size

    for widths in ((8,), (8, 8), (8, 16, 32)):
        r = Recipe(widths=widths)
        side = min_image_size(r)
        last = f"block{len(widths)}_pool"
        assert build_model(r, (side, side, 3)).get_layer(last).output.shape[1:3] == (1, 1), widths
        try:
            shrunk = build_model(r, (side - 1, side - 1, 3)).get_layer(last).output.shape[1]
        except ValueError:  # some backends refuse an empty feature map outright
            shrunk = 0
        assert shrunk == 0, widths
    assert min_image_size(Recipe()) == 9  # 32x32 CIFAR fits, 8x8 digits do not


def test_frozen_whitening_layer_does_not_train():
    proc = check(run_python([FROZEN]))
    assert proc.stdout.strip().endswith("ok")


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """{backend: (run dir, stdout)} of `cifar --quick`: the same runs test_resume.py compares a
    stopped-and-resumed run with, made once per test session (conftest.shared_run)."""
    quick = ["-m", "keras_cases.cifar", "--quick", "-v", "0"]
    return {b: shared_run(tmp_path_factory, quick, b) for b in backends_under_test()}


def test_quick_run_writes_every_artifact(quick_runs):
    for b, (out, stdout) in quick_runs.items():
        for name in (
            "metrics.json",
            "history.csv",
            "model.keras",
            "report.md",
            "accuracy.png",
            "confusion.png",
            "test_examples.png",
            "gradcam.png",
            "filters.png",
            "feature_maps.png",
        ):
            assert (out / name).is_file() and (out / name).stat().st_size > 0, (b, name)
        m = json.loads((out / "metrics.json").read_text())
        for k in (
            "backend",
            "keras_version",
            "dataset",
            "n_train",
            "n_test",
            "seconds",
            "seed",
            "test_accuracy",
            "time_to_80",
            "params",
            "epochs_trained",
        ):
            assert k in m, (b, k)
        assert m["backend"] == b and m["n_train"] == m["n_test"] == 1000 and m["class_names"][0] == "airplane"
        assert m["epochs_trained"] == 3 and m["recipe_batch_size"] == 40
        # the quick recipe learns: an untrained or broken model stays at chance (0.1 +- 0.01)
        assert m["test_accuracy"] > chance_bar(m["n_test"], 10), (b, m["test_accuracy"])
        report = (out / "report.md").read_text()
        for png in ("accuracy.png", "confusion.png", "gradcam.png", "filters.png", "feature_maps.png"):
            assert f"]({png})" in report
        assert m["gradcam_shown_wrong"] == 8  # the quick network makes at least 8 confident mistakes
        assert "test accuracy" in stdout


def test_saved_model_predicts_the_same_on_every_backend(quick_runs, tmp_path):
    x = images.cifar10_per_class(2).x_test
    np.save(tmp_path / "x.npy", x)
    dirs = {b: str(out) for b, (out, _) in quick_runs.items()}
    got = {}
    for b in quick_runs:
        check(
            run_python([PREDICT, str(tmp_path / "x.npy"), json.dumps(dirs), str(tmp_path / f"on_{b}.npz")], backend=b)
        )
        got[b] = np.load(tmp_path / f"on_{b}.npz")
    first, *rest = list(got.values())
    for other in rest:
        for model in dirs:
            np.testing.assert_allclose(other[model], first[model], rtol=1e-4, atol=1e-4)


def test_serve_classifies_an_uploaded_image(quick_runs):
    from PIL import Image

    b, (out, _) = next(iter(quick_runs.items()))
    proc, url = start(["serve", "--run", str(out)], backend=b)
    try:
        info = httpx.get(url + "/model").json()
        assert info["classes"][:2] == ["airplane", "automobile"] and info["fields"][0]["kind"] == "image"
        buf = io.BytesIO()
        Image.fromarray(images.cifar10_per_class(1).x_test[3]).resize((50, 40)).save(buf, "PNG")
        raw = httpx.post(url + "/predict/image", content=buf.getvalue(), headers={"Content-Type": "image/png"})
        assert raw.status_code == 200, raw.text
        pred = raw.json()["predictions"][0]
        assert pred["class"] in info["classes"] and len(pred["top"]) == 3
        assert sum(t["probability"] for t in pred["top"]) <= 1 + 1e-6
        js = httpx.post(url + "/predict", json={"instances": [{"image": base64.b64encode(buf.getvalue()).decode()}]})
        assert js.json()["predictions"][0]["class"] == pred["class"]
        bad = httpx.post(url + "/predict/image", content=b"this is not an image", headers={"Content-Type": "image/png"})
        assert bad.status_code == 400 and "not a readable" in bad.json()["detail"]
        bad = httpx.post(url + "/predict", json={"instances": [{"image": "%%%"}]})
        assert bad.status_code == 400 and "not base64" in bad.json()["detail"]
        assert 'type="file"' in httpx.get(url + "/").text
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_user_mistakes_are_one_line(tmp_path):
    for args, words in (
        (["--images", str(tmp_path / "nope")], "image folder not found"),
        (["--widths", "8,x"], "--widths"),
    ):
        p = run_python(["-m", "keras_cases.cifar", "--quick", "--out", str(tmp_path / "r"), *args])
        assert p.returncode == 2 and words in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_notebook_runs_the_recipe_and_the_ablation(tmp_path):
    nb, out = execute_notebook("cifar.ipynb", tmp_path)
    m = json.loads((out / "metrics.json").read_text())
    assert {"ablation_gain_augment", "ablation_gain_tta", "test_accuracy"} <= set(m)
    rows = json.loads((out / "ablation.json").read_text())
    assert [r["ingredient"] for r in rows] == ["full recipe", "augment", "tta"]
    assert all(r["gain"] == pytest.approx(rows[0]["val_accuracy"] - r["val_accuracy"]) for r in rows)
    assert (out / "ablation.png").is_file() and "](ablation.png)" in (out / "report.md").read_text()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "test accuracy" in text


VIT = str(SCRIPTS / "cifar_vit_checks.py")


def test_vit_shapes_parameters_attention_and_training(backend):
    """The ViT on every backend: output shape and parameter count match the formula; the
    class token's attention map equals the one recomputed in NumPy from the last block's
    weights, has the patch-grid shape and sums to 1; the --quick ViT recipe (random erasing
    on) learns past chance in 4 epochs on 1,000 images; a saved model loads and predicts
    (and attends) the same."""
    proc = check(run_python([VIT], backend=backend))
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for counted, formula, shape, want in out["params"]:
        assert counted == formula and shape == want, (backend, counted, formula, shape, want)
    assert out["attention_error"] < 1e-5 and out["attention_spread"] > 100 * out["attention_error"], out
    assert out["map_shape"] == {"last block": [6, 8, 8], "rollout": [6, 8, 8]}
    for sums in out["map_sums"].values():
        np.testing.assert_allclose(sums, 1.0, atol=1e-6)
    assert abs(out["params_vit"] / out["params_cnn"] - 1) <= 0.10
    assert out["loss_last"] < out["loss_first"] - 0.1, out
    assert out["test_accuracy"] > chance_bar(out["n_test"], 10), (backend, out["test_accuracy"])
    assert out["saved_error"] < 1e-5 and out["saved_maps_error"] < 1e-6, out


def test_equal_parameter_sizing_picks_a_vit_within_ten_percent():
    from dataclasses import replace

    from keras_cases.cifar import Recipe, build_model
    from keras_cases.cifar.model import RECIPES
    from keras_cases.cifar.vit import size_vit, vit_params

    for widths in ((8, 16, 32), (16, 32, 64), (32, 64, 128), (64, 128, 256)):
        cnn = build_model(Recipe(widths=widths)).count_params()
        for depth, heads, patch in ((1, 1, 4), (2, 4, 4), (4, 4, 4), (6, 8, 2), (4, 3, 8)):
            v = size_vit(replace(RECIPES["vit"], depth=depth, heads=heads, patch=patch), cnn)
            assert abs(vit_params(v) / cnn - 1) <= 0.10, (widths, depth, heads, patch, v.dim)
    v = size_vit(replace(RECIPES["vit"], depth=2), 20674)  # the quick CNN's size
    assert build_model(v).count_params() == vit_params(v)


def test_recipe_flag_picks_the_preset_and_sizes_the_vit():
    from keras_cases import UserError
    from keras_cases.cifar import build_model
    from keras_cases.cifar.case import check_input, make_parser, parse_studies, recipes_from
    from keras_cases.cifar.vit import vit_params

    d = images.cifar10_per_class(1)
    args = make_parser().parse_args(["--recipe", "vit"])
    recipes = recipes_from(args, d)
    vit, cnn = recipes["vit"], recipes["small"]
    assert (vit.arch, vit.optimizer, vit.erase, vit.whiten) == ("vit", "adamw", 0.5, False)
    assert (cnn.arch, cnn.optimizer, cnn.erase, cnn.widths) == ("cnn", "nesterov", 0.0, (32, 64, 128))
    cnn_params = build_model(cnn).count_params()  # 296,002; the ViT: width 94, 4 blocks
    assert vit.depth == 4 and abs(vit_params(vit) / cnn_params - 1) < 0.02, (vit.dim, cnn_params)
    typed = recipes_from(make_parser().parse_args(["--recipe", "vit", "--vit-dim", "40", "--erase", "0"]), d)
    assert typed["vit"].dim == 40 and typed["vit"].erase == 0.0
    assert parse_studies("all") == ["recipe", "ablation"] and parse_studies("compare,recipe") == ["recipe", "compare"]
    for argv, words in (
        (["--recipe", "vit", "--patch-size", "5"], "--patch-size 5 does not divide"),
        (["--recipe", "vit", "--vit-dim", "2"], "narrower than --heads"),
        (["--recipe", "vit", "--studies", "ablation"], "run it with --recipe small"),
    ):
        args = make_parser().parse_args(argv)
        with pytest.raises(UserError, match=words):
            check_input(args, recipes_from(args)[args.recipe])
