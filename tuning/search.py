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
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pandas as pd

from keras_cases import UserError, cli, plots, runtime, tracking
from keras_cases.data import batches
from keras_cases.runs import atomic, markdown_table, write_text

OVER_BUDGET = "over budget"
MAX_CONSECUTIVE_CRASHES = 3
ALGORITHMS = ("random", "hyperband", "bayesian")


class BudgetHyperModel(keras_tuner.HyperModel):
    """A hypermodel whose configurations are counted before they are built.

    Subclasses define `configure(hp) -> dict` (declares the hyperparameters, returns their
    values), `count(config) -> int` (parameters, by formula), `make(config)` (the compiled
    model) and optionally `group(config)` (a label for plots) and `sample_weight(y)`.
    """

    objective = "val_accuracy"
    direction = "max"

    def __init__(self, budget: int | None = None, seed: int = 0, patience: int = 5, name=None):
        super().__init__(name=name)
        self.budget, self.seed, self.patience = budget, seed, patience
        self.built_params: list[int] = []  # every model actually built, for the record
        self.last_result: dict | None = None
        self.declaring = False  # True while the tuner only discovers the search space

    def configure(self, hp) -> dict:
        raise NotImplementedError

    def count(self, config: dict) -> int:
        raise NotImplementedError

    def make(self, config: dict) -> keras.Model:
        raise NotImplementedError

    def group(self, config: dict) -> str:
        return "trials"

    def sample_weight(self, y):
        return None

    def over_budget(self, params: int) -> bool:
        return bool(self.budget) and params > self.budget

    def build(self, hp):
        config = self.configure(hp)
        params = self.count(config)
        if self.declaring:
            return None  # the hyperparameters are declared; no model is needed
        if self.over_budget(params):
            raise keras_tuner.errors.FailedTrialError(
                f"{OVER_BUDGET}: {params:,} > {self.budget:,} parameters; not built, not trained"
            )
        runtime.set_seed(self.seed)
        model = self.make(config)
        runtime.init_weights(model, self.seed)
        self.built_params.append(model.count_params())
        return model

    def fit(
        self,
        hp,
        model,
        x,
        y,
        validation_data=None,
        epochs=1,
        batch_size=128,
        callbacks=(),
        verbose=0,
        initial_epoch=0,
        **kwargs,
    ):
        """Fit with NumPy-shuffled batches and early stopping on the objective; report the
        objective's best epoch, the parameter count and the training seconds."""
        stop = keras.callbacks.EarlyStopping(
            self.objective, mode=self.direction, patience=self.patience, restore_best_weights=True
        )
        t0 = time.perf_counter()
        h = model.fit(
            batches(x, y, batch_size, self.seed, self.sample_weight(y)),
            validation_data=validation_data,
            validation_batch_size=1024,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=[*(callbacks or []), stop],
            verbose=verbose,
        ).history
        values = h[self.objective]
        best = max(values) if self.direction == "max" else min(values)
        self.last_result = {
            self.objective: float(best),
            "params": float(model.count_params()),
            "seconds": time.perf_counter() - t0,
            "epochs": float(len(values)),
        }
        return self.last_result


# --- tuners --------------------------------------------------------------------------
class _BudgetRules:
    """Mixed into each KerasTuner tuner: one line per trial, a crash limit that budget
    rejections do not count toward, and a chief that notices the end within a second."""

    _crashes = 0

    def _populate_initial_space(self):
        # KerasTuner calls build() here only to discover the search space, giving newly
        # active conditional hyperparameters random values: declare them, build nothing.
        self.hypermodel.declaring = True
        try:
            super()._populate_initial_space()
        finally:
            self.hypermodel.declaring = False

    def on_trial_begin(self, trial):
        self.hypermodel.last_result = None
        super().on_trial_begin(trial)
        tracking.trial_begin(trial.trial_id, trial.hyperparameters.values)  # with --mlflow

    def on_epoch_end(self, trial, model, epoch, logs=None):
        super().on_epoch_end(trial, model, epoch, logs=logs)
        tracking.trial_epoch(epoch + 1, logs)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        hm = self.hypermodel
        params = hm.count(hm.configure(trial.hyperparameters.copy()))
        line = f"[{self.tuner_id}] trial {trial.trial_id} {trial.status}: {params:,} parameters"
        if trial.status == "COMPLETED" and hm.last_result:
            r = hm.last_result
            line += f", {hm.objective} {r[hm.objective]:.4f} ({r['epochs']:.0f} epochs, {r['seconds']:.1f} s)"
        elif trial.message:
            line += f" ({_reason(trial.message)})"
        print(line, flush=True)
        final = {k: v for k, v in (hm.last_result or {}).items() if k != hm.objective}  # that is the score
        tracking.trial_end(
            trial.status, trial.score, {**final, "params": params}, _reason(trial.message) if trial.message else ""
        )
        # a crash is INVALID here (a worker's copy) or FAILED (after the oracle's retries)
        crashed = trial.status in ("FAILED", "INVALID") and OVER_BUDGET not in (trial.message or "")
        if crashed:
            print(trial.message, file=sys.stderr, flush=True)
        self._crashes = self._crashes + 1 if crashed else 0
        if self._crashes >= MAX_CONSECUTIVE_CRASHES:
            raise RuntimeError(f"{self._crashes} trials in a row crashed; the last one:\n{trial.message}")

    def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
        # KerasTuner imports tensorboard on the TensorFlow backend for every trial, even with
        # no TensorBoard callback; TensorFlow no longer installs it. Only do so when needed.
        if any(c.__class__.__name__ == "TensorBoard" for c in callbacks):
            super()._configure_tensorboard_dir(callbacks, trial, execution)

    def search(self, *args, workers=1, **kwargs):
        from keras_tuner.src.distribute import utils as dist_utils

        if dist_utils.is_chief_oracle():
            self.save()
            serve_oracle(self.oracle, workers)
            return None
        if dist_utils.has_chief_oracle():  # a worker: while the chief says "wait", wait
            ask = self.oracle.create_trial

            def create_trial(tuner_id):
                trial = ask(tuner_id)
                if trial.status == "IDLE":
                    time.sleep(0.2)
                return trial

            self.oracle.create_trial = create_trial
        return super().search(*args, **kwargs)


class RandomSearch(_BudgetRules, keras_tuner.RandomSearch):
    pass


class BayesianOptimization(_BudgetRules, keras_tuner.BayesianOptimization):
    pass


class Hyperband(_BudgetRules, keras_tuner.Hyperband):
    pass


def _reason(message: str) -> str:
    """The one line of a trial's failure message that says why."""
    lines = [ln.strip() for ln in str(message).strip().splitlines() if ln.strip()]
    for ln in lines:
        if OVER_BUDGET in ln:
            return ln.split("FailedTrialError: ")[-1]
    return lines[-1][:200] if lines else ""


def make_tuner(algorithm, hypermodel, *, max_trials, epochs, directory, project_name, overwrite, seed):
    # KerasTuner prints the traceback of every failed trial (config.DEBUG); a budget
    # rejection is not an error, and `on_trial_end` prints the real crashes itself.
    keras_tuner.src.config.DEBUG = False
    common = dict(
        hypermodel=hypermodel,
        objective=keras_tuner.Objective(hypermodel.objective, hypermodel.direction),
        seed=seed + 1 if seed >= 0 else seed,  # KerasTuner takes seed 0 for "no seed"
        directory=str(directory),
        project_name=project_name,
        overwrite=overwrite,
        max_model_size=hypermodel.budget or None,
        # over-budget rejections are FAILED trials; they must never end the search
        max_consecutive_failed_trials=max_trials + 1 if max_trials else 10**9,
    )
    if algorithm == "random":
        return RandomSearch(max_trials=max_trials, **common)
    if algorithm == "bayesian":
        return BayesianOptimization(max_trials=max_trials, **common)
    if algorithm == "hyperband":
        # brackets over and over (hyperband_iterations=None), until --max-trials trials
        tuner = Hyperband(max_epochs=max(epochs, 2), factor=3, hyperband_iterations=None, **common)
        tuner.oracle.max_trials = max_trials
        return tuner
    raise UserError(f"unknown algorithm {algorithm!r}: choose {', '.join(ALGORITHMS)}")


# --- distributed mode ----------------------------------------------------------------
def configure_distributed(args) -> str | None:
    """Set KerasTuner's environment variables from the flags; returns "chief", "worker" or None."""
    env = os.environ
    if args.distributed is None:
        if "KERASTUNER_ORACLE_IP" not in env:
            return None
        if "KERASTUNER_ORACLE_PORT" not in env or "KERASTUNER_TUNER_ID" not in env:
            raise UserError(
                "KERASTUNER_ORACLE_IP is set: set KERASTUNER_ORACLE_PORT and "
                "KERASTUNER_TUNER_ID too (an id containing 'chief' for the chief)"
            )
        role = "chief" if "chief" in env["KERASTUNER_TUNER_ID"] else "worker"
        return _worker_timeout(role, args)
    address = args.oracle or (
        f"{env['KERASTUNER_ORACLE_IP']}:{env['KERASTUNER_ORACLE_PORT']}"
        if "KERASTUNER_ORACLE_IP" in env and "KERASTUNER_ORACLE_PORT" in env
        else None
    )
    if not address or ":" not in address:
        raise UserError("--distributed needs --oracle HOST:PORT (the chief's address)")
    host, port = address.rsplit(":", 1)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--oracle {address}: the port must be a number from 1 to 65535")
    tuner_id = "chief" if args.distributed == "chief" else (args.tuner_id or f"worker-{os.getpid()}")
    if args.distributed == "worker" and "chief" in tuner_id:
        raise UserError(f"--tuner-id {tuner_id!r}: a worker's id must not contain 'chief'")
    env.update(KERASTUNER_ORACLE_IP=host, KERASTUNER_ORACLE_PORT=port, KERASTUNER_TUNER_ID=tuner_id)
    return _worker_timeout(args.distributed, args)


def _worker_timeout(role, args):
    if role == "worker":  # KerasTuner's client waits up to an hour for every answer
        from keras_tuner.src.distribute import oracle_client

        oracle_client.TIMEOUT = args.oracle_timeout
    return role


def serve_oracle(oracle, workers: int = 1, poll: float = 0.2):
    """The chief's gRPC server: KerasTuner's `oracle_chief.start_server`, except that it
    hands out no trial until `workers` workers have asked (so that a slow starter cannot
    arrive after the search is over and wait for a chief that is gone), checks every `poll`
    seconds (not 20) whether the workers are done, and stops cleanly."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer, exit_chief
    from keras_tuner.src.engine.trial import Trial

    create, waiting = oracle.create_trial, set()

    def create_trial(tuner_id):
        waiting.add(tuner_id)
        if len(waiting) < workers and not oracle.trials:
            return Trial(oracle.get_space(), trial_id="waiting", status="IDLE")
        return create(tuner_id)

    oracle.create_trial = create_trial

    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise UserError(f"the chief cannot listen on {address} (port in use or address not local)")
    server.start()
    print(
        f"[chief] oracle serving on {address}" + (f", waiting for {workers} workers" if workers > 1 else ""), flush=True
    )
    try:
        while not (servicer.stop_triggered and exit_chief(oracle)):
            time.sleep(poll)
    finally:
        server.stop(grace=2)


# --- results -------------------------------------------------------------------------
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
                "note": _reason(t.message) if t.message else "",
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
        hp, model, x, y, validation_data=validation_data, epochs=epochs, batch_size=batch_size, verbose=verbose
    )
    return model, hp, result


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
    counts = frame["status"].value_counts().to_dict()
    metrics = {
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
    }
    write_text(d / "metrics.json", json.dumps(metrics, indent=2, default=float) + "\n")
    shown = [c for c in frame.columns if c not in ("note",) and not c.startswith("tuner/")]
    table = frame[shown].astype(object).where(frame[shown].notna(), "")
    for c in table.columns:
        table[c] = table[c].map(lambda v: f"{v:.4g}" if isinstance(v, float) else v)
    write_text(
        d / "report.md",
        f"""# {title}

- data: {info["dataset"]}; {info["n_train"]:,} train / {info["n_val"]:,} validation / {info["n_test"]:,} test
- backend: {info["backend"]} (Keras {info["keras_version"]})
- search: {args.algorithm}, {len(frame)} trials: {metrics["completed"]} completed,
  {metrics["rejected_over_budget"]} rejected as over the budget of {hypermodel.budget or "none"} parameters
  (never built); up to {args.epochs} epochs per trial, early stopping on {hypermodel.objective}
  (patience {hypermodel.patience}); seed {args.seed}
- best on validation: `{json.dumps(values)}` ({model.count_params():,} parameters);
  {hypermodel.objective} {result[hypermodel.objective]:.4f} when retrained
- test (used once, for the retrained best model): {", ".join(f"{k} {v:.4f}" for k, v in test_metrics.items())}
- wall time: {info["seconds"]} s

![Pareto front](pareto.png)

{markdown_table(table.to_dict("records"), list(table.columns))}
""",
    )
    return metrics


# --- the command ---------------------------------------------------------------------
def parser(prog, description, budget, epochs, batch_size) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    s = p.add_argument_group("search")
    s.add_argument(
        "--budget",
        type=cli.nonnegative_int,
        default=budget,
        help="hard limit on trainable + non-trainable parameters (0: none)",
    )
    s.add_argument("--algorithm", choices=ALGORITHMS, default="random", help="KerasTuner tuner")
    s.add_argument(
        "--max-trials", type=cli.positive_int, default=20, help="trials to run, over-budget rejections included"
    )
    s.add_argument("--directory", default=None, help="search directory (default runs/tuning/<search>)")
    s.add_argument("--resume", action="store_true", help="continue the search in --directory where it stopped")
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the earlier search in --directory and start afresh (without "
        "--resume or --overwrite an existing search is never touched)",
    )
    s.add_argument("--epochs", type=cli.positive_int, default=epochs, help="maximum epochs per trial")
    s.add_argument("--patience", type=cli.positive_int, default=5, help="early-stopping patience")
    s.add_argument("--batch-size", type=cli.positive_int, default=batch_size, help="minibatch size")
    s.add_argument("--seed", type=cli.seed, default=0, help="seed of the search and of every trial's weights")
    s.add_argument("--quick", action="store_true", help="a small smoke search (a few hundred rows)")
    s.add_argument(
        "--backend",
        choices=("jax", "tensorflow", "torch"),
        default=None,
        help="Keras backend (same as KERAS_BACKEND=...)",
    )
    s.add_argument(
        "--threads",
        type=cli.nonnegative_int,
        default=1,
        help="CPU threads for the backend's ops (0: the framework's default; small models train faster on one)",
    )
    s.add_argument(
        "-v",
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=0,
        help="Keras fit verbosity inside trials (one summary line per trial is always printed)",
    )
    d = p.add_argument_group("distributed search (KerasTuner's chief/worker mode)")
    d.add_argument(
        "--distributed",
        choices=("chief", "worker"),
        default=None,
        help="run as the chief (oracle server) or as a worker; or set KERASTUNER_* variables",
    )
    d.add_argument("--oracle", default=None, help="the chief's HOST:PORT")
    d.add_argument("--tuner-id", default=None, help="a worker's id (default worker-<pid>)")
    d.add_argument(
        "--workers",
        type=cli.positive_int,
        default=1,
        help="the chief hands out trials once this many workers have asked for one",
    )
    d.add_argument(
        "--oracle-timeout",
        type=cli.positive_int,
        default=3600,
        help="seconds a worker waits for the chief to answer before giving up",
    )
    t = p.add_argument_group("tracking")
    t.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        default=None,
        metavar="URI",
        help="also track the search in MLflow (experiment keras-cases-tuning-<search>: the "
        "flags as params, a nested run per trial with its hyperparameters, per-epoch "
        "metrics and score, the final metrics and result files): a tracking server "
        "URI, or no URI for a local store (sqlite:///mlruns.db, ./mlruns); also "
        "$KERAS_CASES_MLFLOW",
    )
    return p


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
