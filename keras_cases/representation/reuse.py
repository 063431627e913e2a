"""Study `reuse`: the autoencoder's encoder as a digit classifier on a few labels,
{random, autoencoder-trained} x {frozen, fine-tuned}."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from keras_cases import plots, runtime
from keras_cases.evaluation import mean_std
from keras_cases.representation.autoencoders import build_autoencoder, compiled_autoencoder, train_autoencoder
from keras_cases.representation.common import HIDDEN, compile_classifier, moved, pm, restart, train_classifier, verdict
from keras_cases.runs import markdown_table

VARIANTS = ("random frozen", "random fine-tuned", "trained frozen", "trained fine-tuned")


def labelled_subset(d, n_labels: int):
    """The first n_labels / n_classes training images of every class (indices)."""
    per = max(1, n_labels // d.n_classes)
    return np.sort(np.concatenate([np.flatnonzero(d.y_train == c)[:per] for c in range(d.n_classes)]))


def build_encoder_classifier(k, shape, n_classes, frozen=False, hidden: int = HIDDEN):
    """(classifier, encoder): the encoder of `build_autoencoder(k)`, a batch norm that
    standardises its code, and a softmax layer; `frozen` leaves only the last two trainable
    (a linear classifier on the standardised code). The autoencoder's code is unscaled
    (std ~4 per dimension): without the batch norm a frozen probe underfits at Adam 1e-3 and
    a fresh softmax layer's first large gradients knock the pretrained encoder about."""
    _, encoder = build_autoencoder(k, shape, hidden)
    inputs = keras.Input(shape, name="pixels")
    code = layers.BatchNormalization(momentum=0.9, name="code_norm")(encoder(inputs))
    out = layers.Dense(n_classes, activation="softmax", name="class")(code)
    encoder.trainable = not frozen
    return keras.Model(inputs, out, name="encoder_classifier"), encoder


def study_reuse(args, seeds, run, metrics, history, saved, d, encoders) -> str:
    """The four encoder variants on `args.labels` labels; pretrains the reuse_k encoder of
    a seed when study ae did not (`encoders`). Returns the report section."""
    k = args.reuse_k
    idx = labelled_subset(d, args.labels)
    x_lab, y_lab = d.x_train[idx], d.y_train[idx]
    res = {v: [] for v in VARIANTS}
    clf = {frozen: build_encoder_classifier(k, d.x_train.shape[1:], d.n_classes, frozen) for frozen in (True, False)}
    for frozen, (model, _) in clf.items():
        compile_classifier(model, args.probe_lr if frozen else 1e-3)
    ae_model = None
    for s in seeds:
        if s not in encoders:  # study ae not run: pretrain the encoder now
            print(f"--- autoencoder k={k} seed {s} (for reuse)", flush=True)
            if ae_model is None:
                ae_model, ae_encoder = compiled_autoencoder(k, d.x_train.shape[1:])
            history[f"ae_k{k}_seed{s}"], _ = train_autoencoder(ae_model, d, args, s, f"ae_k{k}_seed{s}")
            encoders[s] = ae_encoder.get_weights()
        for v in VARIANTS:
            name = f"{v.replace(' ', '_')}_seed{s}"
            print(f"--- {name}", flush=True)
            model, encoder = clf[v.endswith("frozen")]
            restart(model, s, {encoder: encoders[s]} if v.startswith("trained") else None)
            start = encoder.get_weights()
            history[name], r = train_classifier(model, x_lab, y_lab, d, args, s, args.clf_epochs, name=name)
            r["encoder_arrays_moved"] = moved(start, encoder.get_weights())
            res[v].append(r)
            if v == "trained fine-tuned" and s == seeds[0]:
                metrics["test_accuracy"] = r["test_accuracy"]  # the saved model's
                metrics["class_names"] = list(d.class_names)
                runtime.save_model(model, run.path("model.keras"))
                saved["model.keras"] = (
                    f"the MNIST classifier with the autoencoder-trained, fine-tuned "
                    f"encoder (seed {s}); raw 28x28x1 pixels in, 10 class probabilities out"
                )
    rows, diffs = reuse_table(res, metrics)
    metrics["reuse_n_labels"] = len(idx)
    plots.learning_curves(
        {v: history[f"{v.replace(' ', '_')}_seed{seeds[0]}"] for v in VARIANTS},
        run.path("reuse_curves.png"),
        metrics=("loss", "accuracy"),
    )
    print(markdown_table(rows, list(rows[0])), flush=True)
    return reuse_section(args, seeds, d, metrics, rows, diffs)


def reuse_table(res, metrics):
    """Per-variant metrics (mean and std over seeds) and table rows; (rows, the per-seed
    differences trained minus random, both fine-tuned)."""
    rows = []
    for v in VARIANTS:
        key = v.replace(" ", "_").replace("-", "")
        acc = [r["test_accuracy"] for r in res[v]]
        metrics[f"reuse_{key}_test_accuracy"], metrics[f"reuse_{key}_test_accuracy_std"] = mean_std(acc)
        metrics[f"reuse_{key}_seconds"] = mean_std([r["seconds"] for r in res[v]])[0]
        metrics[f"reuse_{key}_encoder_arrays_moved"] = max(r["encoder_arrays_moved"] for r in res[v])
        rows.append(
            {
                "encoder": v,
                "test accuracy": pm(acc),
                "trainable params": f"{res[v][0]['trainable_params']:,}",
                "train seconds": pm([r["seconds"] for r in res[v]], "{:.1f}"),
            }
        )
    diffs = [
        a["test_accuracy"] - b["test_accuracy"] for a, b in zip(res["trained fine-tuned"], res["random fine-tuned"])
    ]
    metrics["reuse_trained_minus_random_finetuned"], metrics["reuse_trained_minus_random_finetuned_std"] = mean_std(
        diffs
    )
    return rows, diffs


def reuse_section(args, seeds, d, metrics, rows, diffs) -> str:
    k, n = args.reuse_k, metrics["reuse_n_labels"]
    frozen_moved = max(
        metrics["reuse_random_frozen_encoder_arrays_moved"], metrics["reuse_trained_frozen_encoder_arrays_moved"]
    )
    reference = (
        ""
        if "60,000" in d.name
        else " (Reference: 97.93% for the fine-tuned trained encoder with all 60,000 MNIST labels.)"
    )
    helps = verdict(diffs, "the pretrained encoder helps")
    return f"""The encoder of the k={k} autoencoder (784 -> {HIDDEN} -> {k})
with a batch norm (standardising the code) and a softmax layer on top, trained on **{n:,} labelled images** ({n // d.n_classes}
per class) for {args.clf_epochs} epochs (Adam 1e-3 fine-tuned, {args.probe_lr:g} frozen: a linear probe
still improves after 60 epochs at 1e-3; batch {args.batch_size}, no early stopping; the
curves show validation on {len(d.y_val):,} images). *Random*: the encoder as initialised;
*trained*: the autoencoder's encoder, pretrained on all {len(d.y_train):,} training images
without labels; *frozen*: only the batch norm and softmax layer learn (a linear probe). Test accuracy on {len(d.y_test):,}
images, mean ± std over seeds {seeds}. **Trained minus random, both fine-tuned:
{pm(diffs)}** ({helps}). Frozen encoders checked after training: {frozen_moved} weight arrays moved.{reference}

{markdown_table(rows, list(rows[0]))}

![learning curves, seed {seeds[0]}](reuse_curves.png)"""
