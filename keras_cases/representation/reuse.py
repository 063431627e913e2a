"""Study `reuse`: the autoencoder's encoder as a digit classifier on a few labels,
{random, autoencoder-trained} x {frozen, fine-tuned}, along a label curve (100 to 3,000
labels): where does pretraining stop helping?"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from keras_cases import UserError, cli, plots, protocol
from keras_cases.evaluation import mean_std
from keras_cases.representation.autoencoders import build_autoencoder, compiled_autoencoder, train_autoencoder
from keras_cases.representation.common import (
    HIDDEN,
    compile_classifier,
    moved,
    pm,
    restart,
    save_classifier,
    train_classifier,
)
from keras_cases.runs import markdown_table

VARIANTS = ("random frozen", "random fine-tuned", "trained frozen", "trained fine-tuned")
ARMS = ("frozen", "fine-tuned")
LABELS = (100, 300, 1000, 3000)  # the default label curve
MNIST_CLASSES = 10
PATIENCE = 10  # epochs without a better validation accuracy before a classifier stops


def parse_labels(text: str) -> list[int]:
    """--labels as sorted label counts, each a multiple of the 10 classes (balanced subsets)."""
    ns = sorted(cli.parse_list(str(text), "--labels"))
    odd = [n for n in ns if n % MNIST_CLASSES]
    if odd:
        raise UserError(
            f"--labels: {odd[0]} is not a multiple of {MNIST_CLASSES}; the labelled subsets are "
            f"balanced ({MNIST_CLASSES} digits), e.g. --labels {','.join(map(str, LABELS))}"
        )
    return ns


def labelled_subset(d, n_labels: int):
    """The first n_labels / n_classes training images of every class (indices): the subsets
    of a curve are nested, each holds the smaller ones."""
    per = n_labels // d.n_classes
    have = int(np.bincount(d.y_train, minlength=d.n_classes).min())
    if per > have:
        raise UserError(
            f"--labels {n_labels}: the {len(d.y_train):,} training images have only {have} of their "
            f"rarest digit; at most {have * d.n_classes:,} labels"
        )
    return np.sort(np.concatenate([np.flatnonzero(d.y_train == c)[:per] for c in range(d.n_classes)]))


def repeated(idx, draws: int):
    """`idx` repeated so that an epoch draws at least `draws` images: every point of the
    curve then takes the same number of optimizer steps per epoch."""
    return np.tile(idx, -(-draws // len(idx)))


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


def fit_variant(clf, v, n, x, y, s, d, args, encoders, history):
    """Train variant `v` of seed `s` on the (repeated) labelled images (x, y); its result."""
    name = f"{v.replace(' ', '_')}_n{n}_seed{s}"
    print(f"--- {name}", flush=True)
    model, encoder = clf[v.endswith("frozen")]
    restart(model, s, {encoder: encoders[s]} if v.startswith("trained") else None)
    start = encoder.get_weights()
    history[name], r = train_classifier(model, x, y, d, args, s, args.clf_epochs, name=name, patience=PATIENCE)
    r["encoder_arrays_moved"] = moved(start, encoder.get_weights())
    return r


def study_reuse(args, seeds, run, metrics, history, saved, d, encoders) -> str:
    """The four encoder variants at every label count of `args.labels` (parsed); pretrains
    the reuse_k encoder of a seed when study ae did not (`encoders`). Returns the report
    section."""
    k, labels = args.reuse_k, list(args.labels)
    subsets = {n: repeated(labelled_subset(d, n), max(labels)) for n in labels}
    res = {(n, v): [] for n in labels for v in VARIANTS}
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
        for n, idx in subsets.items():
            for v in VARIANTS:
                res[n, v].append(fit_variant(clf, v, n, d.x_train[idx], d.y_train[idx], s, d, args, encoders, history))
                if v == "trained fine-tuned" and s == seeds[0] and n == labels[-1]:
                    save_classifier(
                        clf[False][0],
                        run,
                        metrics,
                        saved,
                        d.class_names,
                        res[n, v][-1]["test_accuracy"],
                        f"the MNIST classifier with the autoencoder-trained, fine-tuned encoder ({n:,} labels, "
                        f"seed {s}); raw 28x28x1 pixels in, 10 class probabilities out",
                    )
    rows = curve_metrics(res, labels, metrics)
    first = {v: history[f"{v.replace(' ', '_')}_n{labels[0]}_seed{seeds[0]}"] for v in VARIANTS}
    plots.learning_curves(first, run.path("reuse_curves.png"), metrics=("loss", "accuracy"))
    plot_label_curve(metrics, labels, run.path("reuse_label_curve.png"))
    print(markdown_table(rows, list(rows[0])), flush=True)
    return reuse_section(args, seeds, d, metrics, rows)


def key(v: str) -> str:
    return v.replace(" ", "_").replace("-", "")


def curve_metrics(res, labels, metrics) -> list[dict]:
    """metrics per label count n: reuse_n{n}_{variant}_test_accuracy (+ _std, _seconds,
    _best_epoch), reuse_n{n}_trained_minus_random_{arm} (+ _low, _high, _verdict: a plain
    paired t interval over seeds), reuse_{variant}_encoder_arrays_moved (most over the
    curve); returns the table rows. (reuse_section adds reuse_stops_helping_{arm}, the label
    count from which on it does not help, None where it helps at the largest or with one seed,
    and reuse_helps_at_{arm}, the counts where the interval lies above 0.)"""
    metrics["reuse_labels"] = labels
    rows = []
    for n in labels:
        row = {"labels": f"{n:,}"}
        for arm in ARMS:
            acc = {}
            for v in (f"random {arm}", f"trained {arm}"):
                acc[v] = [r["test_accuracy"] for r in res[n, v]]
                m = f"reuse_n{n}_{key(v)}"
                metrics[f"{m}_test_accuracy"], metrics[f"{m}_test_accuracy_std"] = mean_std(acc[v])
                metrics[f"{m}_seconds"] = mean_std([r["seconds"] for r in res[n, v]])[0]
                metrics[f"{m}_best_epoch"] = mean_std([r["best_epoch"] for r in res[n, v]])[0]
                row[v] = pm(acc[v])
            row[f"{arm}: trained - random [95%]"] = difference(metrics, n, arm, acc)
        rows.append(row)
    for v in VARIANTS:
        metrics[f"reuse_{key(v)}_encoder_arrays_moved"] = max(
            r["encoder_arrays_moved"] for n in labels for r in res[n, v]
        )
    return rows


def difference(metrics, n, arm, acc) -> str:
    """Trained minus random at n labels, paired over seeds: protocol.paired with
    n_test / n_train = 0 is the plain paired t interval (seeds share no training rows to
    correct for). Recorded in metrics; returns the table cell."""
    p = protocol.paired(acc[f"trained {arm}"], acc[f"random {arm}"], n_train=1, n_test=0)
    m = f"reuse_n{n}_trained_minus_random_{key(arm)}"
    ok = np.isfinite(p["low"])
    metrics[m], metrics[f"{m}_low"], metrics[f"{m}_high"] = p["diff"], *((p["low"], p["high"]) if ok else (None, None))
    metrics[f"{m}_verdict"] = {"better": "helps", "worse": "hurts"}.get(
        p["verdict"], "not distinguishable" if ok else "one seed"
    )
    return f"{p['diff']:+.4f} [{p['low']:+.4f}, {p['high']:+.4f}]" if ok else f"{p['diff']:+.4f} (one seed)"


def stops_helping(metrics, labels, arm) -> tuple[int | None, str]:
    """(the label count from which on pretraining no longer helps: None where it still
    helps at the largest; a sentence), read off the paired intervals in metrics."""
    verdict = {n: metrics[f"reuse_n{n}_trained_minus_random_{key(arm)}_verdict"] for n in labels}
    if metrics[f"reuse_n{labels[0]}_trained_minus_random_{key(arm)}_low"] is None:
        return None, f"{arm}: one seed, no intervals (run --seeds 3 or more for a claim)"
    helps = [n for n in labels if verdict[n] == "helps"]
    hurts = [f"{n:,}" for n in labels if verdict[n] == "hurts"]
    worse = f"; the random start is better at {', '.join(hurts)} labels" if hurts else ""
    if not helps:
        return labels[0], f"{arm}: pretraining helps at none of the label counts ({labels[0]:,} and up){worse}"
    if helps[-1] == labels[-1]:
        gaps = [f"{n:,}" for n in labels if n not in helps]
        but = f" (though not at {', '.join(gaps)})" if gaps else ""
        return None, f"{arm}: pretraining still helps at {labels[-1]:,} labels, the most measured{but}{worse}"
    stop = labels[labels.index(helps[-1]) + 1]
    shown = ", ".join(f"{n:,}" for n in helps)
    where = f"up to {helps[-1]:,}" if helps == labels[: len(helps)] else f"at {shown}"
    return stop, (
        f"{arm}: pretraining helps {where} labels and stops helping at {stop:,}: from there on "
        f"the interval holds 0{worse}"
    )


def plot_label_curve(metrics, labels, path):
    """Test accuracy against labels for the four variants, and trained minus random for each
    arm with its 95% interval."""
    curves = {
        v: tuple([metrics[f"reuse_n{n}_{key(v)}_test_accuracy{s}"] for n in labels] for s in ("", "_std"))
        for v in VARIANTS
    }
    names = {arm: [f"reuse_n{n}_trained_minus_random_{key(arm)}" for n in labels] for arm in ARMS}
    diffs = {arm: tuple([metrics[f"{m}{s}"] for m in ms] for s in ("", "_low", "_high")) for arm, ms in names.items()}
    return plots.curves_and_differences(
        labels, curves, diffs, path, "labelled training images", "test accuracy", "trained - random"
    )


def reuse_section(args, seeds, d, metrics, rows) -> str:
    k, labels = args.reuse_k, metrics["reuse_labels"]
    claims = []
    for arm in ARMS:
        metrics[f"reuse_stops_helping_{key(arm)}"], sentence = stops_helping(metrics, labels, arm)
        verdicts = [metrics[f"reuse_n{n}_trained_minus_random_{key(arm)}_verdict"] for n in labels]
        metrics[f"reuse_helps_at_{key(arm)}"] = [n for n, v in zip(labels, verdicts) if v == "helps"]
        claims.append(f"- **{sentence}.**")
    frozen_moved = max(metrics[f"reuse_{key(v)}_encoder_arrays_moved"] for v in VARIANTS if v.endswith("frozen"))
    steps = -(-max(labels) // args.batch_size)
    reference = (
        ""
        if "60,000" in d.name
        else " (Reference: 97.93% for the fine-tuned trained encoder with all 60,000 MNIST labels.)"
    )
    return f"""The encoder of the k={k} autoencoder (784 -> {HIDDEN} -> {k}) with a batch norm
(standardising the code) and a softmax layer on top, trained on a label curve of
**{", ".join(f"{n:,}" for n in labels)} labelled images** (balanced; nested, each subset holds
the smaller ones; the same subsets for every seed, which varies the initial weights, the
autoencoder and the batch order). *Random*: the encoder as initialised; *trained*: the
autoencoder's encoder, pretrained on all {len(d.y_train):,} training images without labels;
*frozen*: only the batch norm and softmax layer learn (a linear probe). Adam 1e-3
fine-tuned, {args.probe_lr:g} frozen, batch {args.batch_size}. Every point takes the same
{steps} steps an epoch (its labelled images repeated up to {max(labels):,} draws), at most
{args.clf_epochs} epochs, stopped after {PATIENCE} epochs without a better accuracy on the
{len(d.y_val):,} validation images and rolled back to its best epoch. Test accuracy on
{len(d.y_test):,} images, mean ± std over seeds {seeds}. Trained minus random is paired by
seed, with a 95% paired t interval over the seeds (protocol.paired with n_test/n_train = 0:
seeds share no training folds whose overlap needs correcting). Frozen encoders checked
after training: {frozen_moved} weight arrays moved.{reference}

Where pretraining stops helping (the first label count from which on the interval no
longer lies above 0):

{chr(10).join(claims)}

{markdown_table(rows, list(rows[0]))}

![test accuracy against labels, and trained minus random](reuse_label_curve.png)

![learning curves, {labels[0]:,} labels, seed {seeds[0]}](reuse_curves.png)"""
