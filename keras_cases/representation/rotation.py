"""Study `rotation`: a self-supervised rotation pretext on CIFAR-10 (the backbone lives in
keras_cases.backbones), then its first blocks start a classifier trained on a few labels:
frozen vs fine-tuned vs the same network from scratch."""

from __future__ import annotations

import numpy as np

from keras_cases import plots, runtime
from keras_cases.backbones import (
    BACKBONE_FILE,
    WIDTHS,
    build_backbone,
    build_conv_classifier,
    eval_batch,
    pretrain_rotation,
    rotations,
)
from keras_cases.data import images
from keras_cases.evaluation import mean_std
from keras_cases.representation.common import (
    compile_classifier,
    moved,
    pm,
    restart,
    save_classifier,
    train_classifier,
    verdict,
)
from keras_cases.runs import markdown_table

TRANSFER = ("frozen", "fine-tuned", "scratch")


def transfer_model(widths, n_classes, k: int = 0, frozen=False, size=32):
    """(classifier, backbone): the backbone architecture + pooling + softmax for CIFAR;
    `frozen` fixes its first k blocks (their batch norm then runs in inference mode)."""
    backbone = build_backbone(widths, size, name="backbone")
    model = build_conv_classifier(backbone, n_classes, "cifar_classifier")
    for i in range(1, k + 1):
        for part in ("conv", "bn"):
            backbone.get_layer(f"block{i}_{part}").trainable = not frozen
    return model, backbone


def pretrained_blocks(model_backbone, pretrained, k: int) -> dict:
    """{layer of model_backbone: pretrained weights} for the first k blocks (for `restart`)."""
    return {
        model_backbone.get_layer(f"block{i}_{part}"): pretrained.get_layer(f"block{i}_{part}").get_weights()
        for i in range(1, k + 1)
        for part in ("conv", "bn")
    }


def load_cifar(args, metrics):
    """(CIFAR-10, the labelled subset as ArrayData, the pretext images, validation images of
    the pretext): `labels_per_class` training images per class, validation at least 100 per
    class; --quick reads only the images it needs."""
    need = args.labels_per_class
    c = images.cifar10_per_class(max(need, args.pretext_images // 10)) if args.quick else images.load_cifar10()
    pre_x = c.x_train[: args.pretext_images]
    n_rot = min(1000, len(c.y_val) // 2)  # validation images of the pretext (x 4 rotations); test: twice that
    lab = np.sort(np.concatenate([np.flatnonzero(c.y_train == i)[:need] for i in range(c.n_classes)]))
    val = np.sort(np.concatenate([np.flatnonzero(c.y_val == i)[: max(need, 100)] for i in range(c.n_classes)]))
    cv = images.ArrayData(
        c.name,
        c.x_train[lab],
        c.y_train[lab],
        c.x_val[val],
        c.y_val[val],
        c.x_test,
        c.y_test,
        c.n_classes,
        c.class_names,
    )
    metrics.update(
        cifar_dataset=c.name,
        cifar_n_pretext=len(pre_x),
        cifar_n_train=len(lab),
        cifar_n_val=len(val),
        cifar_n_test=len(c.y_test),
    )
    return c, cv, pre_x, c.x_val[:n_rot]


def pretext(args, run, metrics, history, saved, c, pre_x, x_val):
    """Pretrain the rotation backbone once (seed --seed), score it on test images x 4
    rotations and save it as rotation_backbone.keras; returns the backbone."""
    print(f"--- rotation pretext on {len(pre_x):,} unlabelled images x 4 rotations", flush=True)
    backbone, rot_model, history["rotation_pretext"], pre_seconds = pretrain_rotation(
        pre_x, x_val, args.seed, batch_size=args.batch_size, epochs=args.pretext_epochs, verbose=args.verbose
    )
    xr, yr = rotations(c.x_test[: 2 * len(x_val)])
    rot_acc = float(rot_model.evaluate(xr, yr, verbose=0, batch_size=eval_batch(4 * len(x_val)))[1])
    runtime.save_model(backbone, run.path(BACKBONE_FILE))
    saved[BACKBONE_FILE] = (
        f"the rotation-pretrained conv backbone (raw 32x32x3 pixels -> "
        f"{backbone.output_shape[1]}x{backbone.output_shape[2]}x{backbone.output_shape[3]} features)"
    )
    metrics.update(
        rotation_test_accuracy=rot_acc,
        rotation_n_test=len(yr),
        rotation_pretext_seconds=pre_seconds,
        rotation_backbone_params=backbone.count_params(),
        rotation_widths=list(WIDTHS),
    )
    print(f"rotation accuracy {rot_acc:.4f}")
    return backbone


def study_rotation(args, seeds, run, metrics, history, saved) -> str:
    """The pretext, then frozen / fine-tuned / scratch classifiers on every seed. Returns the
    report section."""
    c, cv, pre_x, x_val = load_cifar(args, metrics)
    backbone = pretext(args, run, metrics, history, saved, c, pre_x, x_val)
    res = {v: [] for v in TRANSFER}
    kb = args.transfer_blocks
    nets = {frozen: transfer_model(WIDTHS, c.n_classes, kb, frozen) for frozen in (True, False)}
    for model, _ in nets.values():
        compile_classifier(model)
    for s in seeds:
        for v in TRANSFER:
            name = f"transfer_{v}_seed{s}"
            print(f"--- {name}", flush=True)
            model, net_backbone = nets[v == "frozen"]
            restart(model, s, None if v == "scratch" else pretrained_blocks(net_backbone, backbone, kb))
            history[name], r = train_classifier(
                model, cv.x_train, cv.y_train, cv, args, s, args.transfer_epochs, augmented=True, name=name
            )
            blocks = pretrained_blocks(net_backbone, backbone, kb)
            r["pretrained_arrays_moved"] = sum(moved(w, layer.get_weights()) for layer, w in blocks.items())
            res[v].append(r)
            if v == "fine-tuned" and s == seeds[0] and "model.keras" not in saved:
                save_classifier(
                    model,
                    run,
                    metrics,
                    saved,
                    c.class_names,
                    r["test_accuracy"],
                    f"the CIFAR-10 classifier started from the pretrained blocks, fine-tuned "
                    f"(seed {s}); raw 32x32x3 pixels in, 10 class probabilities out",
                )
    rows, diffs = transfer_table(res, metrics)
    plots.learning_curves(
        {v: history[f"transfer_{v}_seed{seeds[0]}"] for v in TRANSFER},
        run.path("transfer_curves.png"),
        metrics=("loss", "accuracy"),
    )
    plots.learning_curves(
        {"rotation pretext": history["rotation_pretext"]}, run.path("rotation_curves.png"), metrics=("loss", "accuracy")
    )
    print(markdown_table(rows, list(rows[0])), flush=True)
    return rotation_section(args, seeds, run, metrics, rows, diffs)


def transfer_table(res, metrics):
    """Per-variant metrics (mean and std over seeds) and table rows; (rows, the per-seed
    differences fine-tuned minus scratch)."""
    rows = []
    for v in TRANSFER:
        key = v.replace("-", "")
        acc = [r["test_accuracy"] for r in res[v]]
        metrics[f"transfer_{key}_test_accuracy"], metrics[f"transfer_{key}_test_accuracy_std"] = mean_std(acc)
        metrics[f"transfer_{key}_seconds"] = mean_std([r["seconds"] for r in res[v]])[0]
        if v != "scratch":  # weight arrays of the pretrained blocks that training moved (0 when frozen)
            metrics[f"transfer_{key}_pretrained_arrays_moved"] = max(r["pretrained_arrays_moved"] for r in res[v])
        rows.append(
            {
                "first blocks": ("pretrained, " + v) if v != "scratch" else "from scratch",
                "test accuracy": pm(acc),
                "trainable params": f"{res[v][0]['trainable_params']:,}",
                "train seconds": pm([r["seconds"] for r in res[v]], "{:.1f}"),
            }
        )
    diffs = [a["test_accuracy"] - b["test_accuracy"] for a, b in zip(res["fine-tuned"], res["scratch"])]
    metrics["transfer_finetuned_minus_scratch"], metrics["transfer_finetuned_minus_scratch_std"] = mean_std(diffs)
    return rows, diffs


def rotation_section(args, seeds, run, m, rows, diffs) -> str:
    n_rot = m["rotation_n_test"] // 4
    return f"""A small conv net ({len(WIDTHS)} blocks of
conv 3x3 stride 2 + batch norm + ReLU, widths {", ".join(map(str, WIDTHS))}; {m["rotation_backbone_params"]:,}
parameters) learns to tell which of 0/90/180/270 degrees an image was turned by, from
{m["cifar_n_pretext"]:,} unlabelled training images (each in all four rotations, randomly mirrored) for
{args.pretext_epochs} epochs, seed {args.seed}: rotation accuracy on {n_rot:,} test images x 4 =
**{m["rotation_test_accuracy"]:.4f}** (chance 0.25; reference 0.854 with a larger network). {m["rotation_pretext_seconds"]:.0f} s.

Its first {args.transfer_blocks} blocks then start a CIFAR-10 classifier (the same architecture + global
average pooling + softmax) trained on **{m["cifar_n_train"]:,} labelled images** ({args.labels_per_class} per class) for
{args.transfer_epochs} epochs with flips and crops (Adam 1e-3): the pretrained blocks *frozen*
(batch norm in inference mode), *fine-tuned*, or the whole network *from scratch*. Test
accuracy on all {m["cifar_n_test"]:,} test images, mean ± std over seeds {seeds} (the pretext is
trained once). **Fine-tuned minus scratch: {pm(diffs)}** ({verdict(diffs, "pretraining helps")}). Pretrained weight arrays that training
moved: {m["transfer_frozen_pretrained_arrays_moved"]} when frozen (batch-norm statistics
included), {m["transfer_finetuned_pretrained_arrays_moved"]} when fine-tuned. Reference: 75.7% vs 71.3% from
scratch after 5 epochs with a larger network and more labels.

{markdown_table(rows, list(rows[0]))}

![transfer learning curves, seed {seeds[0]}](transfer_curves.png)

![rotation pretext](rotation_curves.png)

The backbone is saved as `{BACKBONE_FILE}`; `python -m keras_cases.transfer --backbone
representation --weights {run.dir}` fine-tunes it on CIFAR-10 or your own images."""
