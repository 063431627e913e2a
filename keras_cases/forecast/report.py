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


def collect_metrics(args, pooled, results: dict, best: str, by_series: dict) -> dict:
    """metrics.json: the split, the geometry, the best network's test scores at the top
    level (chosen on validation), every model's scores under `models`."""
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
        "mase_scale": pooled.scales if several else pooled.scales[0],
        "best_model": best,
        **{k: results[best][f"test_{k}"] for k in ("mae", "rmse", "mase")},
        "seasonal_naive_test_mase": results["seasonal_naive"]["test_mase"],
        "beats_seasonal_naive": bool(results[best]["test_mase"] < results["seasonal_naive"]["test_mase"]),
        "models": results,
    }
    if several:  # the first seed's per-series scores
        metrics["series"] = {n: {name: each[i] for name, each in by_series.items()} for i, n in enumerate(pooled.names)}
    return metrics


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
    out = [
        f"inputs: the previous {m['lookback']} steps of {', '.join(m['features'])}; output: the next {m['horizon']} steps",
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
    curves = "\n![learning curves](learning_curves.png)\n" if trained else ""
    per_series = "" if not series_table else f"\nTest MASE per series (first seed):\n\n{series_table}\n"
    return f"""Best network on validation MASE: **{m["best_model"]}**, test MAE {m["mae"]:.4f}, RMSE {m["rmse"]:.4f},
MASE **{m["mase"]:.3f}**; it {verdict} seasonal naive (test MASE {m["seasonal_naive_test_mase"]:.3f}).

{table}
{per_series}
`seasonal_naive` repeats the value one season ({m["season"]} steps) back; `naive_day` (where present)
the value a day back; `ridge` is scikit-learn Ridge (alpha 1) on the flattened, scaled lag window.
The test split was scored once, after every choice was made on validation.

![test forecasts](forecasts.png)
{curves}"""
