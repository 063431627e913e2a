"""Time to quality and compile settings for the spam and CIFAR-10 cases, in one backend's
process (benchmarks/worker.py calls these; Keras fixes its backend at import).

Every number comes from the case's own code: its data loader, model builder, compile and
`train()` with the case's defaults (read from the case's own argument parser), so a
measurement here is what `python -m keras_cases.<case>` does. The one thing added is
`TargetWatch`, a callback that notes the wall time at which the watched validation metric
first reaches the target and then stops training (or stops it when the cap runs out).
"""

from __future__ import annotations

import os
import statistics
import time

from keras_cases import runtime

# What "quality" means per case, and the caps. The spam target is the validation PR-AUC
# (average precision: the number the spam case early-stops on and picks its model by); its
# Transformer (the network the default run picks on validation) reaches 0.984-0.988 after one
# epoch and 0.990-0.992 after two on every backend. The CIFAR target is validation accuracy
# (without flip TTA, like the case's own time-to-80%/85%) under the case's recipe with its
# one-cycle schedule planned over CIFAR["epochs"] epochs (a 2-epoch plan ends at 0.697-0.703, too
# close to 0.70 to call; a 3-epoch plan passes it after epoch 2, at 0.733-0.742). An epoch takes
# 35-125 s per backend at load 1-2 and up to twice that at load 5-6, hence the cap.
SPAM = {"model": "transformer", "monitor": "val_pr_auc", "target": 0.99, "cap_s": 300}
CIFAR = {"monitor": "val_accuracy", "target": 0.70, "epochs": 3, "cap_s": 600}
SPAM_QUICK = {"model": "conv1d", "monitor": "val_pr_auc", "target": 0.5, "cap_s": 60, "n_train": 600}
CIFAR_QUICK = {"monitor": "val_accuracy", "target": 0.1, "epochs": 1, "cap_s": 60, "per_class": 16}


def target_watch(monitor: str, target: float, cap_s: float | None = None):
    """A Keras callback: `hit` = (seconds since fit began, epoch) when logs[monitor] first
    reaches `target` at an epoch end (then it stops training); it also stops training once
    `cap_s` seconds have passed. `trace` keeps (epoch, seconds, value) per epoch."""
    import keras

    class TargetWatch(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.hit, self.trace, self.capped = None, [], False

        def on_train_begin(self, logs=None):
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if cap_s is not None and time.perf_counter() - self.t0 > cap_s:
                self.capped = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            t = time.perf_counter() - self.t0
            v = (logs or {}).get(monitor)
            self.trace.append((epoch + 1, round(t, 3), None if v is None else float(v)))
            if self.hit is None and v is not None and v >= target and (cap_s is None or t <= cap_s):
                self.hit = (t, epoch + 1)
                self.model.stop_training = True
            elif cap_s is not None and t > cap_s:
                self.capped = True
                self.model.stop_training = True

        def result(self, **extra) -> dict:
            return {
                "monitor": monitor,
                "target": target,
                "cap_s": cap_s,
                "seconds": self.hit[0] if self.hit else None,
                "epochs": self.hit[1] if self.hit else None,
                "reached": self.hit is not None,
                "capped": self.capped,
                "epochs_run": len(self.trace),
                "trace": self.trace,
                **extra,
            }

    return TargetWatch()


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


# --- spam ---------------------------------------------------------------------------
def spam_arrays(n_train: int | None = None):
    """The spam case's split and vocabulary (fit on training texts), as the case builds them."""
    from keras_cases import spam, text_models
    from keras_cases.data.text import Vocabulary, split_unique

    args = spam.make_parser().parse_args([])
    data = spam.load_data()
    tr, va, _, _ = split_unique(data.texts, data.y, text_models.SPLIT_SEED)
    if n_train:
        tr, va = tr[:n_train], va[: max(n_train // 2, 100)]
    pick = lambda idx: [data.texts[i] for i in idx]  # noqa: E731
    vocab = Vocabulary.fit(pick(tr), max_tokens=args.max_tokens, max_len=args.max_len)
    return (
        args,
        vocab,
        vocab.encode(pick(tr)),
        data.y[tr].astype("float32"),
        vocab.encode(pick(va)),
        data.y[va].astype("float32"),
    )


def spam_time_to_quality(quick: bool, seed: int = 0) -> dict:
    """Seconds of the spam case's `train()` (its model, compile, class weights, NumPy
    batches, per-epoch validation scoring and early stopping, its default epochs, batch and
    threads) until the validation PR-AUC first reaches the target."""
    from keras_cases import text_models

    cfg = SPAM_QUICK if quick else SPAM
    args, vocab, x, y, xv, yv = spam_arrays(cfg.get("n_train"))
    runtime.set_threads(args.threads)
    runtime.set_seed(seed)
    model = text_models.compile_model(text_models.build_model(cfg["model"], len(vocab), vocab.max_len))
    watch = target_watch(cfg["monitor"], cfg["target"], cfg["cap_s"])
    load = load_avg()
    text_models.train(
        model,
        x,
        y,
        xv,
        yv,
        epochs=2 if quick else args.epochs,
        batch_size=args.batch_size,
        seed=seed,
        verbose=0,
        objective=args.objective,
        patience=args.patience,
        extra_callbacks=[watch],
    )
    return watch.result(
        case="spam",
        model=cfg["model"],
        max_epochs=2 if quick else args.epochs,
        batch_size=args.batch_size,
        threads=args.threads,
        n_train=len(x),
        load_before=load,
        load_after=load_avg(),
    )


def epoch_times(model, data, epochs: int, **fit_kwargs) -> tuple[float, list[float]]:
    """(first epoch seconds, incl. compile; the later epochs' seconds) of model.fit(data)."""
    import keras

    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    model.fit(data, epochs=1 + epochs, verbose=0, callbacks=[Timer()], **fit_kwargs)
    return times[0], times[1:]


def spam_spe(quick: bool, seed: int = 0, rounds: int = 5) -> list[dict]:
    """Training-epoch seconds of each spam network (the case's builders and compile, its
    batches: class weights, topped up to whole batches) at steps_per_execution 1 and 32.
    Keras on PyTorch accepts only 1. Both settings are built and compiled first (one epoch
    each), then timed one epoch at a time in alternation, `rounds` times: on a shared machine
    the load drifts, and alternating lets both settings see the same drift."""
    from keras_cases import text_models
    from keras_cases.data import batches

    args, vocab, x, y, _, _ = spam_arrays(SPAM_QUICK["n_train"] if quick else None)
    runtime.set_threads(args.threads)
    w = text_models.class_weights(y)
    x, y, w = (text_models.pad_rows(a, args.batch_size) for a in (x, y, w))
    kinds = ("conv1d",) if quick else text_models.NEURAL
    spes = (1,) if runtime.backend() == "torch" else (1, 32)
    rounds = 1 if quick else rounds
    rows = []

    def one_epoch(model, data):
        t = time.perf_counter()
        model.fit(data, epochs=1, verbose=0)
        return time.perf_counter() - t

    for kind in kinds:
        arms, load = {}, load_avg()
        for spe in spes:
            runtime.set_seed(seed)
            model = text_models.compile_model(text_models.build_model(kind, len(vocab), vocab.max_len))
            model.steps_per_execution = spe  # the case's compile, with this one setting changed
            runtime.init_weights(model, seed)
            data = batches(x, y, args.batch_size, seed, w)
            arms[spe] = (model, data, one_epoch(model, data), [])
        for _ in range(rounds):
            for spe in spes:
                model, data, _, times = arms[spe]
                times.append(one_epoch(model, data))
        for spe, (_, _, first, times) in arms.items():
            med = statistics.median(times)
            rows.append(
                {
                    "case": "spam",
                    "model": kind,
                    "spe": spe,
                    "batch_size": args.batch_size,
                    "steps": len(x) // args.batch_size,
                    "epochs_timed": rounds,
                    "first_epoch_s": first,
                    "epoch_s": med,
                    "epoch_s_min": min(times),
                    "epoch_s_max": max(times),
                    "compile_s": max(first - med, 0.0),
                    "load": load,
                }
            )
            print(f"spam {kind} spe={spe}: first {first:.2f} s, epoch {med:.3f} s", flush=True)
    return rows


# --- CIFAR-10 -----------------------------------------------------------------------
def cifar_time_to_quality(quick: bool, seed: int = 0) -> dict:
    """Seconds of the CIFAR case's `train()` (its recipe and defaults: network, whitening,
    flip+crop, label smoothing, SGD-Nesterov warmup+cosine planned over CIFAR["epochs"]
    epochs, batch 256, validation each epoch) until validation accuracy first reaches the
    target, with the case's own wall-clock budget set to the cap."""
    from dataclasses import replace

    from keras_cases import cifar
    from keras_cases.data import images

    cfg = CIFAR_QUICK if quick else CIFAR
    args = cifar.make_parser().parse_args([])
    runtime.set_threads(args.threads)
    runtime.set_seed(seed)
    r = cifar.recipe_from(args)
    cifar.set_precision(r.mixed_precision)
    t = time.perf_counter()
    if quick:
        r = replace(r, widths=(8, 16, 32))  # the case's own --quick network
        d = images.cifar10_per_class(cfg["per_class"])
    else:
        d = images.load("cifar10")
    load_s = time.perf_counter() - t
    watch = target_watch(cfg["monitor"], cfg["target"], cfg["cap_s"])
    load = load_avg()
    cifar.train(r, d, seed, cfg["epochs"], budget_s=cfg["cap_s"], verbose=0, extra_callbacks=[watch])
    return watch.result(
        case="cifar",
        model=f"cifar recipe, widths {','.join(map(str, r.widths))}",
        max_epochs=cfg["epochs"],
        batch_size=r.batch_size,
        threads=args.threads,
        n_train=int(d.sizes[0]),
        n_val=int(d.sizes[1]),
        dataset=d.name,
        data_load_s=load_s,
        load_before=load,
        load_after=load_avg(),
    )
