"""The budget rule and the tuners (see `tuning.search`): `BudgetHyperModel` counts a
configuration's parameters before it is built and rejects one over budget as a FAILED
trial; KerasTuner's tuners with rules under which those rejections never end a search."""

from __future__ import annotations

import sys
import time

import keras
import keras_tuner
import numpy as np

from keras_cases import UserError, runtime, tracking
from keras_cases.data import batches
from tuning.distributed import serve_oracle

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
        # with --cv: [{x_train, y_train, x_val, y_val, x_test, y_test}] per fold (tuning.search)
        self.cv_folds: list[dict] | None = None
        self.fold_scores: dict[str, list[float]] = {}  # a configuration (its key) -> held-out score per fold

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
        cv=True,
        **kwargs,
    ):
        """Fit with NumPy-shuffled batches and early stopping on the objective; report the
        objective's best epoch, the parameter count and the training seconds. With `cv_folds`
        (and `cv`), the configuration is trained on every fold instead (`fit_folds`)."""
        if self.cv_folds and cv:
            return self.fit_folds(hp, model, epochs, batch_size, callbacks, verbose, initial_epoch)
        t0 = time.perf_counter()
        best, n = self.fit_one(model, x, y, validation_data, epochs, batch_size, callbacks, verbose, initial_epoch)
        self.last_result = {
            self.objective: best,
            "params": float(model.count_params()),
            "seconds": time.perf_counter() - t0,
            "epochs": float(n),
        }
        return self.last_result

    def fit_one(self, model, x, y, validation_data, epochs, batch_size, callbacks, verbose, initial_epoch):
        """(the objective's best value, epochs run) of one early-stopped fit."""
        stop = keras.callbacks.EarlyStopping(
            self.objective, mode=self.direction, patience=self.patience, restore_best_weights=True
        )
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
        return float(max(values) if self.direction == "max" else min(values)), len(values)

    def fit_folds(self, hp, model, epochs, batch_size, callbacks, verbose, initial_epoch):
        """The configuration trained on each fold's training part (early stopping on its
        validation part) and scored once on its held-out fold: the objective is the mean
        held-out score, so the search chooses on every fold, not on one split."""
        t0, scores, runs = time.perf_counter(), [], []
        for i, f in enumerate(self.cv_folds):
            m = model if i == 0 else self.build(hp)  # a fresh model, same seed, per fold
            _, n = self.fit_one(
                m, f["x_train"], f["y_train"], (f["x_val"], f["y_val"]), epochs, batch_size,
                callbacks if i == 0 else (), verbose, initial_epoch,
            )  # fmt: skip
            scores.append(self.score(m, f["x_test"], f["y_test"]))
            runs.append(n)
        self.fold_scores[config_key(hp.values)] = scores
        self.last_result = {
            self.objective: float(np.mean(scores)),
            "cv_std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
            "params": float(model.count_params()),
            "seconds": time.perf_counter() - t0,
            "epochs": float(np.mean(runs)),
        }
        return self.last_result

    def score(self, model, x, y) -> float:
        """The objective's metric on held-out rows (the compiled metric without `val_`)."""
        got = model.evaluate(x, y, batch_size=1024, verbose=0, return_dict=True)
        return float(got[self.objective.removeprefix("val_")])


def config_key(values: dict) -> str:
    """A configuration's key: its hyperparameters without the tuner's own (tuner/epochs...)."""
    import json

    return json.dumps({k: v for k, v in values.items() if not k.startswith("tuner/")}, sort_keys=True, default=str)


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
            line += f" ({reason(trial.message)})"
        print(line, flush=True)
        final = {k: v for k, v in (hm.last_result or {}).items() if k != hm.objective}  # that is the score
        tracking.trial_end(
            trial.status, trial.score, {**final, "params": params}, reason(trial.message) if trial.message else ""
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


def reason(message: str) -> str:
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
