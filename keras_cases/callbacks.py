"""Keras callbacks shared by the case studies."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import keras
import numpy as np

from keras_cases import UserError
from keras_cases.evaluation import choose_threshold, parse_objective


class ThresholdTuner(keras.callbacks.Callback):
    """Choose the decision threshold on validation data at the end of every epoch.

    The objective is a string (see keras_cases.evaluation): ``recall>=0.8`` (best
    precision with recall at least 0.8), ``f1``/``fbeta:B``, or ``cost:fp=A,fn=B``.
    Each epoch's choice is written into the logs (so into the History and history.csv)
    as ``val_threshold`` and ``val_objective``. At the end of training it is chosen once
    more on the final weights (put this callback after EarlyStopping, which restores the
    best weights in its own on_train_end) and kept in ``self.threshold``.

    Only validation data is ever used: the test set chooses nothing.
    """

    def __init__(self, x_val, y_val, objective="recall>=0.8", batch_size=1024):
        super().__init__()
        self.x_val, self.y_val = x_val, np.asarray(y_val).ravel()
        self.objective = parse_objective(objective) if isinstance(objective, str) else objective
        self.batch_size = batch_size
        self.threshold = 0.5
        self.value = float("nan")

    def _choose(self):
        p = self.model.predict(self.x_val, batch_size=self.batch_size, verbose=0).ravel()
        self.threshold, self.value = choose_threshold(self.y_val, p, self.objective)

    def on_epoch_end(self, epoch, logs=None):
        self._choose()
        if logs is not None:
            logs["val_threshold"] = self.threshold
            logs["val_objective"] = self.value

    def on_train_end(self, logs=None):
        self._choose()


_TENSORBOARD_ROOT: Path | None = None


def log_tensorboard_to(root) -> None:
    """Make `tensorboard(name)` return a TensorBoard callback writing under `root/name`
    (called by `Run` when a case gets `--tensorboard`)."""
    global _TENSORBOARD_ROOT
    if root is not None and (
        importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("tensorboard") is None
    ):
        raise UserError(
            "--tensorboard needs TensorFlow and TensorBoard installed (Keras writes the logs with "
            "tf.summary on every backend): pip install 'keras-cases[tensorboard]'"
        )
    _TENSORBOARD_ROOT = None if root is None else Path(root)


def tensorboard(name: str) -> list:
    """[] normally; with `--tensorboard`, [a TensorBoard callback logging to
    <run>/tensorboard/<name>] (one sub-folder per model, so `tensorboard --logdir
    <run>/tensorboard` compares them). Append it to a `fit` call's callbacks."""
    if _TENSORBOARD_ROOT is None:
        return []
    return [
        keras.callbacks.TensorBoard(
            log_dir=str(_TENSORBOARD_ROOT / name.replace(" ", "_").replace("/", "_")),
            histogram_freq=0,
            write_graph=False,
            update_freq="epoch",
        )
    ]


def scalar_logger(name: str):
    """For training loops that are not `fit` (the GAN): a function (step, {name: value})
    writing TensorBoard scalars under <run>/tensorboard/<name> with `--tensorboard`, and
    doing nothing otherwise."""
    if _TENSORBOARD_ROOT is None:
        return lambda step, values: None
    from keras_cases import runtime

    return runtime.scalar_writer(_TENSORBOARD_ROOT / name)


# --- resumable training ------------------------------------------------------------------
_CHECKPOINTS: Path | None = None
STOP_AFTER_ENV = "KERAS_CASES_STOP_AFTER_EPOCHS"  # testing aid: Ctrl-C after N epochs of a fit
_STATE = {
    "EarlyStopping": ("wait", "best", "best_epoch", "stopped_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
}
_names: dict = {}  # fits named so far in this run: a repeated name gets #2, #3, ...


def checkpoint_to(root) -> None:
    """Make every `Resumable` checkpoint under `root/<name>` (called by `Run`)."""
    global _CHECKPOINTS
    _CHECKPOINTS = None if root is None else Path(root)
    _names.clear()


def checkpoint_dir(name: str):
    """<run>/checkpoints/<name> for a fit or a training loop (a repeated name gets #2, #3, ...,
    so the same order on resume gives the same names); None without a run directory."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    _names[safe] = _names.get(safe, 0) + 1
    if _names[safe] > 1:
        safe += f"#{_names[safe]}"
    return None if _CHECKPOINTS is None else _CHECKPOINTS / safe


def stop_if_asked(epochs_done: int) -> None:
    """The test hook: Ctrl-C (KeyboardInterrupt) once `epochs_done` reaches
    $KERAS_CASES_STOP_AFTER_EPOCHS, after that epoch's checkpoint is written."""
    stop_after = os.environ.get(STOP_AFTER_ENV)
    if stop_after and epochs_done == int(stop_after):
        raise KeyboardInterrupt(f"{STOP_AFTER_ENV}={stop_after}")


class EpochClock(keras.callbacks.Callback):
    """The one epoch timer: wall-clock seconds since training began at each epoch end
    (`seconds`, logged as `wall_seconds`) and each epoch's own seconds (`epoch_seconds`,
    logged too when `log_epoch`; the first includes compilation); with `budget` (seconds)
    training stops once it is spent. A resumed fit carries on from the seconds already spent
    (see `Resumable`). `now` is the clock (time.perf_counter; a test passes a fake one)."""

    def __init__(self, budget: float | None = None, log_epoch: bool = False, now=None):
        import time

        super().__init__()
        self.budget, self.seconds, self.spent, self.log_epoch = budget, [], 0.0, log_epoch
        self.epoch_seconds: list[float] = []  # each epoch from its begin to its end (no checkpointing)
        self.epoch_steps: list[int] = []  # the training steps of each epoch
        self._steps = 0
        self.now = now or time.perf_counter
        self.t0 = self.now()

    @property
    def total(self) -> float:
        """Seconds of the whole fit so far, resumed parts included."""
        return self.seconds[-1] if self.seconds else self.spent

    def elapsed(self) -> float:
        return self.spent + self.now() - self.t0

    def fraction(self) -> float:
        """The share of the budget spent (0 without a budget)."""
        return self.elapsed() / self.budget if self.budget else 0.0

    def on_train_begin(self, logs=None):
        self.t0 = self.now()

    def on_epoch_begin(self, epoch, logs=None):
        self.t_epoch, self._steps = self.now(), 0

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(self.now() - self.t_epoch)
        self.epoch_steps.append(self._steps)
        self.seconds.append(self.elapsed())
        if logs is not None:
            logs["wall_seconds"] = self.seconds[-1]
            if self.log_epoch:
                logs["epoch_seconds"] = self.epoch_seconds[-1]

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self.budget is not None and self.elapsed() > self.budget:
            self.model.stop_training = True

    def resume_state(self) -> dict:
        return {
            "seconds": list(self.seconds),
            "epoch_seconds": list(self.epoch_seconds),
            "epoch_steps": list(self.epoch_steps),
        }

    def resume_from(self, state: dict) -> None:
        self.seconds = list(state["seconds"])
        self.epoch_seconds = list(state.get("epoch_seconds", []))
        self.epoch_steps = list(state.get("epoch_steps", []))
        self.spent, self.t0 = (self.seconds[-1] if self.seconds else 0.0), self.now()


def budget_lr(fraction: float, peak: float, warmup: float) -> float:
    """The learning rate at `fraction` of a wall-clock budget: linear warm-up to `peak` over
    the first `warmup` of it, then a cosine to 0 at the budget's end (0 after it)."""
    f = min(max(fraction, 0.0), 1.0)
    if f < warmup:
        return peak * f / warmup
    return peak * 0.5 * (1.0 + np.cos(np.pi * (f - warmup) / max(1.0 - warmup, 1e-12)))


class BudgetSchedule(keras.callbacks.Callback):
    """A learning-rate schedule that follows the wall clock, not a planned step count: the
    rate is `budget_lr` of the progress, the share of `clock`'s budget spent (or of
    `max_steps`, whichever is further, so a machine that speeds up still ends annealed at
    the epoch cap), set at every epoch begin and each time the progress has moved on by
    `every`. So a budgeted run ends annealed however the machine's speed changes under it (a
    step-count schedule planned from a timing is cut off before it anneals when the machine
    slows down). The optimizer's learning rate must be a plain number, not a schedule;
    setting it only every `every` keeps the cost small on JAX, where touching the optimizer
    mid-epoch syncs the training state. Resumable (its steps are kept; the clock keeps its
    spent seconds). Logs `learning_rate`, the last rate of each epoch."""

    def __init__(self, clock: EpochClock, peak: float, warmup: float = 0.15, every: float = 0.01, max_steps=None):
        super().__init__()
        self.clock, self.peak, self.warmup, self.every, self.max_steps = clock, peak, warmup, every, max_steps
        self.steps, self.set_at, self.lr = 0, -1.0, None

    def progress(self) -> float:
        by_steps = self.steps / self.max_steps if self.max_steps else 0.0
        return max(self.clock.fraction(), by_steps)

    def _update(self, force: bool = False):
        f = self.progress()
        if force or f - self.set_at >= self.every:
            self.set_at, self.lr = f, float(budget_lr(f, self.peak, self.warmup))
            self.model.optimizer.learning_rate = self.lr

    def on_epoch_begin(self, epoch, logs=None):
        self._update(force=True)

    def on_train_batch_begin(self, batch, logs=None):
        self._update()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.lr is not None:
            logs["learning_rate"] = self.lr

    def resume_state(self) -> dict:
        return {"steps": self.steps}

    def resume_from(self, state: dict) -> None:
        self.steps = int(state["steps"])


class Resumable(keras.callbacks.History):
    """Checkpoint a `fit` every epoch under <run>/checkpoints/<name>/ and continue it from
    there when the run is resumed (`--resume RUN_DIR`): weights with the optimizer state, the
    epoch, the history so far, the state of the `guarded` callbacks (EarlyStopping's counters
    and best weights; any callback with resume_state()/resume_from()), and the epoch of the
    training data's shuffling (data.batches' resume_state) and Python's and NumPy's global
    random state (Keras shuffles the order of batches with Python's). A finished fit is restored, not
    retrained. So a resumed run trains the same epochs to the same weights as one that was
    never stopped. It is the fit's History (fit returns it, earlier epochs included); put it
    last in `callbacks`. Without a run directory (library use) it is a plain History."""

    def __init__(self, name: str, guarded=(), data=None):
        super().__init__()
        self.dir = checkpoint_dir(name)
        self.guarded, self.data = list(guarded), data

    def on_train_begin(self, logs=None):
        self.epoch, self.history = [], {}
        self.model.history = self
        state = self._load()
        if state is None:
            return
        done = state["finished"] or state.get("stopping")  # stopping: EarlyStopping had ended it
        epoch = self.params["epochs"] if done else state["epoch"]
        self.model._initial_epoch = epoch  # as keras.callbacks.BackupAndRestore does
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.epoch = list(range(state["epoch"]))
        for cb, s in zip(self.guarded, state["guarded"]):
            self._restore(cb, s)
        set_rng_state(state["rng"])  # Keras shuffles the order of batches with it
        for sg, value in zip(seed_generators(self.model), state["seeds"]):
            sg.state.assign(value)  # dropout masks go on as if never stopped
        if self.data is not None and state.get("data"):
            self.data.resume_from(state["data"])
        print(f"resumed {self.dir.name} at epoch {state['epoch']}" + (" (finished)" if done else ""), flush=True)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self._save(epoch + 1, finished=False)
        if self.dir is not None:
            stop_if_asked(epoch + 1)

    def on_train_end(self, logs=None):
        self._save(len(self.epoch), finished=True)

    def _load(self):
        if self.dir is None or not (self.dir / "state.json").is_file():
            return None
        import json

        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)  # its state is in the file
        self.model.load_weights(self.dir / "latest.weights.h5")
        state = json.loads((self.dir / "state.json").read_text())
        arrays = np.load(self.dir / "guarded.npz")
        state["rng"]["numpy"][1] = arrays["numpy_rng"]
        state["seeds"] = [arrays[f"seed_{i}"] for i in range(state["n_seeds"])]
        for i, s in enumerate(state["guarded"]):
            if s.get("best_weights"):
                s["best_weights"] = [arrays[f"{i}_{j}"] for j in range(s["best_weights"])]
        return state

    def _save(self, epoch: int, finished: bool):
        if self.dir is None:
            return
        import json

        from keras_cases.runs import atomic, jsonable, write_text

        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic(self.dir / "latest.weights.h5") as tmp:
            self.model.save_weights(tmp)
        guarded, arrays = [], {}
        for i, cb in enumerate(self.guarded):
            s = self._state(cb)
            bw = s.pop("best_weights", None)
            if bw is not None:
                arrays.update({f"{i}_{j}": np.asarray(w) for j, w in enumerate(bw)})
                s["best_weights"] = len(bw)
            guarded.append(s)
        rng = rng_state()
        arrays["numpy_rng"] = rng["numpy"][1]
        seeds = seed_generators(self.model)
        arrays.update({f"seed_{i}": keras.ops.convert_to_numpy(sg.state.value) for i, sg in enumerate(seeds)})
        rng["numpy"][1] = None
        with atomic(self.dir / "guarded.npz") as tmp:
            np.savez(tmp, **arrays)
        write_text(
            self.dir / "state.json",
            json.dumps(
                jsonable(
                    {
                        "epoch": epoch,
                        "finished": finished,
                        "stopping": bool(getattr(self.model, "stop_training", False)),
                        "history": self.history,
                        "guarded": guarded,
                        "rng": rng,
                        "n_seeds": len(seeds),
                        "data": self.data.resume_state() if hasattr(self.data, "resume_state") else None,
                    }
                )
            ),
        )

    @staticmethod
    def _state(cb) -> dict:
        if hasattr(cb, "resume_state"):
            return cb.resume_state()
        s = {k: getattr(cb, k, None) for k in _STATE.get(type(cb).__name__, ())}
        s = {k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in s.items()}
        if isinstance(cb, keras.callbacks.EarlyStopping):
            s["best_weights"] = cb.best_weights
        return s

    @staticmethod
    def _restore(cb, s: dict) -> None:
        if hasattr(cb, "resume_from"):
            cb.resume_from(s)
            return
        for k in _STATE.get(type(cb).__name__, ()):
            setattr(cb, k, s[k])
        if isinstance(cb, keras.callbacks.EarlyStopping):
            cb.best_weights = s.get("best_weights")


def seed_generators(model) -> list:
    """The model's keras.random.SeedGenerators (dropout, noise layers): their state is not in
    the weights file."""
    return [sg for layer in model._flatten_layers() for sg in getattr(layer, "_seed_generators", [])]


def rng_state() -> dict:
    """Python's and NumPy's global random state (Keras draws the order of a PyDataset's
    batches and new layers' seeds from them), as JSON plus one array."""
    import random

    from keras_cases import runtime

    framework = runtime.framework_rng_state()
    return {
        "python": random.getstate(),
        "numpy": list(np.random.get_state()),
        "framework": None if framework is None else framework.tolist(),
    }


def set_rng_state(state: dict) -> None:
    import random

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(state["numpy"]))
    from keras_cases import runtime

    runtime.set_framework_rng_state(state.get("framework"))


def resumable(name: str, callbacks=(), data=None) -> list:
    """`callbacks` followed by a `Resumable` guarding them: pass as fit's callbacks."""
    from keras_cases import tracking

    callbacks = list(callbacks)
    log = tracking.model_callback(name)  # a nested MLflow run with --mlflow
    return [*callbacks, *([log] if log else []), Resumable(name, guarded=callbacks, data=data)]
