"""KerasTuner searches: counted before built, the budget as a hard constraint that never
stops a search, a tiny search on every backend, KerasTuner's distributed mode (a chief and
two workers on 127.0.0.1), and an interrupted search resumed where it stopped."""

import json
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, backends_under_test, subprocess_env
from test_architecture import shapes_only

ALGORITHMS = ("random", "bayesian", "hyperband")  # one per backend: every tuner gets run
TINY = ["--data", "digits", "--quick", "--epochs", "1"]


def popen(args, backend):
    return subprocess.Popen(
        [sys.executable, *args],
        env=subprocess_env(backend),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(procs: dict, deadline: float) -> dict:
    """Wait for every process until `deadline` (time.monotonic()); kill whatever is left."""
    outs = {}
    try:
        for name, p in procs.items():
            outs[name] = p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    return outs


def test_hypermodel_counts_match_the_models_it_builds():
    from keras_cases.architecture import build_model
    from tuning.architecture import ArchitectureHyperModel
    from tuning.churn import ChurnHyperModel

    rng = np.random.default_rng(0)
    with shapes_only():
        for shape in ((40,), (8, 8)):
            hm = ArchitectureHyperModel(shape, 10)
            for _ in range(12):
                config = {
                    "family": str(rng.choice(["mlp", "cnn", "gru"])),
                    "depth": int(rng.integers(1, 6)),
                    "width": int(rng.integers(8, 300)),
                    "shape": str(rng.choice(["uniform", "decreasing", "increasing"])),
                    "activation": "relu",
                    "channels": int(rng.integers(4, 64)),
                    "units": int(rng.integers(4, 64)),
                    "dropout": 0.1,
                    "learning_rate": 1e-3,
                }
                model = build_model(hm.spec(config), shape, 10, dropout=config["dropout"])
                assert hm.count(config) == model.count_params(), config
    hm = ChurnHyperModel(45)
    for width, depth in ((8, 1), (100, 3)):
        config = {"width": width, "depth": depth, "dropout": 0.2, "learning_rate": 1e-3}
        assert hm.count(config) == hm.make(config).count_params()


def test_over_budget_proposals_are_never_built_and_never_stop_the_search(tmp_path, monkeypatch):
    import keras_tuner

    from tuning import architecture as TA

    built = []
    real = TA.build_model

    def spy(spec, shape, k, dropout=0.0):
        model = real(spec, shape, k, dropout=dropout)
        built.append(model.count_params())
        return model

    monkeypatch.setattr(TA, "build_model", spy)
    hm = TA.ArchitectureHyperModel((8, 8), 10, budget=1500, families=("mlp",))
    hp = keras_tuner.HyperParameters()
    hm.configure(hp)
    hp.values.update(depth=5, width=1024)
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="over budget"):
        hm.build(hp)
    assert built == []  # rejected from the formula, before a single layer existed

    out = tmp_path / "search"
    assert (
        TA.main(
            [
                *TINY,
                "--families",
                "mlp",
                "--budget",
                "1500",
                "--max-trials",
                "8",
                "--threads",
                "0",
                "--directory",
                str(out),
            ]
        )
        == 0
    )
    frame = pd.read_csv(out / "trials.csv", dtype={"trial": str})
    failed = frame["status"] == "FAILED"
    assert len(frame) == 8 and failed.sum() >= 3 and (~failed).sum() >= 1
    assert (frame.loc[failed, "params"] > 1500).all() and frame.loc[failed, "note"].str.contains("over budget").all()
    assert (frame.loc[~failed, "params"] <= 1500).all() and frame.loc[~failed, "val_accuracy"].notna().all()
    # KerasTuner's default (3 failures in a row) would have aborted this search
    run = longest = 0
    for f in failed:
        run = run + 1 if f else 0
        longest = max(longest, run)
    assert longest >= 3
    # only the completed trials (and the retrained best) were ever built; no weights for the rest
    assert len(built) == (~failed).sum() + 1 and max(built) <= 1500
    for t in frame.loc[failed, "trial"]:
        assert not list((out / "keras_tuner" / f"trial_{t}").glob("*.h5"))
    m = json.loads((out / "metrics.json").read_text())
    assert m["rejected_over_budget"] == failed.sum() and m["params"] <= 1500


@pytest.fixture(scope="module")
def tiny_searches(tmp_path_factory):
    """`python -m tuning.architecture` once per backend (3 trials, 1 epoch, 600 digits),
    the backends side by side, one subprocess each."""
    runs, procs = {}, {}
    for i, b in enumerate(backends_under_test()):
        out = tmp_path_factory.mktemp(f"search_{b}")
        alg = ALGORITHMS[i % len(ALGORITHMS)]
        runs[b] = (out, alg)
        procs[b] = popen(
            [
                "-m",
                "tuning.architecture",
                *TINY,
                "--max-trials",
                "3",
                "--budget",
                "5000",
                "--algorithm",
                alg,
                "--directory",
                str(out),
            ],
            b,
        )
    outs = finish(procs, time.monotonic() + 400)
    return {b: (out, alg, procs[b].returncode, outs[b]) for b, (out, alg) in runs.items()}


def test_tiny_search_completes_on_every_backend(tiny_searches):
    for b, (out, alg, rc, log) in tiny_searches.items():
        assert rc == 0, f"{b} ({alg}) exit {rc}\n{log[-3000:]}"
        frame = pd.read_csv(out / "trials.csv", dtype={"trial": str})
        assert len(frame) == 3 and frame["trial"].is_unique, (b, frame)
        assert {"trial", "status", "family", "params", "val_accuracy", "seconds", "learning_rate"} <= set(frame.columns)
        done = frame["status"] == "COMPLETED"
        assert done.any() and set(frame["status"]) <= {"COMPLETED", "FAILED"}, (b, frame)
        assert (frame.loc[done, "params"] <= 5000).all() and (frame.loc[~done, "params"] > 5000).all()
        assert frame.loc[done, "val_accuracy"].between(0, 1).all() and (frame.loc[done, "seconds"] > 0).all()
        assert (out / "pareto.png").stat().st_size > 5000
        m = json.loads((out / "metrics.json").read_text())
        assert m["backend"] == b and m["algorithm"] == alg and 0 <= m["test_accuracy"] <= 1
        best = json.loads((out / "best_hyperparameters.json").read_text())
        assert best["params"] == m["params"] <= 5000 and best["hyperparameters"]["family"] in ("mlp", "cnn", "gru")
        assert (out / "model.keras").is_file() and "](pareto.png)" in (out / "report.md").read_text()
        assert len(re.findall(r"\[tuner0\] trial \d+ (COMPLETED|FAILED)", log)) == 3


def _listening(port) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_distributed_search_chief_and_two_workers(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bs = backends_under_test()
    backend = "torch" if "torch" in bs else bs[0]  # the mode is KerasTuner's; torch starts fastest
    args = [
        "-m",
        "tuning.architecture",
        *TINY,
        "--max-trials",
        "6",
        "--budget",
        "20000",
        "--directory",
        str(tmp_path),
        "--oracle",
        f"127.0.0.1:{port}",
        "--oracle-timeout",
        "120",
    ]
    deadline = time.monotonic() + 300
    chief = popen([*args, "--distributed", "chief", "--workers", "2"], backend)
    procs = {"chief": chief}
    try:
        while not _listening(port):  # workers start once the chief serves
            assert chief.poll() is None, chief.communicate()[0][-3000:]
            assert time.monotonic() < deadline - 200, "the chief never started serving"
            time.sleep(0.25)
        for w in ("worker1", "worker2"):
            procs[w] = popen([*args, "--distributed", "worker", "--tuner-id", w], backend)
    finally:
        outs = finish({**{w: p for w, p in procs.items() if w != "chief"}, "chief": chief}, deadline)
    for name, p in procs.items():
        assert p.returncode == 0, f"{name} exit {p.returncode}\n{outs.get(name, '')[-3000:]}"
    frame = pd.read_csv(tmp_path / "trials.csv", dtype={"trial": str})
    assert len(frame) == 6 and frame["trial"].is_unique and set(frame["status"]) <= {"COMPLETED", "FAILED"}
    ran = {w: dict(re.findall(rf"\[{w}\] trial (\d+) (COMPLETED|FAILED)", outs[w])) for w in ("worker1", "worker2")}
    assert all(ran.values()), ran  # both workers got trials
    ids = [t for r in ran.values() for t in r]
    assert sorted(ids) == sorted(frame["trial"])  # every trial finished exactly once, by one worker
    status = {t: s for r in ran.values() for t, s in r.items()}
    assert all(status[t] == s for t, s in zip(frame["trial"], frame["status"]))
    assert "[chief] oracle serving" in outs["chief"] and (tmp_path / "model.keras").is_file()
    assert json.loads((tmp_path / "metrics.json").read_text())["trials"] == 6


def test_an_interrupted_search_resumes_where_it_stopped(tmp_path, monkeypatch):
    """The churn search, stopped (Ctrl-C) in its third trial, then run again with --resume."""
    from tuning import churn as TC

    calls, real_fit = [], TC.ChurnHyperModel.fit

    def fit(self, hp, model, *args, **kwargs):
        calls.append(dict(hp.values))
        if len(calls) == 3 and stop:
            raise KeyboardInterrupt
        return real_fit(self, hp, model, *args, **kwargs)

    monkeypatch.setattr(TC.ChurnHyperModel, "fit", fit)
    args = [
        "--quick",
        "--epochs",
        "1",
        "--max-trials",
        "4",
        "--budget",
        "0",
        "--threads",
        "0",
        "--directory",
        str(tmp_path),
    ]
    stop = True
    with pytest.raises(KeyboardInterrupt):
        TC.main(args)
    trials = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("keras_tuner/trial_*/trial.json"))]
    before = {t["trial_id"]: t["score"] for t in trials if t["status"] == "COMPLETED"}
    assert sorted(before) == ["0", "1"] and not (tmp_path / "trials.csv").exists()

    stop, calls[:] = False, []
    assert TC.main(args + ["--resume"]) == 0
    frame = pd.read_csv(tmp_path / "trials.csv", dtype={"trial": str})
    assert list(frame["trial"]) == ["0", "1", "2", "3"] and (frame["status"] == "COMPLETED").all()
    assert len(calls) == 3  # the interrupted trial 2, trial 3, and the retrained best: 0 and 1 kept
    for tid, score in before.items():
        assert frame.set_index("trial").loc[tid, "val_auc"] == pytest.approx(score)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["trials"] == 4 and 0.5 < m["test_roc_auc"] <= 1


def test_user_errors_are_one_line(capsys):
    from keras_cases import cli
    from tuning import architecture as TA

    base = ["--data", "digits", "--threads", "0"]
    assert cli.run(TA.main, [*base, "--budget", "100"]) == 2
    assert "below the smallest model of every family" in capsys.readouterr().err
    assert cli.run(TA.main, [*base, "--families", "mlp,rnn"]) == 2
    assert "--families 'mlp,rnn'" in capsys.readouterr().err
    assert cli.run(TA.main, [*base, "--distributed", "worker"]) == 2
    assert "--distributed needs --oracle HOST:PORT" in capsys.readouterr().err
    assert cli.run(TA.main, [*base, "--distributed", "worker", "--oracle", "h:1", "--tuner-id", "chief2"]) == 2
    assert "must not contain 'chief'" in capsys.readouterr().err


def test_cv_search_chooses_on_every_fold_and_keeps_the_test_rows_out(tmp_path, monkeypatch):
    """--cv K --repeats R: every trial trains on each fold (fresh weights, early stopping on
    the fold's validation part), its objective is the mean of the held-out folds' scores, the
    report gives the pick's mean ± std and its paired difference with the runner-up; no fold
    ever sees a test row, and each repeat's held-out folds partition the development rows."""
    from tuning import architecture as TA
    from tuning import search

    seen = []
    real = search.fold_arrays

    def spy(args, y_dev, make):
        folds = real(args, y_dev, make)
        seen.append((len(y_dev), folds))
        return folds

    monkeypatch.setattr(TA, "fold_arrays", spy)
    out = tmp_path / "search"
    argv = [
        *TINY,
        "--epochs",
        "5",
        "--families",
        "mlp",
        "--cv",
        "2",
        "--repeats",
        "2",
        "--max-trials",
        "3",
        "--budget",
        "0",
    ]
    assert TA.main([*argv, "--threads", "0", "--directory", str(out)]) == 0
    ((n_dev, folds),) = seen
    assert len(folds) == 4
    for r in (0, 1):  # each repeat's two held-out folds cover the development rows once
        held = np.concatenate([folds[2 * r + i]["y_test"] for i in (0, 1)])
        assert len(held) == n_dev
    for f in folds:
        assert len(f["y_train"]) + len(f["y_val"]) + len(f["y_test"]) == n_dev
    m = json.loads((out / "metrics.json").read_text())
    cv = m["cv"]
    frame = pd.read_csv(out / "trials.csv")
    done = frame[frame["status"] == "COMPLETED"]
    assert cv["folds"] == 4 and len(cv["best_folds"]) == 4
    # the tuner's objective for the chosen configuration is the mean over the held-out folds
    assert done["val_accuracy"].max() == pytest.approx(np.mean(cv["best_folds"]), abs=1e-6)
    # digits, 10 classes: chance is 0.10 (± 0.02 on a 200-row fold); the search draws low learning
    # rates too, so the bar is what every trained pick cleared, not what a good one reaches
    assert cv["best_mean"] > 0.15
    assert cv["vs_runner_up"]["verdict"] in ("better", "not distinguishable")  # the pick is never worse
    assert cv["vs_runner_up"]["low"] <= cv["vs_runner_up"]["diff"] <= cv["vs_runner_up"]["high"]
    assert "chosen on 4 held-out folds (--cv)" in (out / "report.md").read_text()
