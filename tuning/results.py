"""A finished search's results (see `tuning.search`): the trials table, the Pareto plot,
the best configuration retrained once, and the files written."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from keras_cases import UserError, plots, runtime
from keras_cases.runs import atomic, markdown_table, report_header, write_text
from tuning.hypermodel import reason


def trials_frame(tuner, hypermodel) -> pd.DataFrame:
    """One row per trial: id, status, hyperparameters, parameters, objective, seconds."""
    space = tuner.oracle.get_space().space
    rows, names = [], [hp.name for hp in space]
    for tid, t in sorted(tuner.oracle.trials.items()):
        config = hypermodel.configure(t.hyperparameters.copy())
        params = hypermodel.count(config)
        m = t.metrics

        def metric(name):
            return m.get_best_value(name) if m.exists(name) else np.nan

        values = {k: round(v, 6) if isinstance(v, float) else v for k, v in t.hyperparameters.values.items()}
        rows.append(
            {
                "trial": tid,
                "status": t.status,
                "group": hypermodel.group(config),
                **{n: values.get(n) for n in names},
                **{k: v for k, v in values.items() if k not in names},
                "params": params,
                "within_budget": not hypermodel.over_budget(params),
                hypermodel.objective: metric(hypermodel.objective),
                "seconds": metric("seconds"),
                "epochs": metric("epochs"),
                "note": reason(t.message) if t.message else "",
            }
        )
    frame = pd.DataFrame(rows)
    for hp in space:  # integer hyperparameters stay integers where a trial has none
        if hp.__class__.__name__ == "Int":
            frame[hp.name] = frame[hp.name].astype("Int64")
    return frame


def pareto_plot(frame: pd.DataFrame, hypermodel, path, title=""):
    done = frame[frame["status"] == "COMPLETED"]
    groups = {
        g: (d["params"].to_numpy(), d[hypermodel.objective].to_numpy()) for g, d in done.groupby("group", sort=True)
    }
    rejected = frame.loc[~frame["within_budget"], "params"].to_numpy()
    return plots.pareto(
        groups,
        path,
        "parameters",
        hypermodel.objective.replace("_", " "),
        title,
        vline=hypermodel.budget or None,
        rejected=rejected,
        logx=True,
    )


def retrain_best(tuner, hypermodel, x, y, validation_data, *, epochs, batch_size, verbose):
    """The best configuration (on validation) built fresh and trained once more, with the
    same seed, epochs and early stopping as its trial. Returns (model, hp, fit result)."""
    done = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    if not done:
        raise UserError(
            "no trial completed: every proposal was over budget or crashed; "
            "raise --budget or --max-trials (see trials.csv)"
        )
    hp = tuner.get_best_hyperparameters(1)[0]
    keras.utils.clear_session()
    model = hypermodel.build(hp)
    result = hypermodel.fit(
        hp,
        model,
        x,
        y,
        validation_data=validation_data,
        epochs=epochs,
        batch_size=batch_size,
        verbose=verbose,
        cv=False,
    )
    return model, hp, result


def cv_summary(tuner, hypermodel) -> dict | None:
    """With --cv: the chosen configuration's held-out scores over the folds (mean ± std) and
    its paired difference with the runner-up (corrected resampled t interval): whether the
    search could tell its pick from the next best. None without --cv."""
    if not hypermodel.cv_folds:
        return None
    from keras_cases import protocol
    from tuning.hypermodel import config_key

    done = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    ranked = sorted(
        {config_key(t.hyperparameters.values) for t in done} & set(hypermodel.fold_scores),
        key=lambda k: np.mean(hypermodel.fold_scores[k]),
        reverse=hypermodel.direction == "max",
    )
    if not ranked:
        return None
    f = hypermodel.cv_folds[0]
    n_train, n_test = len(f["y_train"]) + len(f["y_val"]), len(f["y_test"])
    best = hypermodel.fold_scores[ranked[0]]
    out = {
        "folds": len(best),
        "best": json.loads(ranked[0]),
        "best_mean": float(np.mean(best)),
        "best_std": float(np.std(best, ddof=1)) if len(best) > 1 else 0.0,
        "best_folds": best,
    }
    if len(ranked) > 1:
        out["runner_up"] = json.loads(ranked[1])
        out["vs_runner_up"] = protocol.paired(best, hypermodel.fold_scores[ranked[1]], n_train, n_test)
    return out


def cv_notes(cv: dict | None, objective: str) -> list[str]:
    if not cv:
        return []
    line = f"chosen on {cv['folds']} held-out folds (--cv): {objective} {cv['best_mean']:.4f} ± {cv['best_std']:.4f}"
    if "vs_runner_up" in cv:
        d = cv["vs_runner_up"]
        line += (
            f";\n  against the runner-up `{json.dumps(cv['runner_up'])}` {d['diff']:+.4f} "
            f"[{d['low']:+.4f}, {d['high']:+.4f}] (95%, corrected resampled t): {d['verdict']}"
        )
    return [line]


def write_results(directory, tuner, hypermodel, frame, model, hp, result, test_metrics, info, args, title):
    """trials.csv, pareto.png, best_hyperparameters.json, model.keras, metrics.json, report.md."""
    d = Path(directory)
    with atomic(d / "trials.csv") as tmp:
        frame.to_csv(tmp, index=False)
    pareto_plot(frame, hypermodel, d / "pareto.png", title)
    values = {k: round(v, 6) if isinstance(v, float) else v for k, v in hp.values.items() if not k.startswith("tuner/")}
    best = {
        "hyperparameters": values,
        "params": model.count_params(),
        hypermodel.objective: result[hypermodel.objective],
    }
    write_text(d / "best_hyperparameters.json", json.dumps(best, indent=2) + "\n")
    runtime.save_model(model, d / "model.keras")
    metrics = search_metrics(frame, hypermodel, model, result, test_metrics, values, info, args)
    metrics["cv"] = cv_summary(tuner, hypermodel)
    write_text(d / "metrics.json", json.dumps(metrics, indent=2, default=float) + "\n")
    write_text(d / "report.md", search_report(title, frame, hypermodel, model, result, test_metrics, metrics, args))
    return metrics


def search_metrics(frame, hypermodel, model, result, test_metrics, values, info, args) -> dict:
    """metrics.json: the test metrics of the retrained best (also as the `headline` block),
    its validation score, and how the trials went."""
    counts = frame["status"].value_counts().to_dict()
    return {
        **{f"test_{k}": v for k, v in test_metrics.items()},
        hypermodel.objective: result[hypermodel.objective],
        "params": model.count_params(),
        "budget": hypermodel.budget,
        "algorithm": args.algorithm,
        "trials": len(frame),
        "completed": int(counts.get("COMPLETED", 0)),
        "rejected_over_budget": int((~frame["within_budget"]).sum()),
        "failed_other": int(((frame["status"] == "FAILED") & frame["within_budget"]).sum()),
        "best_hyperparameters": values,
        **info,
        "seed": args.seed,
        "epochs": args.epochs,
        "headline": dict(test_metrics),
    }


def search_report(title, frame, hypermodel, model, result, test_metrics, metrics, args) -> str:
    """report.md: the shared header (runs.report_header), what the search did, the Pareto
    plot and the trials table."""
    shown = [c for c in frame.columns if c not in ("note",) and not c.startswith("tuner/")]
    table = frame[shown].astype(object).where(frame[shown].notna(), "")
    for c in table.columns:
        table[c] = table[c].map(lambda v: f"{v:.4g}" if isinstance(v, float) else v)
    notes = [
        f"search: {args.algorithm}, {len(frame)} trials: {metrics['completed']} completed,\n"
        f"  {metrics['rejected_over_budget']} rejected as over the budget of {hypermodel.budget or 'none'} parameters\n"
        f"  (never built); up to {args.epochs} epochs per trial, early stopping on {hypermodel.objective}\n"
        f"  (patience {hypermodel.patience})",
        f"best on validation: `{json.dumps(metrics['best_hyperparameters'])}` ({model.count_params():,} parameters);\n"
        f"  {hypermodel.objective} {result[hypermodel.objective]:.4f} when retrained",
        *cv_notes(metrics.get("cv"), hypermodel.objective),
        "test (used once, for the retrained best model): " + ", ".join(f"{k} {v:.4f}" for k, v in test_metrics.items()),
    ]
    header = report_header(title, metrics, notes=notes)
    return (
        f"{header}\n\n![Pareto front](pareto.png)\n\n{markdown_table(table.to_dict('records'), list(table.columns))}\n"
    )
