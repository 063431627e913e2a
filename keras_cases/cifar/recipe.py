"""The recipe study: train inside the epoch or wall-clock budget, test once, plot."""

from __future__ import annotations

import json
import os
import time

import numpy as np

from keras_cases import plots, runtime
from keras_cases.cifar.model import Recipe, accuracy, precision_hint, predict_logits
from keras_cases.cifar.training import plan_epochs, time_to, train
from keras_cases.data.image_serving import explained_examples, explained_section
from keras_cases.runs import markdown_table, write_text


def planned_epochs(args, run, r: Recipe, d) -> tuple[int, float | None]:
    """(epochs, budget seconds): `--epochs` when given (no budget), else as many epochs as
    `--budget-minutes` fits (timed once; a resumed run keeps the schedule it planned)."""
    if args.epochs:
        return args.epochs, None
    budget = args.budget_minutes * 60
    plan = run.dir / "checkpoints" / "budget_plan.json"
    if run.resumed and plan.is_file():
        epochs, per_epoch = json.loads(plan.read_text())
    else:
        epochs, per_epoch = plan_epochs(r, d, args.seed, budget)
        plan.parent.mkdir(parents=True, exist_ok=True)
        write_text(plan, json.dumps([epochs, per_epoch]))
    print(
        f"budget {args.budget_minutes:g} min: one epoch takes ~{per_epoch:.0f} s -> {epochs} epoch{'s' * (epochs != 1)}",
        flush=True,
    )
    if hint := precision_hint(args.mixed_precision, r):
        print(hint, flush=True)
    return epochs, budget


def study_recipe(args, run, r: Recipe, d, metrics, history) -> tuple[str, str]:
    """Train the recipe, save it as model.keras, meet the test set once; its report section."""
    epochs, budget = planned_epochs(args, run, r, d)
    load_before = os.getloadavg()[0]
    model, h = train(r, d, args.seed, epochs, budget, args.verbose)
    metrics["load_average_before"], metrics["load_average_after"] = load_before, os.getloadavg()[0]
    runtime.save_model(model, run.path("model.keras"))
    history["recipe"] = h
    test_acc = accuracy(model, d.x_test, d.y_test, tta=r.tta)
    test_plain = accuracy(model, d.x_test, d.y_test, tta=False) if r.tta else test_acc
    metrics.update(
        {
            "test_accuracy": test_acc,
            "test_accuracy_no_tta": test_plain,
            "val_accuracy": accuracy(model, d.x_val, d.y_val, tta=r.tta),
            "epochs_planned": epochs,
            "epochs_trained": len(h["loss"]),
            "last_epoch_share": h["epoch_share"][-1],  # < 1: the budget cut it short
            "train_seconds": h["wall_seconds"][-1],
            "params": model.count_params(),
            "time_to_80": time_to(h, 0.80),
            "time_to_85": time_to(h, 0.85),
            "time_to_90": time_to(h, 0.90),
            "time_to_93": time_to(h, 0.93),  # airbench94's target
        }
    )
    plot_recipe(run, model, d, h, r)
    looks = explain_recipe(run, model, d, r, metrics) if r.arch != "vit" else ""  # ViT: vit.study_attention
    print(
        f"test accuracy {test_acc:.4f} (no TTA {test_plain:.4f}); {len(h['loss'])} epoch{'s' * (len(h['loss']) != 1)} in "
        f"{h['wall_seconds'][-1]:.0f} s; time to 80%: {fmt_s(metrics['time_to_80'])}, "
        f"to 85%: {fmt_s(metrics['time_to_85'])}",
        flush=True,
    )
    return "The recipe", recipe_report(metrics, h, r) + looks


def plot_recipe(run, model, d, h, r: Recipe) -> None:
    """accuracy.png (against epoch and wall clock), confusion.png, test_examples.png."""
    plots.accuracy_vs_time(h, run.path("accuracy.png"), levels=(0.80, 0.85))
    logits = predict_logits(model, d.x_test, r.tta)
    plots.confusion_matrices(
        {"test": confusion(d.y_test, logits.argmax(1), d.n_classes)}, run.path("confusion.png"), labels=d.class_names
    )
    show = np.linspace(0, len(d.y_test) - 1, 30).astype(int)  # spread over the (maybe sorted) test set
    plots.image_grid(
        d.x_test[show].astype("float32") / 255,
        run.path("test_examples.png"),
        "test images with the predicted class (✗: wrong)",
        ncols=10,
        captions=[d.class_names[p] + ("" if p == t else " ✗") for p, t in zip(logits[show].argmax(1), d.y_test[show])],
    )


def explain_recipe(run, model, d, r: Recipe, metrics) -> str:
    """What the network looks at (gradcam.png: Grad-CAM on right and wrong test images), its
    first layer's filters (filters.png) and one test image's feature maps after each block
    (feature_maps.png); the seconds they took go in metrics["explain_seconds"]."""
    t = time.perf_counter()
    e = explained_examples(model, d.x_test, d.y_test, list(d.class_names), run.path("gradcam.png"), batch_size=1000)
    metrics.update({f"gradcam_{k}": v for k, v in e.items() if k != "method"})
    n_filters = plots.conv_filters(model, run.path("filters.png"))
    blocks = [f"block{b}_gelu2" for b in range(1, len(r.widths) + 1)]
    plots.feature_maps(
        model,
        d.x_test[0],
        blocks,
        run.path("feature_maps.png"),
        f"test image 0 ({d.class_names[d.y_test[0]]}): the 8 most active channels after each block",
    )
    metrics["explain_seconds"] = time.perf_counter() - t
    return (
        "\n\n### What the network looks at\n\n"
        + explained_section(
            e, "gradcam.png", "The predictions here are the model's own, without test-time augmentation."
        )
        + f"\n\nThe {n_filters} filters of the first layer, "
        + (
            "the fixed whitening convolution (computed from the patch covariance of the training images, not learnt)"
            if r.whiten
            else "a learnt 2x2 convolution (whitening is off)"
        )
        + ", each scaled to [0, 1] on its own.\n\n![first-layer filters](filters.png)\n\n"
        f"The feature maps of one test image after each block ({', '.join(blocks)}).\n\n"
        "![feature maps](feature_maps.png)"
    )


def confusion(y, p, k):
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y, p, labels=list(range(k)))


def cut_short(m) -> str:
    """The report's words for a last epoch the budget cut short (none when it was whole)."""
    share = m["last_epoch_share"]
    return f", the last cut short by the budget at {share:.0%} of its steps" if share < 1 else ""


def fmt_s(s):
    return "not reached" if s is None else f"{s:.0f} s"


def recipe_report(m, h, r: Recipe) -> str:
    rows = [
        {
            "epoch": i + 1,
            "wall seconds": h["wall_seconds"][i],
            "train accuracy": h["accuracy"][i],
            "val accuracy": h["val_accuracy"][i],
        }
        for i in range(len(h["loss"]))
    ]
    return (
        f"{len(r.widths)} blocks of widths {', '.join(map(str, r.widths))}, {m['params']:,} "
        f"parameters; batch {r.batch_size}, peak learning rate {r.lr}, label smoothing {r.label_smoothing}, "
        f"weight decay {r.weight_decay}, schedule {r.schedule}, optimizer {r.optimizer}, augmentation "
        f"{r.augment}{f' (cutout {r.cutout} px)' if r.augment and r.cutout else ''}, whitening {r.whiten}, batch-norm {r.batchnorm}, TTA {r.tta}, mixed precision "
        f"{r.mixed_precision}.\n\n"
        f"**Test accuracy {m['test_accuracy']:.4f}** ({m['test_accuracy_no_tta']:.4f} without TTA), "
        f"measured once after training; validation {m['val_accuracy']:.4f}. {m['epochs_trained']} of "
        f"{m['epochs_planned']} planned epochs in {m['train_seconds']:.0f} s{cut_short(m)}. Time to 80% validation accuracy: "
        f"{fmt_s(m['time_to_80'])}; to 85%: {fmt_s(m['time_to_85'])}; to 90%: {fmt_s(m['time_to_90'])}; to 93%: {fmt_s(m['time_to_93'])} "
        f"(validation accuracy here is without TTA).\n\n![accuracy](accuracy.png)\n\n"
        + markdown_table(rows, list(rows[0]), fmt="{:.4f}")
        + "\n\n![confusion](confusion.png)"
    )
