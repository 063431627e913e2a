"""What a forecasting run reports: metrics.json's numbers, the tables, scaler.json, the
forecast plot and the report's notes and sections. No Keras."""

from __future__ import annotations

import numpy as np

from keras_cases import plots
from keras_cases.runs import markdown_table

COLUMNS = ["model", "val_mae", "test_mae", "test_rmse", "test_mase"]  # printed; the report adds "epochs"


def dataset_name(pooled, csv) -> str:
    names = pooled.names
    return pooled.series[0].name if len(names) == 1 else f"{len(names)} series from {csv} ({', '.join(names)})"


def features(pooled) -> list[str]:
    columns = pooled.series[0].columns
    return columns if len(pooled.series) == 1 else ["<the series>", *columns[1:]]


def describe(pooled, csv) -> str:
    """The one line printed before training: what is forecast from what."""
    c = pooled.counts
    return (
        f"{dataset_name(pooled, csv)}: {sum(len(y) for y in pooled.targets)} rows, features "
        f"{', '.join(features(pooled))}; lookback {pooled.lookback}, horizon {pooled.horizon}, season "
        f"{pooled.season}; windows {c['train']} train / {c['val']} val / {c['test']} test"
    )


def collect_metrics(args, pooled, results: dict, best: str, by_series: dict, preds: dict) -> dict:
    """metrics.json: the split, the geometry, the best network's test scores at the top
    level (chosen on validation), every model's scores under `models`, and the chosen
    network against Ridge and seasonal naive (`versus_ridge`)."""
    preps, several = pooled.preps, len(pooled.series) > 1
    metrics = {
        "dataset": dataset_name(pooled, args.csv),
        "n_series": len(pooled.series),
        "n_train": pooled.counts["train"],
        "n_val": pooled.counts["val"],
        "n_test": pooled.counts["test"],
        "seed": args.seed,
        "seeds": args.seeds,
        "quick": args.quick,
        "train_rows": sum(p["split"].train_end for p in preps),
        "val_rows": sum(p["split"].val_end - p["split"].train_end for p in preps),
        "test_rows": sum(p["split"].n - p["split"].val_end for p in preps),
        "lookback": pooled.lookback,
        "horizon": pooled.horizon,
        "season": pooled.season,
        "features": features(pooled),
        "future_features": pooled.future,
        "mase_scale": pooled.scales if several else pooled.scales[0],
        "best_model": best,
        **{k: results[best][f"test_{k}"] for k in ("mae", "rmse", "mase")},
        "seasonal_naive_test_mase": results["seasonal_naive"]["test_mase"],
        "beats_seasonal_naive": bool(results[best]["test_mase"] < results["seasonal_naive"]["test_mase"]),
        "ridge_test_mase": results["ridge"]["test_mase"],
        "beats_ridge": bool(results[best]["test_mase"] < results["ridge"]["test_mase"]),
        "versus_ridge": versus_ridge(pooled, preds, results, best, by_series, args.eval_stride),
        "models": results,
    }
    if several:  # the first seed's per-series scores
        metrics["series"] = {n: {name: each[i] for name, each in by_series.items()} for i, n in enumerate(pooled.names)}
        metrics["per_series_choice"] = per_series_choice(by_series[best], by_series["seasonal_naive"], pooled.names)
    return metrics


def per_series_choice(network: list[dict], naive: list[dict], names: list[str]) -> dict:
    """Each series forecast by the chosen network or by seasonal naive, whichever has the lower
    validation MASE on that series (the network's first seed, or its ensemble): the picks and the
    test MASE of the combination (mean over series) beside the network's alone."""
    picks = {
        n: "network" if a["val_mase"] <= b["val_mase"] else "seasonal_naive" for n, a, b in zip(names, network, naive)
    }
    test = [(a if picks[n] == "network" else b)["test_mase"] for n, a, b in zip(names, network, naive)]
    return {
        "picks": picks,
        "test_mase": float(np.mean(test)),
        "network_test_mase": float(np.mean([a["test_mase"] for a in network])),
    }


def origin_blocks(truth, forecast, scale: float, size: int) -> np.ndarray:
    """Each forecast origin's MASE (MAE over its horizon / scale), averaged over consecutive
    blocks of `size` origins (one horizon of time: a day by default; the last block may be short)."""
    per_origin = np.mean(np.abs(np.asarray(forecast, "float64") - truth), axis=1) / scale
    return np.array([b.mean() for b in np.split(per_origin, np.arange(size, len(per_origin), size))])


def versus_ridge(pooled, preds: dict, results: dict, best: str, by_series: dict, eval_stride: int) -> dict:
    """The chosen network against Ridge as paired differences in test MASE (Ridge minus the
    network: > 0 means the network is better): over seeds (Ridge has no seed), and over blocks
    of test forecast origins, one horizon of time each, of every series (first seed); and the
    network against seasonal naive on each series (mean over seeds)."""
    from keras_cases.protocol import paired

    net = results[best]["test_mase_per_seed"]
    size = max(1, pooled.horizon // eval_stride)
    blocks = {
        name: np.concatenate(
            [
                origin_blocks(t["test"], f["test"], sc, size)
                for t, f, sc in zip(pooled.truth, preds[name], pooled.scales)
            ]
        )
        for name in ("ridge", best)
    }
    series = np.mean(results[best]["series_test_mase_per_seed"], axis=0)
    naive = [e["test_mase"] for e in by_series["seasonal_naive"]]
    pair = lambda a, b: {k: (None if v != v else v) for k, v in paired(a, b, 1, 0).items()}  # noqa: E731  (NaN -> null)
    return {
        "network": best,
        "seeds": {"n": len(net), **pair([results["ridge"]["test_mase"]] * len(net), net)},
        "blocks": {"n": len(blocks[best]), "origins_per_block": size, **pair(blocks["ridge"], blocks[best])},
        "series_test_mase": dict(zip(pooled.names, map(float, series))),
        "beats_seasonal_naive_on_every_series": bool(np.all(series < np.asarray(naive))),
    }


def versus_section(m: dict) -> str:
    """The paired comparison with Ridge, and the per-series check against seasonal naive."""
    interval = lambda r: "-" if r["low"] is None else f"[{r['low']:+.4f}, {r['high']:+.4f}]"  # noqa: E731
    v = m["versus_ridge"]
    rows = [
        (f"over {v['seeds']['n']} seed" + "s" * (v["seeds"]["n"] > 1), v["seeds"]),
        (
            f"over {v['blocks']['n']} blocks of {v['blocks']['origins_per_block']} test origins (first seed)",
            v["blocks"],
        ),
    ]
    lines = [
        "| paired over | Ridge minus network, test MASE | 95% interval (t) | network vs Ridge |",
        "|---|---|---|---|",
        *[f"| {what} | {r['diff']:+.4f} | {interval(r)} | {r['verdict']} |" for what, r in rows],
    ]
    every = "beats" if v["beats_seasonal_naive_on_every_series"] else "does NOT beat"
    several = f" It {every} seasonal naive on every series (test MASE, mean over seeds)." if m["n_series"] > 1 else ""
    if "per_series_choice" in m:
        c = m["per_series_choice"]
        naive = [n for n, pick in c["picks"].items() if pick != "network"]
        several += (
            f" Choosing per series on validation between it and seasonal naive picks seasonal naive for "
            f"{', '.join(naive) or 'no series'}: test MASE {c['test_mase']:.3f} (the network alone, first seed: "
            f"{c['network_test_mase']:.3f})."
        )
    return f"""The validation-chosen network, **{v["network"]}**, against Ridge (positive: the network's
test MASE is lower). Seeds vary only the network's training; blocks of consecutive forecast
origins (one horizon of time each) vary the test period, taken as independent.{several}

""" + "\n".join(lines)


def result_rows(results: dict) -> list[dict]:
    """One row per model; a network's cells are mean ± std over seeds when there are several."""

    def cell(r, k, v):
        f = "{:.1f}" if k in ("epochs", "train_seconds") else "{:.4f}"
        return f"{f.format(v)} ± {f.format(r[k + '_std'])}" if k + "_std" in r else v

    return [{"model": name, **{k: cell(r, k, v) for k, v in r.items()}} for name, r in results.items()]


def series_table(by_series: dict, names: list[str]) -> str:
    """Each series' test MASE per model (first seed); empty for a single series."""
    if len(names) < 2:
        return ""
    rows = [{"series": n, **{m: f"{by_series[m][i]['test_mase']:.3f}" for m in by_series}} for i, n in enumerate(names)]
    return markdown_table(rows, list(rows[0]))


def write_scaler(run, pooled) -> None:
    """scaler.json: each series' training mean and std per column, and the window geometry."""
    run.write_json(
        "scaler.json",
        {
            "series": [
                {"name": n, "columns": s.columns, "mean": p["scaler"].mean, "std": p["scaler"].std}
                for n, s, p in zip(pooled.names, pooled.series, pooled.preps)
            ],
            "lookback": pooled.lookback,
            "horizon": pooled.horizon,
        },
    )


def plot_forecasts(pooled, preds: dict, shown, path) -> None:
    """Four test windows spread over the test split (one series), or the middle test window
    of up to four series; the history shown is up to two horizons back."""
    starts, series, H = pooled.starts, pooled.series, pooled.horizon
    if len(series) == 1:
        picks = [(0, int(i)) for i in np.linspace(0, len(starts[0]["test"]) - 1, 4).astype(int)]
    else:
        picks = [(i, len(starts[i]["test"]) // 2) for i in range(min(4, len(series)))]
    back = min(pooled.lookback, 2 * H)
    windows = []
    for i, j in picks:
        t = starts[i]["test"][j]
        window = slice(t - back, t + H)
        windows.append(
            (
                series[i].time[window],
                pooled.targets[i][window],
                {n: preds[n][i]["test"][j] for n in shown},
                pooled.names[i],
            )
        )
    plots.forecast_windows(windows, path, ylabel=series[0].columns[0] if len(series) == 1 else "value")


def notes(m: dict) -> list[str]:
    """The report header's case lines (below the shared data / backend / seeds lines)."""
    several = m["n_series"] > 1
    scale = (
        (
            f"MASE = MAE / {m['mase_scale']:.4f}, the in-sample MAE"
            if not several
            else "MASE = MAE / (each series' in-sample MAE"
        )
        + f" of the {m['season']}-step seasonal-naive forecast on the training rows"
        + (")" if several else "")
    )
    ahead = m.get("future_features") or []
    known = f";\n  and over the next {m['horizon']} steps (known ahead): {', '.join(ahead)}" if ahead else ""
    out = [
        f"inputs: the previous {m['lookback']} steps of {', '.join(m['features'])}{known}; "
        f"output: the next {m['horizon']} steps",
        f"chronological split on rows: {m['train_rows']} train / {m['val_rows']} validation / {m['test_rows']} test;\n"
        f"  forecast windows {m['n_train']} / {m['n_val']} / {m['n_test']}; scaling fit on the training rows only",
        scale,
        "networks: mean ± std over seeds; plots show the first seed",
    ]
    if several:
        out.append(
            f"""{m["n_series"]} series, each split chronologically and scaled by its own training rows; one global
  network (and one Ridge model) is trained on the windows of all of them. Table values are means
  over series (MASE is unit-free; MAE and RMSE mix each series' own units)."""
        )
    return out


def result_section(m: dict, table: str, trained: bool, series_table: str = "") -> str:
    verdict = "beats" if m["beats_seasonal_naive"] else "does NOT beat"
    versus = "beats" if m["beats_ridge"] else "does NOT beat"
    curves = "\n![learning curves](learning_curves.png)\n" if trained else ""
    per_series = "" if not series_table else f"\nTest MASE per series (first seed):\n\n{series_table}\n"
    return f"""Best network on validation MASE: **{m["best_model"]}**, test MAE {m["mae"]:.4f}, RMSE {m["rmse"]:.4f},
MASE **{m["mase"]:.3f}**; it {verdict} seasonal naive (test MASE {m["seasonal_naive_test_mase"]:.3f}) and
{versus} Ridge (test MASE {m["ridge_test_mase"]:.3f}).

{table}
{per_series}
`seasonal_naive` repeats the value one season ({m["season"]} steps) back; `naive_day` (where present)
the value a day back; `ridge` is scikit-learn Ridge (alpha 1) on the flattened, scaled inputs the
networks get (the lag window, and the known columns of the forecast steps where there are any:
then `ridge_lags` is Ridge on the lag window alone). `<network>_ensemble` averages the forecasts
of its seeds' models; it competes with the single network on validation.
The linear family: `dlinear` splits the window into a moving-average trend and the remainder, one
linear head each; `nbeats` is generic N-BEATS (residual MLP blocks: each subtracts its backcast
from its input and adds its forecast to the sum); `*_skip` adds a linear map of the whole window
to the network's forecast. The linear parts start at Ridge's solution on the training windows
and are kept there; the network branch starts at 0 and learns what Ridge misses.
The test split was scored once, after every choice was made on validation.

{versus_section(m)}

![test forecasts](forecasts.png)
{curves}"""
