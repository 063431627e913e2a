"""The run lifecycle's shared pieces: the --quick preset, Run.finish and its report header, and
the dashboard's reading of the headline block. In-process and cheap (no training)."""

import json

import pytest

from keras_cases import cli, dashboard, runs


def demo_parser():
    p = cli.parser(
        "keras_cases.demo", "a demo", epochs=30, batch_size=64, quick={"epochs": lambda v: min(v, 2), "batch_size": 8}
    )
    p.add_argument("--width", type=cli.positive_int, default=100)
    p.quick["width"] = lambda v, ns: 10 if ns.distribute == "none" else v  # sees the other flags
    return p


@pytest.mark.parametrize(
    "argv, expect",
    [
        ([], (30, 64, 100)),  # no --quick: nothing changes
        (["--quick"], (2, 8, 10)),
        (["--quick", "--epochs", "1"], (1, 8, 10)),  # typed flags are kept
        (["--quick", "--epochs=50"], (50, 8, 10)),
        (["--quick", "--batch-size", "16", "--width", "7"], (2, 16, 7)),
        (["--epochs", "1", "--quick"], (1, 8, 10)),
    ],
)
def test_quick_preset_clamps_only_what_was_not_typed(argv, expect, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = demo_parser().parse_args(argv)
    assert (a.epochs, a.batch_size, a.width) == expect


def test_finish_writes_every_file_with_one_header(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = demo_parser().parse_args(["--quick", "--seed", "4", "--seeds", "3", "--out", "r"])
    with runs.lifecycle():
        run = runs.Run("demo", args.out)
        m = run.finish(
            {"dataset": "toy", "n_train": 1200, "n_val": 300, "n_test": 500, "seed": 4, "seeds": 3, "test_f1": 0.75},
            ["## First\n\nbody one", ("Second", "body two")],
            title="Demo case",
            headline={"f1": 0.75, "recall": None},
            history={"mlp": {"loss": [0.9, 0.5], "val_loss": [1.0, 0.7]}},
            notes=["`model.keras`: the mlp"],
        )
    d = tmp_path / "r"
    report = (d / "report.md").read_text()
    lines = report.splitlines()
    assert lines[0] == "# Demo case"
    assert "- data: toy; 1,200 train, 300 validation, 500 test" in lines
    assert "- seeds: 4..6" in lines
    assert any(line.startswith("- backend: ") and m["backend"] in line for line in lines)
    assert any(line.startswith("- wall time: ") for line in lines)
    assert "- quick run: small data and few epochs, a smoke test, not a result" not in lines  # not in metrics
    assert "- `model.keras`: the mlp" in lines
    assert report.index("## First") < report.index("## Second\n\nbody two")
    saved = json.loads((d / "metrics.json").read_text())
    assert saved["headline"] == {"f1": 0.75}  # None values are left out
    assert saved["case"] == "demo" and saved["seconds"] >= 0 and saved["keras_version"]
    assert json.loads((d / "config.json").read_text())["epochs"] == 2  # the flags after the preset
    assert (d / "history.csv").read_text().splitlines()[0] == "model,epoch,loss,val_loss"
    assert json.loads((d / "run.json").read_text())["status"] == "complete"
    assert not list(d.glob(".*tmp*"))  # no temporary file left behind


def test_dashboard_prefers_the_headline_block():
    m = {"headline": {"roc_auc": 0.84, "mase": 0.61, "odd": "text"}, "accuracy": 0.5, "test_f1": 0.1}
    assert dashboard.headline(m) == {"roc_auc": 0.84, "mase": 0.61}
    assert dashboard.headline({"accuracy": 0.5, "test_f1": 0.1}) == {"accuracy": 0.5, "f1": 0.1}  # older runs
