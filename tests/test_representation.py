"""Representation learning: parameter counts by hand, the PCA baseline, rotations, a
compiled model restarted equals a fresh one, the quick run on every backend (one shared
subprocess each, see _image_runs.py) with frozen weights that stay put, saved models across
backends, the notebook."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _image_runs import XLA_O0, run_everywhere, same_predictions_everywhere
from conftest import backends_under_test, execute_notebook

from keras_cases import UserError, backbones, cli
from keras_cases.data import batches, images
from keras_cases.representation import autoencoders, case, common, reuse, rotation

SAVED = {
    "model.keras": (5, 28, 28, 1),
    "autoencoder_k32.keras": (5, 28, 28, 1),
    "rotation_backbone.keras": (5, 32, 32, 3),
}  # saved model -> the raw-pixel batch it predicts on
QUICK = str(Path(__file__).parent / "scripts" / "representation_quick.py")  # run as a file in a subprocess
BODY = f"    import runpy\n    runpy.run_path({QUICK!r})['run'](here, out, extra)\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """<dir>/<backend>/: a quick run per backend, and predictions across backends."""
    return run_everywhere(tmp_path_factory.mktemp("representation"), BODY, SAVED)


def chance_bar(n_test: int, n_classes: int, z: float = 4.0, largest_share: float = 0.0) -> float:
    """Accuracy a model that learned nothing stays below: chance (1 / n_classes, or always
    answering the largest class, `largest_share`) plus z binomial standard errors of n_test
    guesses (z = 4: exceeded by luck with p < 1e-4)."""
    p = max(1 / n_classes, largest_share)
    return p + z * (p * (1 - p) / n_test) ** 0.5


def test_parameter_counts_by_hand():
    # 8x8 images (d = 64), hidden 5, code 3: (64*5 + 5) + (5*3 + 3) + (3*5 + 5) + (5*64 + 64)
    ae, encoder = autoencoders.build_autoencoder(3, (8, 8, 1), hidden=5)
    assert encoder.count_params() == 325 + 18
    assert ae.count_params() == 325 + 18 + 20 + 384 == 747 == autoencoders.autoencoder_params(3, 64, 5)
    assert autoencoders.autoencoder_params(32) == 419_120  # the k=32 MNIST autoencoder of part a
    clf, _ = reuse.build_encoder_classifier(3, (8, 8, 1), 10, frozen=True, hidden=5)
    # + batch norm on the 3-d code (gamma, beta, mean, variance) + softmax layer 3 x 10 + 10;
    # frozen: only gamma, beta and the softmax layer train
    assert clf.count_params() == 343 + 4 * 3 + 40 and sum(np.prod(w.shape) for w in clf.trainable_weights) == 6 + 40
    # conv blocks (4, 8) on RGB: 3x3x3x4 kernel + 4 x 4 batch-norm values, then 3x3x4x8 + 4 x 8
    backbone = backbones.build_backbone((4, 8), size=16)
    assert backbone.count_params() == (108 + 16) + (288 + 32) == backbones.backbone_params((4, 8)) == 444
    assert backbone.output_shape == (None, 4, 4, 8)
    assert backbones.backbone_params(backbones.WIDTHS) == 93_920
    model, _ = rotation.transfer_model((4, 8), 10, k=1, frozen=True, size=16)
    assert model.count_params() == 444 + 8 * 10 + 10
    # frozen block 1: trainable = block 2 (kernel, gamma, beta) + the softmax layer
    assert sum(np.prod(w.shape) for w in model.trainable_weights) == 288 + 16 + 90


def test_pca_baseline_sanity():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(6, 16))  # 4x4 images on a 6-dimensional subspace (+ rounding to uint8)
    x = np.clip(np.rint(127 + 20 * rng.normal(size=(300, 6)) @ basis), 0, 255).astype(np.uint8).reshape(300, 4, 4, 1)
    mses = [autoencoders.pca_reconstruct(x[:200], x[200:], k)[0] for k in (1, 2, 4, 6, 16)]
    assert all(a > b for a, b in zip(mses, mses[1:]))  # more components, lower error
    assert mses[-1] < 1e-12  # every component: exact
    assert mses[3] < 1e-4 < mses[2]  # 6 components hold all but the rounding noise
    # on its own training images the error is the variance left in the dropped components
    from sklearn.decomposition import PCA

    flat = x[:200].reshape(200, -1) / 255.0
    ev = PCA().fit(flat).explained_variance_  # normalised by n - 1
    mse, recon = autoencoders.pca_reconstruct(x[:200], x[:200], 3)
    assert mse == pytest.approx(ev[3:].sum() * 199 / 200 / 16, rel=1e-6)
    assert recon.shape == (200, 4, 4, 1)


def test_rotations_label_each_quarter_turn():
    x = np.zeros((2, 4, 4, 1), np.uint8)
    x[:, 0, 0] = 255  # a bright top-left pixel
    xr, yr = backbones.rotations(x)
    assert xr.shape == (8, 4, 4, 1) and list(yr) == [0, 0, 1, 1, 2, 2, 3, 3]
    corners = [tuple(np.argwhere(im[..., 0] == 255)[0]) for im in xr[::2]]
    assert corners == [(0, 0), (3, 0), (3, 3), (0, 3)]  # 90 degrees counter-clockwise each
    data = backbones.rotation_batches(np.repeat(x, 5, axis=0), batch_size=8, seed=0)
    xb, yb = data[0]
    assert len(data) == 5 and xb.shape == (8, 4, 4, 1) and np.array_equal(np.bincount(yb), [2, 2, 2, 2])


def test_a_restarted_model_trains_like_a_fresh_one():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 8, 8, 1)).astype(np.uint8)
    y = rng.integers(0, 3, 40)

    def trained(model, seed):
        common.restart(model, seed)
        model.fit(batches(x, y, 20, seed), epochs=2, verbose=0, shuffle=False)
        return [np.array(w) for w in model.get_weights()]

    used, _ = reuse.build_encoder_classifier(4, (8, 8, 1), 3, hidden=6)
    common.compile_classifier(used)
    first = trained(used, 5)  # moves the weights and the optimizer state ...
    again = trained(used, 1)  # ... which a restart forgets
    fresh, _ = reuse.build_encoder_classifier(4, (8, 8, 1), 3, hidden=6)
    common.compile_classifier(fresh)
    for a, b in zip(again, trained(fresh, 1)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(first[0], again[0])
    assert float(used.optimizer.learning_rate) == pytest.approx(1e-3)


def test_bad_arguments_are_one_line_errors(capsys, tmp_path):
    assert case.parse_studies("c, ae,a", []) == ["a", "c"]
    with pytest.raises(UserError, match="--studies: unknown study 'x'"):
        case.parse_studies("a,x", [])
    # the old spelling still works, and its errors name it
    assert case.make_parser().parse_args(["--parts", "rotation"]).studies == "rotation"
    with pytest.raises(UserError, match="--parts: unknown part 'x'"):
        case.parse_studies("a,x", ["--parts", "a,x"])
    assert cli.run(case.main, ["--bottlenecks", "2,big"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert cli.run(case.main, ["--transfer-blocks", "9"]) == 2
    assert "the backbone has 3 blocks" in capsys.readouterr().err
    for labels, message in (
        ("100,x", "--labels: 'x' is not an integer"),
        ("0,100", "--labels: 0 must be at least 1"),
        ("100,105", "--labels: 105 is not a multiple of 10"),
        (" , ", "--labels is empty"),
    ):
        assert cli.run(case.main, ["--studies", "reuse", "--labels", labels]) == 2, labels
        err = capsys.readouterr().err.strip()
        assert message in err and err.count("\n") == 0, (labels, err)
    # more labels than the 1,000 quick images hold (about 100 per digit): refused before training
    out = str(tmp_path / "run")
    assert cli.run(case.main, ["--studies", "reuse", "--quick", "--labels", "100,3000", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "--labels 3000" in err and "at most" in err and "---" not in err


def test_label_curve_subsets_are_balanced_nested_and_equally_long():
    assert reuse.parse_labels("3000, 100,1000,300,100") == [100, 300, 1000, 3000]
    rng = np.random.default_rng(0)
    y = rng.permutation(np.repeat(np.arange(10), 40))  # 40 images of every digit
    d = images.ArrayData("toy", np.zeros((400, 2, 2, 1), np.uint8), y, None, None, None, None, 10, list("0123456789"))
    small, big = reuse.labelled_subset(d, 100), reuse.labelled_subset(d, 300)
    assert np.array_equal(np.bincount(y[small]), [10] * 10) and np.array_equal(np.bincount(y[big]), [30] * 10)
    assert set(small) <= set(big)  # nested: the 300 labels hold the 100
    with pytest.raises(UserError, match="only 40 of their rarest digit; at most 400 labels"):
        reuse.labelled_subset(d, 410)
    # every point of the curve draws as many images per epoch as the largest
    assert len(reuse.repeated(small, 300)) == len(reuse.repeated(big, 300)) == 300
    assert np.array_equal(np.bincount(reuse.repeated(small, 300)), np.bincount(np.tile(small, 3)))


def test_differences_use_the_plain_paired_t_interval_and_find_where_pretraining_stops():
    from scipy import stats

    labels = [100, 300, 1000, 3000]
    base = np.array([0.80, 0.82, 0.81])
    # fine-tuned: trained - random = +0.10, +0.05 (both clear of 0), then ~0, then < 0
    gaps = {100: [0.10, 0.11, 0.09], 300: [0.05, 0.06, 0.04], 1000: [0.01, -0.02, 0.0], 3000: [-0.02, -0.03, -0.025]}
    metrics = {}
    for n in labels:
        for arm, gap in (("frozen", [0.2, 0.21, 0.19]), ("fine-tuned", gaps[n])):
            cell = reuse.difference(metrics, n, arm, {f"random {arm}": base, f"trained {arm}": base + gap})
            assert cell.startswith("+0.20") if arm == "frozen" else cell[0] in "+-"
    d = np.array(gaps[300])
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    assert metrics["reuse_n300_trained_minus_random_finetuned_low"] == pytest.approx(d.mean() - half)
    assert metrics["reuse_n300_trained_minus_random_finetuned_high"] == pytest.approx(d.mean() + half)
    assert [metrics[f"reuse_n{n}_trained_minus_random_finetuned_verdict"] for n in labels] == [
        "helps",
        "helps",
        "not distinguishable",
        "hurts",
    ]
    stop, sentence = reuse.stops_helping(metrics, labels, "fine-tuned")
    assert stop == 1000 and "helps up to 300 labels and stops helping at 1,000" in sentence
    assert "the random start is better at 3,000 labels" in sentence
    stop, sentence = reuse.stops_helping(metrics, labels, "frozen")
    assert stop is None and "still helps at 3,000 labels" in sentence
    # one seed: a difference without an interval, and no claim
    one = {}
    reuse.difference(one, 100, "frozen", {"random frozen": [0.5], "trained frozen": [0.7]})
    assert one["reuse_n100_trained_minus_random_frozen_low"] is None
    assert reuse.stops_helping(one, [100], "frozen") == (
        None,
        "frozen: one seed, no intervals (run --seeds 3 or more for a claim)",
    )


def test_quick_run_on_every_backend(backend, runs):
    d = runs / backend
    m = json.loads((d / "metrics.json").read_text())
    for k in ("backend", "keras_version", "dataset", "n_train", "n_test", "seconds", "seed"):
        assert k in m, k
    assert m["backend"] == backend and m["studies"] == m["parts"] == ["ae", "reuse", "rotation"]
    assert "MNIST" in m["dataset"] and "CIFAR-10" in m["dataset"]
    assert m["n_train"] == 1000 and m["mnist_n_test"] == 200 and m["cifar_n_pretext"] == 400
    assert m["ae_k32_params"] == 419_120
    # the same 1,000 / 200 images the quick run used: its PCA is exact, and its autoencoder
    # learnt more than the mean image (k = 0) or one principal component: an untrained one
    # (sigmoid outputs near 0.5) scores about 0.2
    mnist = images.load_mnist().subset(1000, 200, 200)
    assert mnist.name == m["mnist_dataset"]
    assert m["pca_k32_mse"] == pytest.approx(autoencoders.pca_reconstruct(mnist.x_train, mnist.x_test, 32)[0], rel=1e-6)
    mean_image = float(np.mean((common.unit(mnist.x_test) - common.unit(mnist.x_train).mean(0)) ** 2))
    pca_1 = autoencoders.pca_reconstruct(mnist.x_train, mnist.x_test, 1)[0]
    assert m["ae_k32_mse"] < pca_1 < mean_image, (m["ae_k32_mse"], pca_1, mean_image)
    # every classifier learns: chance is about 0.1 +- 0.021 on 200 test images
    largest = np.bincount(mnist.y_test).max() / len(mnist.y_test)
    assert m["reuse_labels"] == [100, 300]  # --quick's label curve
    for n in m["reuse_labels"]:
        for v in ("random_frozen", "random_finetuned", "trained_frozen", "trained_finetuned"):
            assert m[f"reuse_n{n}_{v}_test_accuracy"] > chance_bar(m["mnist_n_test"], 10, largest_share=largest), v
            assert 1 <= m[f"reuse_n{n}_{v}_best_epoch"] <= case.QUICK["clf_epochs"]  # the one early stopping kept
        assert m[f"reuse_n{n}_trained_minus_random_frozen"] == pytest.approx(
            m[f"reuse_n{n}_trained_frozen_test_accuracy"] - m[f"reuse_n{n}_random_frozen_test_accuracy"]
        )
    assert m["reuse_stops_helping_frozen"] is None and m["reuse_helps_at_finetuned"] == []  # one seed: no claim
    # the pretext learns which way up an image is: chance is 0.25 on the balanced rotations
    assert m["rotation_backbone_params"] == 93_920 and m["rotation_n_test"] == 1600
    assert m["rotation_test_accuracy"] > chance_bar(m["rotation_n_test"], 4), m["rotation_test_accuracy"]
    # frozen weights stayed put (batch-norm statistics included); fine-tuned ones moved
    assert m["reuse_random_frozen_encoder_arrays_moved"] == m["reuse_trained_frozen_encoder_arrays_moved"] == 0
    assert m["reuse_trained_finetuned_encoder_arrays_moved"] == 4  # enc_hidden and code: kernel and bias
    assert m["transfer_frozen_pretrained_arrays_moved"] == 0
    assert m["transfer_finetuned_pretrained_arrays_moved"] == 2 * 5  # 2 blocks: kernel, gamma, beta, mean, var
    for name in (
        "metrics.json",
        "history.csv",
        "model.keras",
        "report.md",
        "config.json",
        "autoencoder_k32.keras",
        "rotation_backbone.keras",
        "ae_vs_pca.png",
        "reconstructions.png",
        "reuse_curves.png",
        "reuse_label_curve.png",
        "transfer_curves.png",
        "rotation_curves.png",
    ):
        assert (d / name).is_file(), name
    report = (d / "report.md").read_text()
    assert "10,000-image official test split" in report  # offline MNIST is said to be the test split
    assert all(f"]({f})" in report for f in ("ae_vs_pca.png", "reuse_curves.png", "reuse_label_curve.png"))
    assert "transfer_curves.png)" in report and "frozen: one seed, no intervals" in report
    h = pd.read_csv(d / "history.csv")
    assert {"ae_k32_seed0", "trained_fine-tuned_n300_seed0", "rotation_pretext", "transfer_scratch_seed0"} <= set(
        h.model
    )
    ae = h[h.model == "ae_k32_seed0"]["loss"].to_numpy()
    assert ae[-1] < ae[0]  # the autoencoder learns


def test_saved_models_predict_the_same_on_every_backend(runs):
    n = len(backends_under_test())
    rows = same_predictions_everywhere(runs)
    assert len(rows) == 3 * n * (n - 1) // 2  # 3 models, every (saved on, loaded on) pair
    for a, b, name, diff, pred in rows:
        assert pred.std() > 1e-4, (name, "constant predictions prove nothing")
        assert diff < 1e-4, (a, b, name, diff)


def test_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", XLA_O0)  # the kernel compiles faster (JAX)
    _, out = execute_notebook("representation.ipynb", tmp_path)
    m = json.loads((out / "metrics.json").read_text())
    assert m["studies"] == ["ae"] and "ae_k32_mse" in m and "pca_k32_mse" in m
    assert (out / "reconstructions.png").is_file()
