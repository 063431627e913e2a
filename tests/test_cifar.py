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


def test_cutout_sets_one_square_per_image_to_the_training_mean():
    rng = np.random.default_rng(0)
    x = rng.integers(100, 256, size=(64, 8, 8, 3), dtype=np.uint8)
    fill = np.array([10, 20, 30])
    out = images.cutout(x, np.random.default_rng(1), 3, fill)
    mask = np.all(out == fill, axis=-1)  # x has no value below 100: only cut-out pixels match
    np.testing.assert_array_equal(out[~mask], x[~mask])
    corners = set()
    for m in mask:
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        assert m.sum() == 9 and len(rows) == len(cols) == 3 and np.ptp(rows) == np.ptp(cols) == 2
        corners.add((rows[0], cols[0]))
    assert len(corners) > 10  # placed at random (36 possible corners), wholly inside the image
    # in the training batches: after the (here disabled) flip and crop, the fill is the
    # training images' mean colour; the labels are the images' indices
    data = images.augmented_batches(x, np.arange(64), 16, seed=3, pad=0, flip=False, cutout_size=3)
    xb, idx = data[1]
    cut = np.any(xb != x[idx], axis=-1)
    assert np.all(cut.sum(axis=(1, 2)) <= 9) and cut.sum() > 16 * 9 * 0.9
    np.testing.assert_array_equal(xb[cut], np.broadcast_to(np.round(x.mean(axis=(0, 1, 2))), xb[cut].shape))
    # the recipe's --cutout reaches the training loop's batches
    from types import SimpleNamespace

    from keras_cases.cifar import Recipe
    from keras_cases.cifar.training import training_data

    d = SimpleNamespace(x_train=x, y_train=np.arange(64) % 10, n_classes=10)
    xb = training_data(Recipe(batch_size=16, translate=0, cutout=3), d, 0)[0][0]
    assert np.all(np.all(xb == np.round(x.mean(axis=(0, 1, 2))), axis=-1).sum(axis=(1, 2)) == 9)


def test_precision_hint_only_where_bfloat16_pays(monkeypatch):
    """A budgeted run on TensorFlow with mixed precision left to `auto` (off on a CPU) names
    `--mixed-precision on` where the CPU has AMX-BF16, and nowhere else."""
    from dataclasses import replace

    from keras_cases.cifar import model

    r = model.RECIPES["airbench94"]
    monkeypatch.setattr(model.runtime, "backend", lambda: "tensorflow")
    monkeypatch.setattr(model, "amx_bf16", lambda: True)
    assert "AMX-BF16: on TensorFlow --mixed-precision on (bfloat16) trains faster" in model.precision_hint("auto", r)
    assert model.precision_hint("off", r) == model.precision_hint("auto", replace(r, mixed_precision=True)) == ""
    monkeypatch.setattr(model, "amx_bf16", lambda: False)
    assert model.precision_hint("auto", r) == ""
    monkeypatch.setattr(model, "amx_bf16", lambda: True)
    monkeypatch.setattr(model.runtime, "backend", lambda: "jax")  # its bfloat16 convs are no faster
    assert model.precision_hint("auto", r) == ""


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
    from keras_cases.cifar.ablation import ingredients_of

    cut = recipes_from(make_parser().parse_args(["--recipe", "airbench94", "--cutout", "12"]))["airbench94"]
    assert cut.cutout == 12 and recipes["airbench94"].cutout == 0 and cut.translate == 2
    assert "cutout" in ingredients_of(cut) and "cutout" not in ingredients_of(recipes["airbench94"])
    for argv, words in (
        (["--recipe", "airbench94", "--cutout", "33"], "--cutout 33: the square is larger than the 32x32 images"),
        (["--recipe", "vit", "--patch-size", "5"], "--patch-size 5 does not divide"),
        (["--recipe", "vit", "--vit-dim", "2"], "narrower than --heads"),
        (["--recipe", "vit", "--studies", "ablation"], "run it with --recipe small"),
    ):
        args = make_parser().parse_args(argv)
        with pytest.raises(UserError, match=words):
            check_input(args, recipes_from(args)[args.recipe])


AIRBENCH = str(SCRIPTS / "airbench_checks.py")


def airbench_params(widths=(64, 256, 256), n_classes=10):
    """(all, trainable) parameters of airbench94's network: a fixed 2x2x3x24 whitening kernel
    with its fixed bias (the standardisation folded in) and 24 learnt biases; per block two
    bias-free 3x3 convs, each followed by a batch norm without scale or centre (its moving mean
    and variance) and a ScaledBias (one per channel); a bias-free dense layer. Widths 64/256/256: 1,971,352 trainable, as airbench94's own net
    (its 1,152 fixed BN scales and 288 whitening weights aside)."""
    pairs = []
    c_in = 24
    for w in widths:
        pairs += [(c_in, w), (w, w)]
        c_in = w
    convs = sum(9 * a * b for a, b in pairs)
    biases = sum(b for _, b in pairs)
    trainable = 24 + convs + biases + widths[-1] * n_classes
    return trainable + 2 * 2 * 3 * 24 + 24 + 2 * biases, trainable  # + the fixed whitening bias


def test_airbench94_pieces_on_every_backend(backend):
    """On each backend: the full network has the counted parameters; a fresh block conv is
    the identity on its input channels (dirac init); the whitening layer's output on training
    patches has identity covariance up to its eps (off-diagonal ~0, largest variance 1) where
    the raw patches' is ill-conditioned; ScaledBias(8) learns 64x as fast under SGD; and
    AirbenchSGD (Nesterov, L2 through the momentum, lookahead, final average) matches a NumPy
    re-implementation after 13 steps, with lookahead changing the result."""
    out = json.loads(check(run_python([AIRBENCH], backend=backend)).stdout.strip().splitlines()[-1])
    assert out["params"] == list(airbench_params()) == [1973968, 1971352], out["params"]
    for identity_error, others in out["dirac"]:
        assert identity_error < 1e-6 and others > 0.05, out["dirac"]
    w = out["whiten"]
    # airbench's whitening: standardised pixels, uncentred second moment (so ~0, not exactly 0)
    assert w["raw_condition"] > 1e3 and w["off_diagonal"] < 5e-3 and w["mean"] < 0.1, w
    assert 0.1 < w["diagonal"][0] and abs(w["diagonal"][1] - 1) < 1e-3 and w["signs"] < 1e-4, w
    assert out["bias_lr"] == pytest.approx(64, rel=1e-4)
    la = out["lookahead"]
    assert la["error"] < 1e-5 and la["plain_error"] < 1e-5 and la["effect"] > 1e3 * la["error"], la


def test_airbench94_preset_flags_schedule_and_ablation():
    from dataclasses import asdict, replace

    from keras_cases.cifar.ablation import AIRBENCH_INGREDIENTS, ingredients_of
    from keras_cases.cifar.airbench94 import Triangular, dirac_init, triangular_lr
    from keras_cases.cifar.case import make_parser, recipe_from
    from keras_cases.cifar.model import RECIPES

    r = recipe_from(make_parser().parse_args(["--recipe", "airbench94"]))
    assert (r.arch, r.widths, r.batch_size, r.lr, r.momentum, r.tta) == ("airbench", (64, 256, 256), 1024, 1.5, 0.85, 2)
    assert r.dirac and r.lookahead and r.bias_lr == 64 and r.translate == 2 and r.label_smoothing == 0.2
    typed = recipe_from(
        make_parser().parse_args(["--recipe", "airbench94", "--batch-size", "512", "--widths", "8,8,8"])
    )
    assert (typed.batch_size, typed.widths, typed.lr) == (512, (8, 8, 8), 1.5)
    small = recipe_from(make_parser().parse_args([]))
    assert (small.batch_size, small.widths, small.lr, small.tta) == (256, (32, 64, 128), 0.2, 1)
    sched = Triangular(2.0, 100)
    got = [float(np.asarray(sched(s))) for s in (0, 23, 100, 200)]
    np.testing.assert_allclose(got, [0.4, 2.0, 0.14, 0.14], rtol=1e-5)
    np.testing.assert_allclose([triangular_lr(f, 2.0) for f in (0, 0.23, 1)], got[:3], rtol=1e-6)
    assert ingredients_of(r) is AIRBENCH_INGREDIENTS
    base = asdict(RECIPES["airbench94"])
    for name, (_, change) in AIRBENCH_INGREDIENTS.items():  # each removes something the preset has
        assert all(k in base and base[k] != v for k, v in change.items()), name
        replace(RECIPES["airbench94"], **change)
    k = np.random.default_rng(0).normal(size=(3, 3, 4, 6))
    d = dirac_init(k)
    assert np.array_equal(d[1, 1, :, :4], np.eye(4)) and d[:, :, :, :4].sum() == 4
    assert np.array_equal(d[..., 4:], k[..., 4:])


def test_airbench94_quick_run_learns(tmp_path_factory):
    """`--recipe airbench94 --quick` (widths 8,16,32, batch 40, 3 epochs on 1,000 images,
    lookahead on from step 22), as the 60-minute benchmark runs it (mixed precision, cutout):
    it writes the report (its plots from bfloat16 activations) and learns past chance."""
    b = "tensorflow" if "tensorflow" in backends_under_test() else backends_under_test()[0]  # the recipe's backend
    cmd = ["-m", "keras_cases.cifar", "--recipe", "airbench94", "--quick", "--mixed-precision", "on", "--cutout", "12"]
    out, stdout = shared_run(tmp_path_factory, cmd, b)
    m = json.loads((out / "metrics.json").read_text())
    assert (m["recipe"], m["recipe_arch"], m["recipe_tta"], m["recipe_bias_lr"]) == ("airbench94", "airbench", 2, 64)
    assert (
        m["recipe_mixed_precision"] and m["recipe_cutout"] == 12 and "(cutout 12 px)" in (out / "report.md").read_text()
    )
    assert m["recipe_dirac"] and m["recipe_lookahead"] and m["recipe_widths"] == [8, 16, 32]
    assert m["params"] == airbench_params((8, 16, 32))[0] and m["epochs_trained"] == 3
    assert m["test_accuracy"] > chance_bar(m["n_test"], 10), (b, m["test_accuracy"])
    assert (out / "model.keras").is_file() and "](feature_maps.png)" in (out / "report.md").read_text()
