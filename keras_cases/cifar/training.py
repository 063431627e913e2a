"""Training the recipe: augmented batches, the epoch planner for a wall-clock budget, `train`."""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np

from keras_cases.callbacks import BudgetSchedule, EpochClock, resumable, tensorboard
from keras_cases.cifar.model import Recipe, build_model, compile_model, initialise
from keras_cases.data import batches, images, resumable_epochs


def one_hot(y, k):
    return np.eye(k, dtype="float32")[y]


def training_data(r: Recipe, d, seed: int):
    y = one_hot(d.y_train, d.n_classes)
    if r.augment:
        flip = "alternate" if r.arch == "airbench" else True  # airbench94's alternating flips
        return resumable_epochs(
            images.augmented_batches(d.x_train, y, r.batch_size, seed, pad=r.translate, flip=flip, cutout_size=r.cutout)
        )
    return batches(d.x_train, y, r.batch_size, seed)


def plan_epochs(r: Recipe, d, seed: int, budget_s: float, n_steps: int | None = None) -> tuple[int, float]:
    """Epochs that fit in `budget_s`: time `n_steps` steady-state steps of a throwaway copy
    of the model (after one compiled step; default about 5,000 images' worth, at least 3
    steps), add the validation pass, keep 10% slack (a machine whose load changes can still
    overrun: training then stops at the budget)."""
    n_steps = n_steps or max(3, 5120 // r.batch_size)
    model = build_model(r, d.x_train.shape[1:], d.n_classes)
    initialise(model, r, seed, d.x_train)
    compile_model(model, r, 1000)
    data = training_data(r, d, seed)
    xb, yb = data[0][:2]
    model.train_on_batch(xb, yb)
    t = time.perf_counter()
    for i in range(1, n_steps + 1):
        xb, yb = data[i % len(data)][:2]
        model.train_on_batch(xb, yb)
    step = (time.perf_counter() - t) / n_steps
    t = time.perf_counter()
    model.predict(d.x_val, batch_size=1000, verbose=0)
    val = time.perf_counter() - t
    epoch = step * len(data) + val
    return max(1, int(0.9 * budget_s / epoch)), epoch


def train(
    r: Recipe,
    d,
    seed: int,
    epochs: int,
    budget_s: float | None = None,
    verbose: int = 2,
    extra_callbacks=(),
    name: str | None = None,
    now=None,
):
    """Train the recipe for `epochs` (its step-count schedule ends there); with `budget_s`
    (seconds) the schedule follows the wall clock instead: warm-up and cosine over the
    budget (`callbacks.BudgetSchedule`), re-set as the time passes, so the run ends annealed
    at the budget however the machine's speed changes; `epochs` is then the plan, and the
    fit may run up to twice as many if the machine speeds up. A resumed fit has only what
    was left of the budget. `name` (unique in the run; default recipe_seed<seed>) names its
    checkpoint for --resume; `now` is the clock (a test passes a fake one). Returns
    (model, history dict; its `epoch_share` is each epoch's share of its steps trained)."""
    keras.utils.set_random_seed(seed)
    model = build_model(r, d.x_train.shape[1:], d.n_classes)
    initialise(model, r, seed, d.x_train)
    data = training_data(r, d, seed)
    clock = EpochClock(budget_s, now=now)
    follow_clock = budget_s is not None and r.schedule in ("cosine", "triangular")
    cap = 2 * epochs if follow_clock else epochs
    schedule = []
    if follow_clock:
        # the step counts the optimizer plans with (airbench's lookahead) are the planned epochs'
        compile_model(model, dataclasses.replace(r, schedule="constant"), epochs * len(data))
        peak = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        follow = TriangularBudget if r.schedule == "triangular" else BudgetSchedule
        schedule = [follow(clock, peak, warmup=r.warmup, max_steps=cap * len(data))]
    else:
        compile_model(model, r, epochs * len(data))
    name = name or f"recipe_seed{seed}"
    hist = model.fit(
        data,
        epochs=cap,
        verbose=verbose,
        validation_data=(d.x_val, one_hot(d.y_val, d.n_classes)),
        callbacks=resumable(name, [clock, *schedule, *extra_callbacks, *tensorboard(name)], data),
    )
    h = dict(hist.history)
    h["wall_seconds"] = clock.seconds
    shares = [n / len(data) for n in clock.epoch_steps]  # < 1: the budget cut the epoch short
    h["epoch_share"] = [1.0] * (len(h["loss"]) - len(shares)) + shares  # (a checkpoint from before counted none)
    return model, h


class TriangularBudget(BudgetSchedule):
    """`BudgetSchedule` with airbench's triangular shape (`airbench94.triangular_lr`): 0.2x
    the peak rising to it at `warmup` of the budget, then down to 0.07x at its end."""

    def _update(self, force: bool = False):
        from keras_cases.cifar.airbench94 import triangular_lr

        f = self.progress()
        if force or f - self.set_at >= self.every:
            self.set_at, self.lr = f, float(triangular_lr(f, self.peak, self.warmup))
            self.model.optimizer.learning_rate = self.lr
            getattr(self.model.optimizer, "set_progress", lambda f: None)(f)  # AirbenchSGD's lookahead


def time_to(h: dict, level: float):
    """Seconds (wall clock) until validation accuracy first reached `level`, else None."""
    for acc, s in zip(h["val_accuracy"], h["wall_seconds"]):
        if acc >= level:
            return float(s)
    return None
