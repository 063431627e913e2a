"""What every KerasTuner search here shares: a hypermodel with a hard parameter budget,
tuners on which budget rejections can never end a search, KerasTuner's distributed mode,
the trials table, the Pareto plot, and the best model retrained once and tested once.

The budget. `BudgetHyperModel.build()` computes the parameter count of the proposed
configuration from a formula, *before* any layer exists, and raises
`keras_tuner.errors.FailedTrialError` when it is over budget: the trial is recorded as
FAILED ("over budget") and nothing is built or trained. The tuner's `max_model_size` is set
to the budget as well, as a second guard. KerasTuner stops a search after
`max_consecutive_failed_trials` (default 3) failures in a row, which a run of rejected
proposals would trip, so that limit is set above the number of trials; real crashes still
stop the search after `MAX_CONSECUTIVE_CRASHES` in a row. Rejected proposals count toward
`--max-trials`, as every trial does in KerasTuner.

Distributed search is KerasTuner's own: one chief runs the oracle (a gRPC server), workers
ask it for trials. Either set KerasTuner's variables yourself

    KERASTUNER_TUNER_ID=chief    KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 python -m tuning.architecture ...
    KERASTUNER_TUNER_ID=worker0  KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 python -m tuning.architecture ...

or use the flags, which set them: `--distributed chief --oracle 10.0.0.1:8000` and
`--distributed worker --oracle 10.0.0.1:8000 [--tuner-id worker0]`. Every process needs the
same command otherwise and the same `--directory` on a shared file system (workers save
checkpoints there; Hyperband resumes trials from them). The chief writes the results when
the last worker is done.

The modules: `tuning.hypermodel` (the budget rule and the tuners), `tuning.distributed`
(the chief and its workers), `tuning.results` (trials table, Pareto plot, retraining, the
files written), `tuning.flags` (the shared flags and the --quick preset); this module runs
a search from start to end and re-exports what the searches import.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from keras_cases import UserError, runtime, tracking
from tuning.distributed import configure_distributed, serve_oracle  # noqa: F401  (re-exported)
from tuning.flags import SearchParser, parser  # noqa: F401  (re-exported)
from tuning.hypermodel import (  # noqa: F401  (re-exported)
    ALGORITHMS,
    MAX_CONSECUTIVE_CRASHES,
    OVER_BUDGET,
    BayesianOptimization,
    BudgetHyperModel,
    Hyperband,
    RandomSearch,
    make_tuner,
)
from tuning.results import pareto_plot, retrain_best, trials_frame, write_results  # noqa: F401  (re-exported)

RESULT_FILES = ("trials.csv", "pareto.png", "best_hyperparameters.json", "model.keras", "metrics.json", "report.md")


def check_args(args, name: str) -> None:
    """Refuse a bad distributed setup or search directory before any data is loaded (the
    search calls the same checks again when it starts)."""
    check_directory(args, name, configure_distributed(args))
    if tracking.requested(getattr(args, "mlflow", None)):
        tracking.check_installed()


def check_directory(args, name: str, role) -> tuple[Path, bool]:
    """(the search's directory, whether it holds an earlier search), or a UserError: an
    earlier search is continued only with --resume and deleted only with --overwrite.
    Touches nothing."""
    directory = Path(args.directory or Path("runs") / "tuning" / name).expanduser()
    flag = f"--directory {directory}" if args.directory else str(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{flag} is a file, not a directory: choose another --directory")
    project = directory / "keras_tuner"
    earlier = project.exists() or any((directory / f).exists() for f in RESULT_FILES)
    if args.resume and args.overwrite:
        raise UserError("--resume continues the earlier search and --overwrite deletes it: give one")
    if role == "worker":
        pass  # workers share the chief's directory; the chief decides
    elif args.resume and not project.is_dir():
        raise UserError(f"--resume: there is no search in {directory} to continue (start one without --resume)")
    elif earlier and not (args.resume or args.overwrite):
        raise UserError(
            f"{flag} already holds a search: pass --resume to continue it, "
            "--overwrite to delete it and start afresh, or another --directory"
        )
    return directory, earlier


def search_directory(args, name: str, role) -> Path:
    """The search's directory, checked (check_directory), then made: an earlier search is
    deleted only with --overwrite (just KerasTuner's project folder and our result files)."""
    directory, earlier = check_directory(args, name, role)
    if earlier and args.overwrite and role != "worker":
        shutil.rmtree(directory / "keras_tuner", ignore_errors=True)
        for f in RESULT_FILES:
            (directory / f).unlink(missing_ok=True)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the search directory {directory}: {e.strerror}")
    return directory


def fold_arrays(args, y_dev, make) -> list[dict] | None:
    """With --cv K: the repeated stratified folds of the development rows (the one split's
    training + validation rows; the test rows stay out), each turned into arrays by
    `make(train, val, test)` (row indices into the development rows; preprocessing fit on
    `train` only). None without --cv."""
    if not args.cv:
        return None
    from keras_cases import protocol

    return [make(f.train, f.val, f.test) for f in protocol.folds(y_dev, args.cv, args.repeats, args.seed)]


def run_search(args, hypermodel, data: dict, *, name, title, evaluate_test, info):
    """Search, then (unless a worker) write every result. `data` holds x_train, y_train,
    x_val, y_val, x_test, y_test; `evaluate_test(model, data)` returns the test metrics.
    With --mlflow the search is one MLflow run (see keras_cases.tracking.start_search)."""
    role = configure_distributed(args)
    runtime.set_threads(args.threads)
    t0 = time.time()
    directory = search_directory(args, name, role)
    tracking.start_search(name, directory, vars(args), os.environ.get("KERASTUNER_TUNER_ID") if role else None)
    status = "failed"
    try:
        metrics = _search(
            args, hypermodel, data, directory, role, t0, title=title, evaluate_test=evaluate_test, info=info
        )
        status = "complete"
        return metrics
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        tracking.finish_search(directory, () if role == "worker" else RESULT_FILES, status)  # the chief's


def _search(args, hypermodel, data, directory, role, t0, *, title, evaluate_test, info):
    tuner = make_tuner(
        args.algorithm,
        hypermodel,
        max_trials=args.max_trials,
        epochs=args.epochs,
        directory=directory,
        project_name="keras_tuner",
        overwrite=False,
        seed=args.seed,
    )
    fit = dict(epochs=args.epochs, batch_size=args.batch_size, verbose=args.verbose)
    tuner.search(
        data["x_train"], data["y_train"], validation_data=(data["x_val"], data["y_val"]), workers=args.workers, **fit
    )
    if role == "worker":
        print(f"[{tuner.tuner_id}] no more trials; the chief writes the results")
        return None
    frame = trials_frame(tuner, hypermodel)
    model, hp, result = retrain_best(
        tuner, hypermodel, data["x_train"], data["y_train"], (data["x_val"], data["y_val"]), **fit
    )
    test = evaluate_test(model, data)
    info = {**runtime.backend_report(), **info, "seconds": round(time.time() - t0, 2)}
    metrics = write_results(directory, tuner, hypermodel, frame, model, hp, result, test, info, args, title)
    print(
        f"best: {json.dumps(metrics['best_hyperparameters'])} ({metrics['params']:,} parameters), "
        f"{hypermodel.objective} {metrics[hypermodel.objective]:.4f}; test "
        + ", ".join(f"{k} {v:.4f}" for k, v in test.items())
    )
    print(
        f"{metrics['trials']} trials: {metrics['completed']} completed, "
        f"{metrics['rejected_over_budget']} rejected as over budget; wrote {directory}/ "
        "(trials.csv, pareto.png, best_hyperparameters.json, model.keras, metrics.json, report.md)"
    )
    return metrics
