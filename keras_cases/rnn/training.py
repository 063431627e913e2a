"""Training: each architecture compiled once and re-initialised per seed (`Trainer`), and
every copy-task fit of a run, trained once and shared by the studies (`CopyRuns`)."""

from __future__ import annotations

import keras
import numpy as np

from keras_cases.callbacks import EpochClock, resumable, tensorboard
from keras_cases.data import batches
from keras_cases.rnn.cells import SpectralRadius
from keras_cases.rnn.models import build_copy_model, init_model, unused_params
from keras_cases.rnn.tasks import CopyTask, Sizes, Split, load_copy

TARGET = 0.95  # per-token test accuracy that counts as "solved"
STOP_AT = 0.999  # validation accuracy at which training stops early


class StopAtAccuracy(keras.callbacks.Callback):
    """Stop once validation accuracy reaches `target` (the task is solved)."""

    def __init__(self, target=STOP_AT):
        super().__init__()
        self.target = target

    def on_epoch_end(self, epoch, logs=None):
        if logs and logs.get("val_accuracy", 0.0) >= self.target:
            self.model.stop_training = True


def quick_eager(args) -> bool:
    """A --quick run takes a few dozen steps per model on short sequences: on TensorFlow
    running them eagerly, the time loop unrolled, beats tracing a tf.function (torch runs
    eagerly anyway). JAX's op-by-op mode is slower than compiling, so JAX compiles."""
    return bool(args.quick) and keras.config.backend() != "jax"


class Trainer:
    """Builds and compiles each architecture once and re-initialises it for every seed:
    compiling (XLA on JAX, tf.function on TensorFlow) costs more than training the small
    models here. A re-initialised model is a fresh one: new weights from the seed, the
    optimizer's step count and moments back to zero."""

    def __init__(self, args, sizes: Sizes):
        self.args, self.sizes = args, sizes
        self.models = {}

    def model(self, key, build):
        if key not in self.models:
            m = build()
            m.compile(
                optimizer=keras.optimizers.Adam(self.args.lr, clipnorm=1.0),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
                run_eagerly=quick_eager(self.args),
            )
            self.models[key] = m
        return self.models[key]

    def fit(self, model, d: Split, seed: int, t_max: int, name: str):
        a = self.args
        init_model(model, seed, a.gate_init, t_max)
        opt = model.optimizer
        for v in opt.variables:  # iterations, learning rate, Adam moments
            v.assign(np.zeros(v.shape, v.dtype))
        opt.learning_rate = a.lr
        radius, clock = SpectralRadius("rnn"), EpochClock(log_epoch=True)
        cbs = [
            radius,
            clock,
            StopAtAccuracy(),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=a.patience, restore_best_weights=True),
            *tensorboard(name),
        ]
        data = batches(d.x_train, d.y_train, a.batch_size, seed)
        hist = model.fit(
            data,
            validation_data=(d.x_val, d.y_val),
            validation_batch_size=a.batch_size,
            epochs=a.epochs,
            verbose=a.verbose,
            callbacks=resumable(name, cbs, data),
        ).history
        acc = lambda x, y: float(model.evaluate(x, y, batch_size=a.batch_size, verbose=0)[1])  # noqa: E731
        epoch_s = hist["epoch_seconds"]
        res = {
            "val_accuracy": acc(d.x_val, d.y_val),
            "test_accuracy": acc(d.x_test, d.y_test),
            "epochs_run": len(epoch_s),
            "best_epoch": int(np.argmin(hist["val_loss"])) + 1,
            "seconds": clock.total,  # resumed parts included
            "seconds_per_epoch": float(np.median(epoch_s[1:] if len(epoch_s) > 1 else epoch_s)),
            "radius": radius.values,
        }
        return res, hist


class CopyRuns:
    """The copy-task fits of one run, each trained once and shared by the studies (the
    comparison's LSTM runs are the ablation's "none" and the gradient study's trained
    models), with the data per length, every fit's history and the models to save."""

    def __init__(self, args, sizes: Sizes, seeds: list, lengths: list):
        self.args, self.sizes, self.seeds, self.lengths = args, sizes, seeds, lengths
        self.trainer = Trainer(args, sizes)
        self.tasks = {L: CopyTask(L, sizes.n_symbols, sizes.alphabet) for L in sorted({*lengths, args.ablation_length})}
        self.data, self.runs = {}, {}
        self.history = {}  # {fit name: Keras history}, the series fits' too
        self.models = {}  # {kind: (model, seed 0's weights, length)}, saved at the end

    def copy_data(self, L) -> Split:
        if L not in self.data:
            self.data[L] = load_copy(self.tasks[L], self.sizes, self.args.data_seed)
        return self.data[L]

    def train(self, L, kind, seed, open_gate=None, custom=False) -> dict:
        key = (L, kind, open_gate, custom, seed)
        if key not in self.runs:
            self.runs[key] = self._train(L, kind, seed, open_gate, custom)
        return self.runs[key]

    def _train(self, L, kind, seed, open_gate, custom) -> dict:
        task, units = self.tasks[L], self.sizes.units
        variant = f"{kind}{'_custom' if custom else ''}{'_' + open_gate + '_open' if open_gate else ''}"
        name = f"copy{L}_{variant}_seed{seed}"
        print(f"--- {name}", flush=True)
        model = self.trainer.model(
            ("copy", L, kind, open_gate, custom),
            lambda: build_copy_model(task, kind, units, open_gate, custom, unroll=quick_eager(self.args)),
        )
        res, self.history[name] = self.trainer.fit(model, self.copy_data(L), seed, task.steps, name)
        res.update(params=model.count_params(), used_params=model.count_params() - unused_params(model, open_gate))
        if seed == self.seeds[0] and not open_gate and not custom:
            res["weights"] = model.get_weights()
            if L == max(self.lengths) or kind not in self.models:
                self.models[kind] = (model, res["weights"], L)  # saved at the end, seed 0's weights
        print(
            f"    test accuracy {res['test_accuracy']:.4f} after {res['epochs_run']} epochs ({res['seconds']:.1f} s)",
            flush=True,
        )
        return res
