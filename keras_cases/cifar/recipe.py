"""The recipe study: train inside the epoch or wall-clock budget, test once, plot."""

from __future__ import annotations

import json
import os

import numpy as np

from keras_cases import plots, runtime
from keras_cases.cifar.model import Recipe, accuracy, predict_logits
from keras_cases.cifar.training import plan_epochs, time_to, train
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
    print(f"budget {args.budget_minutes:g} min: one epoch takes ~{per_epoch:.0f} s -> {epochs} epochs", flush=True)
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
            "train_seconds": h["wall_seconds"][-1],
            "params": model.count_params(),
            "time_to_80": time_to(h, 0.80),
            "time_to_85": time_to(h, 0.85),
            "time_to_90": time_to(h, 0.90),
        }
    )
    plot_recipe(run, model, d, h, r)
    print(
        f"test accuracy {test_acc:.4f} (no TTA {test_plain:.4f}); {len(h['loss'])} epochs in "
        f"{h['wall_seconds'][-1]:.0f} s; time to 80%: {fmt_s(metrics['time_to_80'])}, "
        f"to 85%: {fmt_s(metrics['time_to_85'])}",
        flush=True,
    )
    return "The recipe", recipe_report(metrics, h, r)


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


def confusion(y, p, k):
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y, p, labels=list(range(k)))


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
        f"{r.augment}, whitening {r.whiten}, batch-norm {r.batchnorm}, TTA {r.tta}, mixed precision "
        f"{r.mixed_precision}.\n\n"
        f"**Test accuracy {m['test_accuracy']:.4f}** ({m['test_accuracy_no_tta']:.4f} without TTA), "
        f"measured once after training; validation {m['val_accuracy']:.4f}. {m['epochs_trained']} of "
        f"{m['epochs_planned']} planned epochs in {m['train_seconds']:.0f} s. Time to 80% validation accuracy: "
        f"{fmt_s(m['time_to_80'])}; to 85%: {fmt_s(m['time_to_85'])}; to 90%: {fmt_s(m['time_to_90'])} "
        f"(validation accuracy here is without TTA).\n\n![accuracy](accuracy.png)\n\n"
        + markdown_table(rows, list(rows[0]), fmt="{:.4f}")
        + "\n\n![confusion](confusion.png)"
    )
