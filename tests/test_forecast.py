"""Forecasting: windows, the chronological split, seasonal naive and MASE, train-only
scaling, a quick run on every backend, and one-line errors for a bad CSV."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import check, execute_notebook, run_python

from keras_cases import UserError
from keras_cases.forecast import baselines, case, data, models, report, windows

LINEAR_FAMILY = str(Path(__file__).parent / "scripts" / "forecast_linear_family.py")  # one subprocess per backend


def test_windows_have_the_right_shapes_and_values():
    n, L, H = 100, 7, 3
    values = np.stack([np.arange(n), 100 + np.arange(n)], axis=1).astype("float64")
    starts = np.array([7, 20, 97])
    x, y = windows.make_windows(values, values[:, 0], starts, L, H)
    assert x.shape == (3, L, 2) and y.shape == (3, H)
    np.testing.assert_array_equal(x[1, :, 0], np.arange(13, 20))  # the L steps before t = 20
    np.testing.assert_array_equal(x[1, :, 1], 100 + np.arange(13, 20))
    np.testing.assert_array_equal(y[1], [20, 21, 22])
    np.testing.assert_array_equal(y[2], [97, 98, 99])


def test_known_future_columns_follow_the_window_and_the_target_is_hidden():
    n, L, H = 60, 7, 3
    values = np.stack([np.arange(n), 100 + np.arange(n), 200 + np.arange(n)], axis=1).astype("float32")
    starts = np.array([7, 20, 57])
    x, _ = windows.make_windows(values, values[:, 0], starts, L, H)
    z = windows.with_future(x, values, starts, H, known=[2])
    assert z.shape == (3, L + H, 3)
    np.testing.assert_array_equal(z[:, :L], x)  # the lag window, unchanged
    np.testing.assert_array_equal(z[1, L:, 2], [220, 221, 222])  # the known column at the targets' steps
    np.testing.assert_array_equal(z[2, L:, 2], [257, 258, 259])  # up to the series' last row
    assert not z[:, L:, :2].any()  # the target (and the unknown column) hidden: 0, the training mean
    assert windows.with_future(x, values, starts, H, known=[]) is x
    s = data.load_elecdemand()
    assert data.future_columns(s, "auto") == ["temperature", "work_day", "tod_sin", "tod_cos", "dow_sin", "dow_cos"]
    assert data.future_columns(s, "none") == []
    assert data.future_columns(s, "work_day") == ["work_day", "tod_sin", "tod_cos", "dow_sin", "dow_cos"]
    with pytest.raises(UserError, match="--future wind: not an input feature"):
        data.future_columns(s, "wind")


def test_seed_ensemble_averages_the_seeds_forecasts():
    class P:
        def scores(self, forecasts):
            return {"val_mase": float(forecasts[0]["val"].mean()), "test_mase": float(forecasts[0]["test"].mean())}, [
                {"test_mase": float(forecasts[0]["test"].mean())}
            ]

    every = [[{"val": np.full((2, 3), v), "test": np.full((2, 3), 2 * v)}] for v in (1.0, 2.0, 6.0)]
    result, forecasts, each = models.seed_ensemble(every, P())
    np.testing.assert_allclose(forecasts[0]["val"], 3.0)
    np.testing.assert_allclose(forecasts[0]["test"], 6.0)
    assert result["ensemble_of"] == 3 and result["test_mase_per_seed"] == [6.0] and each == [{"test_mase": 6.0}]


def test_split_is_chronological_without_leakage():
    n, L, H = 1000, 48, 12
    split = windows.chronological_split(n)
    assert split.train_end == 700 and split.val_end == 850
    parts = {p: windows.window_starts(split, p, L, H, stride=1) for p in ("train", "val", "test")}
    target_rows = {p: (s.min(), s.max() + H - 1) for p, s in parts.items()}
    assert target_rows["train"][1] < split.train_end <= target_rows["val"][0]
    assert target_rows["val"][1] < split.val_end <= target_rows["test"][0]
    assert target_rows["test"][1] == n - 1 and parts["train"].min() == L
    # every test target comes after every training (and validation) target
    assert target_rows["test"][0] > target_rows["val"][1] > target_rows["train"][1]


def test_seasonal_naive_and_mase_on_a_hand_made_series():
    season = 4
    y = np.array([1.0, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6, 4, 5, 6, 7])
    # forecast origin t = 8, horizon 6: y[8 + h - 4] for h < 4, then y[8 + h - 8]
    np.testing.assert_array_equal(baselines.seasonal_naive(y, [8], 6, season)[0], [2, 3, 4, 5, 2, 3])
    # in-sample seasonal-naive MAE on the first 12 rows: every step is +1 over one season
    assert baselines.mase_scale(y, 12, season) == pytest.approx(1.0)
    assert baselines.mase_scale(np.array([0, 0, 0, 0, 0, 0, 3, 0.0]), 8, 2) == pytest.approx(3 / 6)
    m = baselines.forecast_metrics(np.array([[4.0, 5, 6, 7]]), np.array([[3.0, 4, 5, 6]]), scale=0.5)
    assert m == {"mae": 1.0, "rmse": 1.0, "mase": 2.0}
    with pytest.raises(UserError):
        baselines.seasonal_naive(y, [2], 2, season)  # not a season of history yet


def test_scaler_is_fit_on_training_rows_only():
    values = np.concatenate([np.zeros((70, 2)), 1000 * np.ones((30, 2))])
    values[:70, 0] = np.arange(70)
    scaler = windows.fit_scaler(values, 70)
    assert scaler.mean[0] == pytest.approx(34.5) and scaler.std[0] == pytest.approx(np.arange(70).std())
    assert scaler.mean[1] == 0 and scaler.std[1] == 1  # constant on train: left unscaled
    z = scaler.transform(values)
    assert abs(z[:70, 0].mean()) < 1e-12 and z[-1, 1] == 1000
    np.testing.assert_allclose(scaler.inverse_target(z[:, 0]), values[:, 0])


def test_elecdemand_loads_with_calendar_features():
    s = data.load_elecdemand()
    assert s.values.shape == (17520, 7) and s.columns[:3] == ["demand", "temperature", "work_day"]
    assert s.step == pd.Timedelta("30min") and s.time[48] == pd.Timestamp("2014-01-02")


def test_quick_run_on_every_backend(backend, tmp_path):
    p = check(
        run_python(
            ["-m", "keras_cases.forecast", "--quick", "--epochs", "2", "--out", str(tmp_path), "-v", "0"],
            backend=backend,
        )
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    quick = case.QUICK_MODELS.split(",")  # --quick trains one network of each family
    assert m["backend"] == backend and m["best_model"] in quick
    for k in ("keras_version", "dataset", "n_train", "n_val", "n_test", "seconds", "seed"):
        assert k in m, k
    assert set(m["models"]) == {"naive_day", "seasonal_naive", "ridge", "ridge_lags", *quick}
    assert {"dlinear", "nbeats", "lstm_skip", "transformer_skip", "nbeats_skip"} <= set(models.MODELS)
    assert m["future_features"][:2] == ["temperature", "work_day"]  # known ahead: Ridge gets them too
    best = m["models"][m["best_model"]]
    assert best["val_mase"] == min(m["models"][k]["val_mase"] for k in quick)  # chosen on validation
    v = m["versus_ridge"]
    assert v["network"] == m["best_model"] and v["seeds"]["n"] == 1 and v["blocks"]["n"] >= 4
    assert m["beats_ridge"] == (m["mase"] < m["models"]["ridge"]["test_mase"])
    assert m["mase"] == best["test_mase"] and np.isfinite(m["mase"]) and m["mase"] > 0
    for name in (
        *[f"{k}.keras" for k in quick],
        "report.md",
        "forecasts.png",
        "learning_curves.png",
        "history.csv",
        "scaler.json",
        "config.json",
    ):
        assert (tmp_path / name).is_file(), name
    h = pd.read_csv(tmp_path / "history.csv")
    assert set(h.model) == set(quick) and "val_loss" in h
    text = (tmp_path / "report.md").read_text()
    assert "forecasts.png" in text and "Ridge minus network" in text and "test_mase" in p.stdout
    assert "known ahead" in text
    for k in quick:
        assert f"| {k} |" in text and f"| {k} |" in p.stdout, k


@pytest.fixture(scope="module")
def linear_family(tmp_path_factory):
    """tests/scripts/forecast_linear_family.py's results, run once per backend."""
    done = {}

    def on(backend):
        if backend not in done:
            out = tmp_path_factory.mktemp(f"linear_{backend}")
            check(run_python([LINEAR_FAMILY, str(out)], backend=backend))
            done[backend] = json.loads((out / "checks.json").read_text())
        return done[backend]

    return on


def test_dlinear_decomposition_is_a_numpy_moving_average(backend, linear_family):
    for kernel, r in linear_family(backend)["moving_average"].items():
        assert r["shape"] == [4, 30, 3], kernel  # the trend keeps the window's length
        assert r["trend"] < 1e-5 and r["sum"] < 1e-6, (kernel, r)  # trend + remainder = the window


def test_dlinear_with_least_squares_heads_is_ridge_alpha_0(backend, linear_family):
    r = linear_family(backend)
    assert r["dlinear_vs_ridge0"] < 1e-4 * r["dlinear_ridge0_scale"]  # predictions of size ~4
    assert r["dlinear_saved"] < 1e-6  # the moving average survives model.keras


def test_nbeats_blocks_subtract_backcasts_and_sum_forecasts(backend, linear_family):
    r = linear_family(backend)["nbeats"]
    assert r["shape"] == [300, 3] and r["backcast_shape"] == [12 * 2]  # a backcast of the whole window
    assert r["error"] < 1e-5 * max(1.0, r["scale"]), r  # the block chain written out in NumPy


def test_linear_skip_with_a_silent_network_is_its_linear_part(backend, linear_family):
    r = linear_family(backend)
    for kind, k in r["skip"].items():
        assert k["zero_branch"] < 1e-5 and k["sum"] < 1e-5 * max(1.0, k["branch_scale"]), (kind, k)
        assert k["branch_scale"] > 0.05, (kind, k)  # the branch is not silent until set to 0
        assert k["start_at_ridge"] == [True, pytest.approx(0, abs=1e-4), False, True], (kind, k)
    assert r["no_linear_part"] == [False, False]


def test_paired_blocks_and_versus_ridge_on_hand_made_forecasts():
    truth = np.zeros((10, 4))
    # origin i's absolute error is i on every step; blocks of 4 origins: 0-3, 4-7, 8-9
    np.testing.assert_allclose(
        report.origin_blocks(truth, np.arange(10.0)[:, None] + truth, 2.0, 4), [0.75, 2.75, 4.25]
    )

    class P:  # one series, horizon 8, two days of test origins
        horizon, names, scales = 8, ["s"], [1.0]
        truth = [{"test": np.zeros((16, 8))}]

    preds = {"ridge": [{"test": np.ones((16, 8))}], "nbeats": [{"test": np.full((16, 8), 0.5)}]}
    results = {
        "ridge": {"test_mase": 1.0},
        "nbeats": {"test_mase_per_seed": [0.4, 0.5, 0.6], "series_test_mase_per_seed": [[0.4], [0.5], [0.6]]},
    }
    v = report.versus_ridge(P, preds, results, "nbeats", {"seasonal_naive": [{"test_mase": 0.45}]}, eval_stride=2)
    assert v["seeds"]["diff"] == pytest.approx(0.5) and v["seeds"]["verdict"] == "better"
    assert v["blocks"]["n"] == 4 and v["blocks"]["diff"] == pytest.approx(0.5)  # 4 origins per block
    assert v["series_test_mase"] == {"s": pytest.approx(0.5)} and not v["beats_seasonal_naive_on_every_series"]


def test_per_series_choice_between_network_and_seasonal_naive_is_made_on_validation():
    net = [{"val_mase": 0.5, "test_mase": 0.9}, {"val_mase": 0.7, "test_mase": 0.4}]
    naive = [{"val_mase": 0.6, "test_mase": 0.1}, {"val_mase": 0.6, "test_mase": 0.8}]
    c = report.per_series_choice(net, naive, ["a", "b"])  # the test MASE never decides
    assert c["picks"] == {"a": "network", "b": "seasonal_naive"}
    assert c["test_mase"] == pytest.approx((0.9 + 0.8) / 2) and c["network_test_mase"] == pytest.approx(0.65)


def test_model_list_flag():
    assert case.networks("all") == list(models.MODELS) and case.networks("nbeats, dlinear") == ["nbeats", "dlinear"]
    with pytest.raises(UserError, match="unknown model 'gru'"):
        case.networks("lstm,gru")


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("csv")
    t = pd.date_range("2024-01-01", periods=24 * 7 * 12, freq="h")
    hours = np.arange(len(t))
    load = 10 + np.sin(2 * np.pi * hours / 24) + 0.1 * np.random.default_rng(0).normal(size=len(t))
    good = pd.DataFrame({"when": t.astype(str), "load": load, "temp": 20 + np.cos(2 * np.pi * hours / 24)})
    good.to_csv(d / "good.csv", index=False)
    bad = good.astype({"load": object})
    bad.loc[5, "load"] = "n/a?"
    bad.to_csv(d / "text.csv", index=False)
    good.iloc[:200].to_csv(d / "short.csv", index=False)
    # several series: wide (a second target column on another scale) and long (a site column,
    # rows shuffled, the two sites of different lengths)
    wide = good.assign(load2=100 + 5 * np.cos(2 * np.pi * hours / 24) + np.random.default_rng(1).normal(size=len(t)))
    wide.to_csv(d / "wide.csv", index=False)
    long = pd.concat(
        [
            good.assign(site="a"),
            wide.iloc[24 * 7 :].drop(columns="load").rename(columns={"load2": "load"}).assign(site="b"),
        ]
    )
    long.sample(frac=1.0, random_state=0).to_csv(d / "long.csv", index=False)
    daily = long[long.site == "b"].iloc[::24].assign(site="c")
    pd.concat([long, daily]).to_csv(d / "mixed_steps.csv", index=False)
    return d


@pytest.mark.parametrize(
    "args, message",
    [
        (["--csv", "{d}/good.csv", "--time-column", "when", "--target", "demand"], "no target column 'demand'"),
        (
            ["--csv", "{d}/good.csv", "--time-column", "when", "--target", "load", "--features", "temp,wind"],
            "no feature column 'wind'",
        ),
        (["--csv", "{d}/text.csv", "--time-column", "when", "--target", "load"], "must be numeric"),
        (["--csv", "{d}/short.csv", "--time-column", "when", "--target", "load"], "too short"),
        (["--csv", "{d}/missing.csv", "--time-column", "when", "--target", "load"], "not found"),
        (["--csv", "{d}/good.csv", "--target", "load"], "needs --time-column"),
        (
            ["--csv", "{d}/long.csv", "--time-column", "when", "--target", "load", "--series-column", "shop"],
            "no series column 'shop'",
        ),
        (
            ["--csv", "{d}/wide.csv", "--time-column", "when", "--target", "load,load2", "--series-column", "site"],
            "not both",
        ),
        (["--series-column", "site"], "go with --csv"),
        (
            ["--csv", "{d}/mixed_steps.csv", "--time-column", "when", "--target", "load", "--series-column", "site"],
            "different time steps",
        ),
    ],
)
def test_bad_csv_is_one_line_and_exit_code_2(csv_files, args, message, capsys):
    from keras_cases import cli

    code = cli.run(case.main, [a.format(d=csv_files) for a in args] + ["--out", str(csv_files / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_own_csv_series_loads_and_windows(csv_files):
    [s] = data.load_csv(csv_files / "good.csv", "when", "load", "temp")
    assert s.columns[:2] == ["load", "temp"] and s.step == pd.Timedelta("1h")
    assert data.default_geometry(s.step) == (168, 24, 168)


def test_several_series_load_wide_and_long(csv_files):
    good = pd.read_csv(csv_files / "wide.csv")
    a, b = data.load_csv(csv_files / "wide.csv", "when", "load, load2", "temp")
    assert (a.key, b.key) == ("load", "load2") and a.columns[1] == b.columns[1] == "temp"
    np.testing.assert_allclose(a.target, good["load"])
    np.testing.assert_allclose(b.target, good["load2"])
    np.testing.assert_allclose(a.values[:, 1], b.values[:, 1])  # the shared feature
    # long format: rows of each site gathered and put in time order, lengths may differ
    a, b = data.load_csv(csv_files / "long.csv", "when", "load", "temp", series_column="site")
    assert (a.key, b.key) == ("a", "b") and len(a.target) == len(good) and len(b.target) == len(good) - 24 * 7
    np.testing.assert_allclose(a.target, good["load"])
    np.testing.assert_allclose(b.target, good["load2"].iloc[24 * 7 :])
    assert a.time.is_monotonic_increasing and b.time[0] == pd.Timestamp(good["when"][24 * 7])


def test_several_series_at_once_one_global_model(csv_files, tmp_path):
    check(
        run_python(
            [
                "-m",
                "keras_cases.forecast",
                "--csv",
                str(csv_files / "long.csv"),
                "--time-column",
                "when",
                "--target",
                "load",
                "--series-column",
                "site",
                "--model",
                "conv1d",
                "--epochs",
                "2",
                "--out",
                str(tmp_path),
                "-v",
                "0",
            ]
        )
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["n_series"] == 2 and set(m["series"]) == {"a", "b"}
    assert set(m["per_series_choice"]["picks"]) == {"a", "b"}
    # each series' baseline is computed on that series alone (no window crosses series) ...
    args = case.make_parser().parse_args([])
    for key, s in zip("ab", data.load_csv(csv_files / "long.csv", "when", "load", None, series_column="site")):
        prep = windows.prepare(s, args)
        truth = windows.make_windows(s.target[:, None], s.target, prep["starts"]["test"], 168, 24)[1]
        naive = baselines.seasonal_naive(s.target, prep["starts"]["test"], 24, 168)
        scale = baselines.mase_scale(s.target, prep["split"].train_end, 168)
        want = baselines.forecast_metrics(truth, naive, scale)["mase"]
        assert m["series"][key]["seasonal_naive"]["test_mase"] == pytest.approx(want)
    # ... and the table is the mean over series
    for name in ("seasonal_naive", "ridge", "conv1d"):
        mean = np.mean([m["series"][k][name]["test_mase"] for k in "ab"])
        assert m["models"][name]["test_mase"] == pytest.approx(mean)
    assert m["n_test"] == sum(
        len(windows.prepare(s, args)["starts"]["test"])
        for s in data.load_csv(csv_files / "long.csv", "when", "load", None, series_column="site")
    )
    report = (tmp_path / "report.md").read_text()
    assert "2 series" in report and "Test MASE per series" in report and (tmp_path / "forecasts.png").is_file()


def test_notebook_runs(tmp_path):
    nb, _ = execute_notebook("forecast.ipynb", tmp_path)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["best_model"] == "conv1d" and "seasonal_naive" in m["models"]
