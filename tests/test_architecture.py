"""The architecture case: parameter formulas against Keras, the array datasets, user errors,
and the notebook, which runs the case's --quick study and must leave every artifact."""

import contextlib
import json
import os

import numpy as np
import pytest
from conftest import ROOT, SHARED_DATA, backends_under_test, execute_notebook, run_python

from keras_cases import UserError, cli
from keras_cases import architecture as A
from keras_cases.data import arrays

SHAPES = {(40,): (20_000, 50_000, 100_000), (8, 8): (2_000, 5_000, 10_000), (28, 28): (20_000, 50_000, 100_000)}


@contextlib.contextmanager
def shapes_only():
    """Build Keras models without drawing their initial weights (Keras' deferred variable
    initialisation): `count_params()` needs only the shapes, and on JAX drawing them would
    compile a random kernel for every new shape (minutes for a few hundred models)."""
    import keras

    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        keras.utils.clear_session()  # forget the never-initialised variables


@shapes_only()
def test_parameter_formulas_match_keras_exactly_and_fill_the_budget():
    k = 10
    for shape, budgets in SHAPES.items():
        d = int(np.prod(shape))
        assert A.count_params(A.Spec("linear"), shape, k) == A.build_model(A.Spec("linear"), shape, k).count_params()
        for p in budgets:
            specs = [A.Spec("mlp", A.mlp_widths(p, d, k, depth, s)) for depth in A.DEPTHS for s in A.SHAPES]
            specs += [A.for_budget("cnn", p, shape, k), A.for_budget("gru", p, shape, k)]
            for spec in specs:
                n = A.count_params(spec, shape, k)
                assert n == A.build_model(spec, shape, k).count_params(), (shape, p, spec)
                assert 0.8 * p < n <= p, (shape, p, spec, n)  # within budget, and using most of it
            # the solved size is the largest: one more unit (channel) breaks the budget
            for depth in A.DEPTHS:
                w = A.mlp_widths(p, d, k, depth)
                assert len(set(w)) == 1 and A.mlp_params(d, [w[0] + 1] * depth, k) > p
            assert A.cnn_params(shape, k, A.cnn_channels(p, shape, k) + 1) > p
            assert A.gru_params(shape, k, A.gru_units(p, shape, k) + 1) > p
    # the shapes really are decreasing / increasing (halving / doubling)
    assert A.mlp_widths(50_000, 40, 10, 3, "decreasing") == (249, 124, 62)
    assert A.mlp_widths(50_000, 40, 10, 3, "increasing") == (66, 132, 265)


def test_hidden_layers_use_the_requested_activation_and_dropout():
    model = A.build_model(A.Spec("mlp", (16, 8), "gelu"), (40,), 10, dropout=0.2)
    dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    assert [layer.activation.__name__ for layer in dense] == ["gelu", "gelu", "softmax"]
    assert sum(layer.__class__.__name__ == "Dropout" for layer in model.layers) == 2
    assert A.count_params(A.Spec("mlp", (16, 8)), (40,), 10) == model.count_params()


def test_array_datasets_have_fixed_disjoint_splits(monkeypatch):
    d = arrays.load("digits")
    assert d.sizes == (1077, 360, 360) and d.shape == (8, 8) and d.n_classes == 10
    assert 0 <= d.x_train.min() and d.x_train.max() <= 1 and d.x_train.dtype == np.float32
    m1 = arrays.load("mnist1d")
    assert m1.sizes == (3200, 800, 1000) and m1.shape == (40,)
    assert np.array_equal(arrays.load("mnist1d").x_val, m1.x_val)  # cached, same split
    monkeypatch.setenv("KERAS_CASES_DATA_DIR", os.environ.get("KERAS_CASES_DATA_DIR") or str(SHARED_DATA))
    monkeypatch.setenv("KERAS_CASES_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(ROOT / "no-such-keras-home"))  # no cached full MNIST
    mn = arrays.load("mnist")
    assert "test split" in mn.name and mn.sizes == (6000, 2000, 2000) and mn.shape == (28, 28)
    assert len(np.bincount(mn.y_test)) == 10 and mn.x_train.max() == 1.0
    flat = {tuple(r) for r in mn.x_test.reshape(len(mn.x_test), -1)[:200]}
    assert not flat & {tuple(r) for r in mn.x_train.reshape(len(mn.x_train), -1)}


def test_user_errors_are_one_line(tmp_path, capsys):
    assert cli.run(A.main, ["--experiments", "linear,depth", "--threads", "0"]) == 2  # the earlier spelling
    assert "--experiments: unknown experiment 'depth'" in capsys.readouterr().err
    assert cli.run(A.main, ["--studies", "linear,depth", "--threads", "0"]) == 2
    assert "--studies: unknown experiment 'depth'" in capsys.readouterr().err
    assert cli.run(A.main, ["--data", "nope", "--threads", "0"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((20, 4)))
    assert cli.run(A.main, ["--data", str(bad), "--threads", "0"]) == 2
    assert "has no array named y" in capsys.readouterr().err
    with pytest.raises(UserError, match="too small"):
        A.mlp_widths(100, 784, 10, 3)
    # the command line itself, as a user types it
    p = run_python(["-m", "keras_cases.architecture", "--studies", "nope"], backend=backends_under_test()[0])
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [
        "error: --studies: unknown experiment 'nope'; choose from linear, budgets, shape, optact, families, all"
    ]


def test_studies_flag_all_and_its_earlier_spelling():
    from keras_cases.architecture.case import make_parser, parse_studies

    for argv, want in (
        ([], list(A.EXPERIMENTS)),
        (["--studies", "all"], list(A.EXPERIMENTS)),
        (["--studies", "families,linear"], ["families", "linear"]),
        (["--experiments", "shape"], ["shape"]),
    ):
        assert parse_studies(make_parser().parse_args(argv).studies, argv) == want, argv


def test_importing_the_package_does_not_import_keras():
    code = "import sys; from keras_cases.architecture import mlp_params, Spec; print('keras' in sys.modules)"
    p = run_python(["-c", code], backend=backends_under_test()[0])
    assert p.returncode == 0 and p.stdout.strip() == "False", p.stderr


ARTIFACTS = [
    "metrics.json",
    "history.csv",
    "report.md",
    "config.json",
    "model.keras",
    "linear.png",
    "budgets.png",
    "shape.png",
    "optact.png",
    "families.png",
    "families_seconds.png",
    "cnn_filters.png",  # the best CNN's first-layer filters and feature maps (report.cnn_figures)
    "cnn_feature_maps.png",
]


def test_notebook_runs_the_quick_study_and_writes_every_artifact(tmp_path, monkeypatch):
    """The notebook calls `architecture.main([... "--quick"])`: the --quick end-to-end run."""
    import keras

    bs = backends_under_test()
    backend = "torch" if "torch" in bs else bs[0]  # no per-model compilation: the quickest here
    monkeypatch.setenv("KERAS_BACKEND", backend)  # the notebook's kernel inherits it
    nb, out = execute_notebook("architecture.ipynb", tmp_path)
    for name in ARTIFACTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    m = json.loads((out / "metrics.json").read_text())
    for key in (
        "backend",
        "keras_version",
        "dataset",
        "n_train",
        "n_val",
        "n_test",
        "seconds",
        "seed",
        "test_accuracy",
        "val_accuracy",
        "model",
        "params",
        "finalists",
    ):
        assert key in m, key
    assert m["backend"] == backend and m["quick"] and m["n_train"] == A.QUICK_TRAIN_ROWS
    assert m["experiments"] == list(A.EXPERIMENTS) and m["budgets"] == [20_000]
    assert all(r["params"] <= 20_000 for r in m["cells"]["budgets"] + m["cells"]["families"])
    # the chosen model is the best on validation, and the saved file is that model
    assert m["val_accuracy"] == max(f["val_accuracy"] for f in m["finalists"])
    best = keras.models.load_model(out / "model.keras")
    assert best.count_params() == m["params"]
    assert m["test_accuracy"] > m["linear_test_accuracy"] > 0.1  # better than chance, better than linear
    report = (out / "report.md").read_text()
    for png in [a for a in ARTIFACTS if a.endswith(".png")]:
        assert f"]({png})" in report, png
    assert "w = (-b + sqrt(b^2 + 4 a (P - k))) / (2 a)" in report and "±" in report
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "val" in text and "test" in text and "one wider" in text
