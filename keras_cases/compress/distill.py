"""Knowledge distillation (Hinton et al. 2015): a smaller network of the teacher's family
trained on the teacher's softened outputs.

The teacher scores the training set once (its logits; a probability p becomes the logit
log p/(1-p)); the soft targets softmax(logits / T) (sigmoid for one output) and the hard
labels are stacked into one label array and given to a plain `model.fit`, so there is no
custom train_step on any backend. The loss, for the student's logits z:

    alpha * T^2 * CE(soft targets, softmax(z / T)) + (1 - alpha) * CE(labels, softmax(z))

(T^2 keeps the soft term's gradients on the scale of the hard term's). The student's size
is `--width` (a multiplier of the teacher's channel widths) or `--params` (the largest
multiplier whose student has at most that many parameters; default a quarter of the
teacher's).
"""

from __future__ import annotations

import numpy as np
from keras import ops

from keras_cases import UserError


def softmax(z, t):
    z = z / t
    if z.shape[1] == 1:
        return 1 / (1 + np.exp(-z))
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def distill_loss(temperature: float, alpha: float, k: int):
    """Loss on y_true = [soft targets (k) | hard labels (k)] and y_pred = the student's
    logits (k > 1) or its probability (k == 1, turned back into a logit)."""
    t = float(temperature)

    def loss(y_true, y_pred):
        soft, hard = y_true[:, :k], y_true[:, k:]
        if k == 1:
            p = ops.clip(y_pred, 1e-6, 1 - 1e-6)
            z = ops.log(p) - ops.log1p(-p)
            s_t = ops.log_sigmoid(z / t), ops.log_sigmoid(-z / t)
            h = ops.log_sigmoid(z), ops.log_sigmoid(-z)
            soft_ce = -(soft * s_t[0] + (1 - soft) * s_t[1])[:, 0]
            hard_ce = -(hard * h[0] + (1 - hard) * h[1])[:, 0]
        else:
            soft_ce = -ops.sum(soft * ops.log_softmax(y_pred / t, axis=-1), axis=-1)
            hard_ce = -ops.sum(hard * ops.log_softmax(y_pred, axis=-1), axis=-1)
        return alpha * t * t * soft_ce + (1 - alpha) * hard_ce

    return loss


def choose_factor(case, teacher_params: int, width, params, seed) -> float:
    """`width`, or the largest multiplier in (0, 1] whose student fits in `params`."""
    if width is not None:
        return width
    limit = params or teacher_params // 4
    lo, hi = 0.0, 1.0
    for _ in range(12):
        mid = (lo + hi) / 2
        if case.student(mid, seed, init=False)[0].count_params() <= limit:
            lo = mid
        else:
            hi = mid
    if lo == 0.0 or case.student(lo, seed, init=False)[0].count_params() > limit:
        raise UserError(f"--params {limit}: even the narrowest student has more parameters than that")
    return lo


def compress(case, args) -> tuple:
    """(student, what metrics.json keeps, the report's paragraph, its history)."""
    teacher_params = case.model.count_params()
    factor = choose_factor(case, teacher_params, args.width, args.params, args.seed)
    student, shape = case.student(factor, args.seed)
    if student.count_params() >= teacher_params:
        raise UserError(
            f"the student ({student.count_params():,} parameters) is not smaller than the teacher "
            f"({teacher_params:,}): give a smaller --width or --params"
        )
    logits = case.teacher_logits()
    hard = case.hard_targets()
    targets = np.concatenate([softmax(logits, args.temperature), hard], axis=1).astype("float32")
    data = case.train_batches(targets, args.batch_size, args.seed)
    student.compile(
        case.optimizer(args.lr, args.epochs * len(data)), distill_loss(args.temperature, args.alpha, hard.shape[1])
    )
    print(
        f"student: {student.count_params():,} parameters ({student.count_params() / teacher_params:.3f} of the teacher)"
    )
    h = student.fit(data, epochs=args.epochs, verbose=args.verbose)
    info = {
        "temperature": args.temperature,
        "alpha": args.alpha,
        "width_factor": factor,
        "student": shape,
        "student_params": student.count_params(),
        "teacher_params": teacher_params,
        "epochs": args.epochs,
    }
    text = (
        f"Student {shape} with {student.count_params():,} parameters "
        f"({student.count_params() / teacher_params:.1%} of the teacher's {teacher_params:,}), trained "
        f"{args.epochs} epoch(s) from scratch on the teacher's soft targets at temperature "
        f"{args.temperature:g} (weight {args.alpha:g}) and the labels (weight {1 - args.alpha:g})."
    )
    return student, info, text, h.history
