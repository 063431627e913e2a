"""The ablation study: the recipe retrained with each ingredient removed in turn, on a
smaller training set, mean ± std over seeds, decided on validation accuracy."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from keras_cases import plots
from keras_cases.cifar.model import Recipe, accuracy
from keras_cases.cifar.training import train
from keras_cases.data import images
from keras_cases.evaluation import mean_std
from keras_cases.runs import markdown_table

INGREDIENTS = {  # name -> (what the recipe does, the change that removes it)
    "augment": ("flip + 4px crop augmentation", {"augment": False}),
    "label_smoothing": ("label smoothing 0.2", {"label_smoothing": 0.0}),
    "whiten": ("fixed whitening first layer", {"whiten": False}),
    "batchnorm": ("batch normalization", {"batchnorm": False}),
    "schedule": ("warmup + cosine schedule", {"schedule": "constant"}),
    "nesterov": ("SGD-Nesterov (vs AdamW)", {"optimizer": "adamw"}),
    "weight_decay": ("weight decay", {"weight_decay": 0.0}),
    "tta": ("flip test-time augmentation", {"tta": False}),
}
CUTOUT = {"cutout": ("cutout (a square of each training image)", {"cutout": 0})}  # where the recipe has it
AIRBENCH_INGREDIENTS = {  # --recipe airbench94: its own (keras_cases/cifar/airbench94.py)
    "whiten": ("fixed whitening first layer", {"whiten": False}),
    "dirac": ("dirac (identity) init of the block convs", {"dirac": False}),
    "lookahead": ("lookahead / EMA of the weights", {"lookahead": False}),
    "bias_lr": ("64x learning rate of the BN biases", {"bias_lr": 1.0}),
    "label_smoothing": ("label smoothing 0.2", {"label_smoothing": 0.0}),
    "augment": ("alternating flip + 2px translate augmentation", {"augment": False}),
    "schedule": ("triangular schedule", {"schedule": "constant"}),
    "weight_decay": ("weight decay", {"weight_decay": 0.0}),
    "tta_translate": ("translate test-time augmentation", {"tta": 1}),
    "tta": ("flip + translate test-time augmentation", {"tta": 0}),
}
EVAL_ONLY = ("tta", "tta_translate")  # the full recipe's trained models, evaluated differently
QUICK_INGREDIENTS = ("augment", "tta")  # --quick ablates two ingredients only


def ingredients_of(r: Recipe) -> dict:
    table = AIRBENCH_INGREDIENTS if r.arch == "airbench" else INGREDIENTS
    return {**table, **CUTOUT} if r.cutout and r.augment else table


def ablation(base: Recipe, d, seeds, epochs: int, verbose: int, ingredients=None):
    """Validation accuracy of the recipe and of the recipe with each ingredient removed."""
    rows = []
    table = ingredients_of(base)
    variants = [("full recipe", "", {})] + [(k, *table[k]) for k in (ingredients or tuple(table))]
    trained = {}
    for name, what, change in variants:
        accs, secs = [], []
        for s in seeds:
            if name in EVAL_ONLY:  # the same trained models, evaluated with less TTA
                model = trained[s]
                accs.append(accuracy(model, d.x_val, d.y_val, tta=change["tta"]))
                secs.append(np.nan)
                continue
            r = replace(base, **change)
            t = time.perf_counter()
            model, _ = train(r, d, s, epochs, verbose=0, name=f"ablation_{name.replace(' ', '_')}_seed{s}")
            secs.append(time.perf_counter() - t)
            accs.append(accuracy(model, d.x_val, d.y_val, tta=r.tta))
            if name == "full recipe":
                trained[s] = model
        mean, std = mean_std(accs)
        rows.append(
            {
                "variant": "full recipe" if not what else f"without {what}",
                "ingredient": name,
                "val_accuracy": mean,
                "std": std,
                "seconds": float(np.nanmean(secs)) if not np.all(np.isnan(secs)) else float("nan"),
            }
        )
        if verbose:
            print(f"  ablation {rows[-1]['variant']:45s} val acc {mean:.4f} ± {std:.4f}", flush=True)
    full = rows[0]["val_accuracy"]
    for row in rows:
        row["gain"] = full - row["val_accuracy"]  # what the ingredient adds
    return rows


def study_ablation(args, run, r: Recipe, d, seeds, metrics) -> tuple[str, str]:
    """Each ingredient's gain on `--ablation-train` images per class, `--ablation-epochs`
    epochs each: ablation.json, ablation.png, and its report section."""
    small = images.per_class(d, args.ablation_train)
    epochs = args.ablation_epochs
    ingredients = QUICK_INGREDIENTS if args.quick else tuple(ingredients_of(r))
    print(
        f"ablation: {len(ingredients) + 1} variants x {len(seeds)} seeds, {small.sizes[0]:,} training images, "
        f"{epochs} epochs each",
        flush=True,
    )
    rows = ablation(r, small, seeds, epochs, args.verbose, ingredients)
    run.write_json("ablation.json", rows)
    plots.ablation_bars(
        rows,
        run.path("ablation.png"),
        f"each ingredient's gain in validation accuracy ({small.sizes[0]:,} images, {epochs} epochs)",
    )
    metrics["ablation_full_val_accuracy"] = rows[0]["val_accuracy"]
    for row in rows[1:]:
        metrics[f"ablation_gain_{row['ingredient']}"] = row["gain"]
    return "Ablation: what each ingredient adds", (
        f"Each row removes one ingredient from the recipe and retrains ({small.sizes[0]:,} training images, "
        f"{epochs} epochs, seeds {seeds[0]}..{seeds[-1]}); validation accuracy, mean and std over seeds. "
        f"*gain* = full recipe minus the variant: positive means the ingredient helps at this scale.\n\n"
        + markdown_table(rows, ["variant", "val_accuracy", "std", "gain", "seconds"])
        + "\n\n![ablation](ablation.png)"
    )
