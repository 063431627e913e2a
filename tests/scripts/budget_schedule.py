"""A wall-clock budget on a machine that slows down mid-run, with a fake clock (run on one
backend in a subprocess): the learning rate follows the budget spent, so the run ends
annealed; a step-count schedule planned from the first speed does not.

    python budget_schedule.py OUT.json
"""

import json
import sys
from types import SimpleNamespace

import keras
import numpy as np
from sklearn.datasets import load_digits

from keras_cases.callbacks import BudgetSchedule, EpochClock, budget_lr
from keras_cases.cifar.model import Recipe
from keras_cases.cifar.training import train


class FakeTime:
    """Seconds that pass per training step: `fast` for the first `switch` steps, then
    `slow` (the shared host slowing the process down)."""

    def __init__(self, fast=1.0, slow=3.0, switch=40):
        self.t, self.steps, self.fast, self.slow, self.switch = 0.0, 0, fast, slow, switch

    def now(self):
        return self.t

    def ticker(self):
        fake = self

        class Tick(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                fake.steps += 1
                fake.t += fake.fast if fake.steps <= fake.switch else fake.slow

        return Tick()


class Recorder(keras.callbacks.Callback):
    """The rate set before each step and the size of each step's weight change."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule, self.lrs, self.deltas = schedule, [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.lrs.append(self.schedule.lr)
        self.before = self.model.layers[-1].get_weights()[0]

    def on_train_batch_end(self, batch, logs=None):
        self.deltas.append(float(np.abs(self.model.layers[-1].get_weights()[0] - self.before).max()))


def digits():
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype("float32"), y


def mechanism(budget=100.0, peak=0.05):
    x, y = digits()
    inputs = keras.Input((64,))
    outputs = keras.layers.Dense(10)(keras.layers.Dense(32, activation="relu")(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(peak), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    fake = FakeTime()
    clock = EpochClock(budget, now=fake.now)
    schedule = BudgetSchedule(clock, peak, warmup=0.15)
    rec = Recorder(schedule)
    # planned from the first speed: budget / 1 s per step steps
    planned = keras.optimizers.schedules.CosineDecay(0.0, int(0.85 * budget), warmup_target=peak, warmup_steps=15)
    model.fit(x, y, batch_size=64, epochs=50, verbose=0, shuffle=False, callbacks=[fake.ticker(), clock, schedule, rec])
    steps = len(rec.lrs)
    top = max(rec.lrs)
    peak_i = int(np.argmax(rec.lrs))
    return {
        "steps": steps,
        "fake_seconds": fake.t,
        "budget": budget,
        "peak": peak,
        "max_lr": top,
        "last_lr": rec.lrs[-1],
        "planned_last_lr": float(keras.ops.convert_to_numpy(planned(steps - 1))),
        "optimizer_lr": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        "delta_at_peak": float(np.mean(rec.deltas[max(0, peak_i - 2) : peak_i + 3])),
        "delta_last": float(np.mean(rec.deltas[-2:])),
        "monotone_after_peak": bool(np.all(np.diff(rec.lrs[peak_i:]) <= 1e-12)),
        "lr_formula_end": float(budget_lr(1.0, peak, 0.15)),
    }


def recipe_train(budget=55.0):
    """The cifar recipe's own `train` with a budget, on real images (the digits, 16 x 16)."""
    x, y = load_digits(return_X_y=True)
    imgs = np.kron((x.reshape(-1, 8, 8, 1) * 255 / 16).astype("uint8"), np.ones((1, 2, 2, 1), "uint8"))
    d = SimpleNamespace(x_train=imgs[:1200], y_train=y[:1200], x_val=imgs[1200:1500], y_val=y[1200:1500], n_classes=10)
    r = Recipe(widths=(8, 16), batch_size=100, augment=False)
    fake = FakeTime(fast=1.0, slow=4.0, switch=10)
    _, h = train(r, d, 0, epochs=4, budget_s=budget, verbose=0, extra_callbacks=[fake.ticker()], now=fake.now)
    return {
        "epochs": len(h["loss"]),
        "lr": h["learning_rate"],
        "fake_seconds": fake.t,
        "budget": budget,
        "steps": fake.steps,
        "epoch_share": h["epoch_share"],
    }


if __name__ == "__main__":
    keras.utils.set_random_seed(0)
    out = {"mechanism": mechanism(), "recipe": recipe_train()}
    with open(sys.argv[1], "w") as f:
        json.dump(out, f)
