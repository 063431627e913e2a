"""Magnitude pruning with fine-tuning, in Keras (no tensorflow-model-optimization, which
is TensorFlow-only).

Every trainable weight matrix (kernels of Dense and convolution layers, embedding
tables, recurrent and attention kernels: each trainable weight of rank 2 or more; biases
and batch-norm vectors are left whole) is pruned layer by layer: its smallest-magnitude
entries are set to zero. The sparsity rises over `rounds` rounds to the target (cubic
schedule, Zhu & Gupta 2017: most of it early, while the network can still recover), each
round fine-tuned for its share of the epochs. The mask is held by a Keras constraint on
the variable (`MaskConstraint`): the optimizer applies it after every update on every
backend, so a pruned weight stays exactly zero. The saved model is a plain Keras model
whose zeros compress (the gzip column) but run at dense speed.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_cases import UserError


class MaskConstraint(keras.constraints.Constraint):
    """w * mask after each optimizer step (a fixed 0/1 mask of the weight's shape)."""

    def __init__(self, mask):
        self.mask = ops.convert_to_tensor(np.asarray(mask, "float32"))

    def __call__(self, w):
        return w * ops.cast(self.mask, w.dtype)


def prunable(model) -> list:
    return [v for v in model.trainable_weights if len(v.shape) >= 2]


def magnitude_mask(w: np.ndarray, sparsity: float) -> np.ndarray:
    """1 where |w| is among the largest (1 - sparsity) of the entries, 0 elsewhere: exactly
    round(sparsity * size) zeros (ties broken by position)."""
    k = int(round(sparsity * w.size))
    mask = np.ones(w.size, "float32")
    mask[np.argsort(np.abs(w).ravel(), kind="stable")[:k]] = 0
    return mask.reshape(w.shape)


def schedule(target: float, rounds: int) -> list[float]:
    return [target * (1 - (1 - r / rounds) ** 3) for r in range(1, rounds + 1)]


def apply_masks(variables, sparsity: float) -> None:
    for v in variables:
        w = np.asarray(v.numpy())
        mask = magnitude_mask(w, sparsity)
        v.assign(w * mask)
        v.constraint = MaskConstraint(mask)


def compress(case, args) -> tuple:
    """(model, what metrics.json keeps, the report's paragraph): the teacher pruned and
    fine-tuned on its own training set."""
    model = case.model
    if any("int8" in str(getattr(lay.dtype_policy, "name", "")) for lay in model.layers):
        raise UserError(f"{case.dir} holds int8 layers: prune the float run it was quantized from")
    variables = prunable(model)
    rounds = min(args.rounds, args.epochs)
    per_round = [args.epochs // rounds + (r < args.epochs % rounds) for r in range(rounds)]
    targets = case.hard_targets()
    levels = schedule(args.sparsity, rounds)
    hist = {}
    for r, (level, epochs) in enumerate(zip(levels, per_round)):
        apply_masks(variables, level)
        data = case.train_batches(targets, args.batch_size, args.seed + r)
        model.compile(case.optimizer(args.lr, epochs * len(data), fine_tune=True), case.loss())
        h = model.fit(data, epochs=epochs, verbose=args.verbose)
        for k, v in h.history.items():
            hist.setdefault(k, []).extend(v)
        print(f"round {r + 1}/{rounds}: sparsity {level:.3f}, {epochs} epoch(s), loss {h.history['loss'][-1]:.4f}")
    for v in variables:
        v.constraint = None  # the saved model is plain: its zeros stay, the masks go
    zero = {v.path: float(np.mean(np.asarray(v.numpy()) == 0)) for v in variables}
    info = {"sparsity": args.sparsity, "rounds": rounds, "schedule": levels, "zero_fraction": zero}
    text = (
        f"Magnitude pruning of {len(variables)} weight tensors to {args.sparsity:.0%} zeros each, "
        f"in {rounds} round(s) (sparsity {', '.join(f'{s:.3f}' for s in levels)}), fine-tuned "
        f"{args.epochs} epoch(s) in all on the training set; the mask was held by a constraint "
        f"after every optimizer step. Zero fraction per tensor after fine-tuning: "
        + ", ".join(f"{k} {v:.3f}" for k, v in zero.items())
        + "."
    )
    return model, info, text, hist
