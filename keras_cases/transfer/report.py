"""The report: metrics over seeds per stage, the per-class table, the figures and the text."""

from __future__ import annotations

import re
import time

import numpy as np

from keras_cases import plots
from keras_cases.data.image_serving import explained_examples, explained_section
from keras_cases.runs import markdown_table
from keras_cases.transfer.training import STAGES


def key(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def classes(d) -> dict:
    """classes.json: what model.keras takes and the names of its outputs."""
    return {
        "class_names": list(d.class_names),
        "image_size": int(d.x_train.shape[1]),
        "input": f"uint8 RGB pixels, shape (n, {d.x_train.shape[1]}, {d.x_train.shape[2]}, 3), 0..255",
    }


def run_metrics(args, d, what: str, backbone_size: int, model_params: int) -> dict:
    """The metrics that describe the run: data and split, backbone, classes, model size."""
    return {
        "dataset": d.name,
        **dict(zip(("n_train", "n_val", "n_test"), d.sizes)),
        "seed": args.seed,
        "seeds": args.seeds,
        "quick": args.quick,
        "backbone": args.backbone,
        "weights": args.weights,
        "weights_note": args.weights_note,
        "backbone_description": what,
        "backbone_size": backbone_size,
        "image_size": int(d.x_train.shape[1]),
        "n_classes": d.n_classes,
        "class_names": list(d.class_names),
        "model_parameters": model_params,
    }


def summarise(metrics: dict, per_seed: list, args, d) -> list[dict]:
    """Add each stage's metrics (mean, and std over several seeds; per-class F1 of the first
    seed) and the saved model's to `metrics`; returns the rows of the stages' table."""
    first, rows = per_seed[0], []
    for stage in STAGES:
        k = key(stage)
        for m in ("test_accuracy", "macro_f1", "best_val_accuracy", "seconds", "epochs_run"):
            v = np.array([r[stage][m] for r in per_seed], "float64")
            metrics[f"{k}_{m}"] = float(v.mean())
            if len(v) > 1:
                metrics[f"{k}_{m}_std"] = float(v.std(ddof=1))
        metrics[f"{k}_trainable_params"] = first[stage]["trainable_params"]
        metrics[f"{k}_backbone_weights_changed"] = first[stage]["backbone_weights_changed"]
        for name in d.class_names:
            metrics[f"{k}_f1_{key(name)}"] = first[stage]["report"][name]["f1-score"]

        def pmf(m, f="{:.4f}"):
            std = f" ± {f.format(metrics[f'{k}_{m}_std'])}" if f"{k}_{m}_std" in metrics else ""
            return f.format(metrics[f"{k}_{m}"]) + std

        blocks = f"top {args.unfreeze_blocks} block{'s' * (args.unfreeze_blocks != 1)}"
        rows.append(
            {
                "stage": "head only (backbone frozen)"
                if stage == "frozen"
                else f"fine-tuned ({blocks}, lr x{args.fine_tune_lr_factor:g})",
                "test accuracy": pmf("test_accuracy"),
                "macro-F1": pmf("macro_f1"),
                "trainable params": f"{first[stage]['trainable_params']:,}",
                "epochs": pmf("epochs_run", "{:.1f}"),
                "seconds": pmf("seconds", "{:.1f}"),
            }
        )
    # the saved model (the first seed, fine-tuned): what `serve` reports
    metrics["test_accuracy"] = first["fine-tuned"]["test_accuracy"]
    metrics["macro_f1"] = first["fine-tuned"]["macro_f1"]
    metrics["backbone_weight_arrays"] = first["frozen"]["backbone_weight_arrays"]
    return rows


def per_class_rows(first: dict, d) -> list[dict]:
    """Test precision, recall and F1 per class after each stage (the first seed)."""
    rows = []
    for name in d.class_names:
        a, b = first["frozen"]["report"][name], first["fine-tuned"]["report"][name]
        rows.append(
            {
                "class": name,
                "frozen P": a["precision"],
                "frozen R": a["recall"],
                "frozen F1": a["f1-score"],
                "fine-tuned P": b["precision"],
                "fine-tuned R": b["recall"],
                "fine-tuned F1": b["f1-score"],
                "support": int(b["support"]),
            }
        )
    return rows


def figures(run, first: dict, history: dict, seed: int, d) -> None:
    plots.confusion_matrices(
        {f"{stage} (seed {seed})": first[stage]["confusion"] for stage in STAGES},
        run.path("confusion_matrix.png"),
        labels=list(d.class_names),
    )
    plots.learning_curves(
        {"stage 1: head": history["frozen"], "stage 2: fine-tune": history["fine-tuned"]},
        run.path("learning_curves.png"),
        metrics=("loss", "accuracy"),
    )


def explained(run, model, d) -> tuple[str, dict]:
    """gradcam.png: Grad-CAM of the fine-tuned model (the saved one) at the backbone's last
    feature map, on right and wrong test images; (the report text, its metrics)."""
    t = time.perf_counter()
    e = explained_examples(model, d.x_test, d.y_test, list(d.class_names), run.path("gradcam.png"))
    m = {f"gradcam_{k}": v for k, v in e.items() if k != "method"}
    return explained_section(e, "gradcam.png"), {**m, "explain_seconds": time.perf_counter() - t}


def changed_list(names: list) -> str:
    shown = ", ".join(f"`{w}`" for w in names[:6])
    return f"{len(names)} ({shown}{', ...' if len(names) > 6 else ''})" if names else "0"


def notes(m: dict) -> list[str]:
    """The report header's lines about the images, the backbone and the saved model."""
    return [
        f"images: {m['n_classes']} classes, {m['image_size']}x{m['image_size']} pixels",
        f"backbone: {m['backbone_description']}; it sees {m['backbone_size']}x{m['backbone_size']} inputs",
        f"model: {m['model_parameters']:,} parameters; takes raw uint8 pixels "
        "(`model.keras`; class names in `classes.json`)",
    ]


def section(m, rows, per_class, args, seeds) -> str:
    return f"""Stage 1 trains the head with the backbone frozen (called with training=False: batch norm
uses its pretrained statistics), Adam {args.lr:g}. Stage 2 unfreezes the top
{args.unfreeze_blocks} backbone block(s) (batch-norm layers stay frozen), recompiles with
the learning rate x{args.fine_tune_lr_factor:g}, and continues from the best stage-1 weights.
Both: class-weighted loss, flips and shifts inside the model, early stopping on validation
loss (patience {args.patience}, best weights restored), at most {args.epochs} / {args.fine_tune_epochs} epochs.
Backbone weight arrays changed by stage 1 (checked, seed {seeds[0]}; batch-norm statistics
included): {len(m["frozen_backbone_weights_changed"])} of {m["backbone_weight_arrays"]}; by stage 2: {changed_list(m["fine_tuned_backbone_weights_changed"])}.

{markdown_table(rows, list(rows[0]))}

## Per class (test, seed {seeds[0]})

{markdown_table(per_class, list(per_class[0]), fmt="{:.3f}")}

Macro-F1: frozen {m["frozen_macro_f1"]:.4f}, fine-tuned {m["fine_tuned_macro_f1"]:.4f}.

![confusion matrices](confusion_matrix.png)

![learning curves](learning_curves.png)"""
