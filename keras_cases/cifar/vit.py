"""A vision transformer for the CIFAR recipe, and the study that compares it with the CNN.

    python -m keras_cases.cifar --recipe vit                      # train the ViT as the recipe
    python -m keras_cases.cifar --recipe vit --studies recipe,compare --budget-minutes 8

The network (`build_vit`): the image cut into `patch` x `patch` patches, each projected to
`dim` channels (a strided convolution: the patch embedding); a class token in front; learned
position embeddings; `depth` pre-norm transformer blocks (x + MHA(LN(x)), x + MLP(LN(x)),
keras.layers.MultiHeadAttention); the class token, layer-normed, to the logits. With no
`--vit-dim` its width is chosen so it has as many parameters as the CNN of `--widths`
(`size_vit`).

What a ViT needs on small data, and what the recipe gives it: the CNN's flips and 4-pixel
crops (NumPy, in training.py), plus random erasing (keras.layers.RandomErasing, in the
model, training only: a rectangle of 2-25% of the image set to the mean colour, on half the
images) and the recipe's label smoothing. A transformer has no locality or translation
prior; the augmentation is what stands in for it, and random erasing makes it use more than
the few patches it would otherwise memorise. It costs nothing measurable (a mask per batch).
Mixup would need the labels, which live in training.py's batches, so it is not here.

The comparison study (`study_compare`): the CNN recipe and the ViT of the same parameter
count, each trained for the same wall-clock budget (`--budget-minutes`) on the same data,
tested once each; validation accuracy against wall-clock time in one plot, and the class
token's attention in the last block (and the attention rollout over all blocks, Abnar &
Zuidema 2020) over a few test images.
"""

from __future__ import annotations

import json
from dataclasses import replace

import keras
import numpy as np
from keras import layers

from keras_cases import plots
from keras_cases.cifar.model import Recipe, accuracy, predict_logits
from keras_cases.cifar.training import plan_epochs, time_to, train
from keras_cases.layers import PositionEmbedding
from keras_cases.runs import load_model, markdown_table, write_text

MEAN, STD = 0.47, 0.25  # CIFAR-10 pixels / 255, roughly: inputs near zero mean, unit scale


def build_vit(r: Recipe, input_shape=(32, 32, 3), n_classes: int = 10) -> keras.Model:
    """The vision transformer of `r` (functional; built-in layers and the shared
    PositionEmbedding only, so a saved model loads anywhere keras_cases.layers is imported).

    The class token is position 0 of the position embedding, added to a zero token put in
    front of the patches: the same function as a separate class-token vector plus its own
    position embedding, with one vector fewer."""
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / (255 * STD), offset=-MEAN / STD, name="scale")(inputs)
    if r.erase:  # training only; erased pixels become 0, the mean colour
        x = layers.RandomErasing(factor=(r.erase, r.erase), scale=(0.02, 0.25), fill_value=0.0, name="erase")(x)
    x = layers.Conv2D(r.dim, r.patch, strides=r.patch, name="patch_embed")(x)
    grid = x.shape[1] * x.shape[2]
    patches = layers.Reshape((grid, r.dim), name="patches")(x)
    zero = layers.Rescaling(0.0, name="zero_token")(layers.Cropping1D((0, grid - 1), name="first_patch")(patches))
    x = layers.Concatenate(axis=1, name="with_class_token")([zero, patches])
    x = PositionEmbedding(name="position")(x)
    for b in range(1, r.depth + 1):
        h = layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_ln1")(x)
        h = layers.MultiHeadAttention(r.heads, key_dim(r), name=f"block{b}_attn")(h, h)
        x = layers.Add(name=f"block{b}_add1")([x, h])
        h = layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_ln2")(x)
        h = layers.Dense(r.mlp_ratio * r.dim, activation="gelu", name=f"block{b}_mlp1")(h)
        h = layers.Dense(r.dim, name=f"block{b}_mlp2")(h)
        x = layers.Add(name=f"block{b}_add2")([x, h])
    x = layers.LayerNormalization(epsilon=1e-6, name="final_ln")(x)
    x = layers.Cropping1D((0, grid), name="class_token")(x)
    x = layers.Flatten(name="class_features")(x)
    outputs = layers.Dense(n_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="cifar_vit")


def key_dim(r: Recipe) -> int:
    """Each head's query / key size: dim / heads, rounded down (the output projection maps
    the heads back to `dim`, so the width need not be a multiple of the heads)."""
    return max(1, r.dim // r.heads)


def vit_params(r: Recipe, input_shape=(32, 32, 3), n_classes: int = 10) -> int:
    """The parameter count of `build_vit(r, ...)`, from the formula."""
    d, m = r.dim, r.mlp_ratio
    grid = (input_shape[0] // r.patch) * (input_shape[1] // r.patch)
    embed = r.patch * r.patch * input_shape[2] * d + d
    positions = (grid + 1) * d  # the class token is position 0
    inner = r.heads * key_dim(r)
    attention = 3 * (d * inner + inner) + (inner * d + d)  # query, key, value; output
    block = 2 * d + attention + 2 * d + (d * m * d + m * d) + (m * d * d + d)
    return embed + positions + r.depth * block + 2 * d + d * n_classes + n_classes


def size_vit(r: Recipe, target: int, input_shape=(32, 32, 3), n_classes: int = 10) -> Recipe:
    """`r` with the width (at least `r.heads`, at most 4096) whose parameter count is nearest `target`."""
    best = min(
        (replace(r, dim=d) for d in range(r.heads, 4097)),
        key=lambda v: abs(vit_params(v, input_shape, n_classes) - target),
    )
    return best


def attention_scores(model: keras.Model, x: np.ndarray, batch_size: int = 200) -> list:
    """The ViT's attention probabilities for images `x`, one (n, heads, T, T) array per
    block, T = patches + 1 (the class token first): each block's input (its first layer
    norm's output, from a sub-model) through the block's own MultiHeadAttention layer,
    called with return_attention_scores (the model's graph keeps one output per layer)."""
    depth = sum(1 for layer in model.layers if layer.name.endswith("_attn"))
    names = [f"block{b}" for b in range(1, depth + 1)]
    inputs = keras.Model(model.inputs, [model.get_layer(f"{b}_ln1").output for b in names])
    hs = inputs.predict(x, batch_size=batch_size, verbose=0)
    hs = hs if isinstance(hs, list) else [hs]
    out = []
    for b, h in zip(names, hs):
        _, s = model.get_layer(f"{b}_attn")(h, h, return_attention_scores=True, training=False)
        out.append(keras.ops.convert_to_numpy(s))
    return out


def attention_maps(model: keras.Model, x: np.ndarray, batch_size: int = 200) -> dict:
    """For images `x`: {"last block": the class token's attention to each patch in the last
    block, mean over heads; "rollout": attention rollout over all blocks (each block's
    head-mean attention, plus the residual identity, renormalised, multiplied through)}.
    Each map is (n, grid, grid), renormalised over the patches (sums to 1)."""
    scores = [np.asarray(s, "float64").mean(axis=1) for s in attention_scores(model, x, batch_size)]
    t = scores[0].shape[-1]
    side = int(round((t - 1) ** 0.5))
    roll = np.eye(t)[None]
    for a in scores:
        a = 0.5 * a + 0.5 * np.eye(t)[None]
        roll = a @ roll
    maps = {"last block": scores[-1][:, 0, 1:], "rollout": roll[:, 0, 1:]}
    return {k: (v / v.sum(axis=1, keepdims=True)).reshape(-1, side, side) for k, v in maps.items()}


def study_attention(run, d, model=None, n: int = 8) -> tuple[str, str]:
    """attention.png: `n` test images, the class token's attention in the last block, and
    the rollout, over each; its report section. `model`: the ViT (default: model.keras)."""
    model = model or load_model(run.path("model.keras"))
    show = np.linspace(0, len(d.y_test) - 1, n).astype(int)
    x = d.x_test[show]
    maps = attention_maps(model, x)
    pred = predict_logits(model, x, tta=False).argmax(1)
    captions = [d.class_names[p] + ("" if p == t else f" ✗ ({d.class_names[t]})") for p, t in zip(pred, d.y_test[show])]
    plots.attention_overlays(
        x.astype("float32") / 255,
        maps,
        run.path("attention.png"),
        "where the class token looks (predicted class; ✗: wrong, true class in brackets)",
        captions,
    )
    peak = float(np.mean([m.max() for m in maps["last block"]]))
    return "ViT attention", (
        f"The class token's attention to the {maps['rollout'].shape[1]}x{maps['rollout'].shape[2]} patches in "
        f"the last block (mean over heads), and the attention rollout through all blocks, over {n} test images. "
        f"A uniform map would give every patch {1 / maps['rollout'][0].size:.3f}; the last block's "
        f"largest weight averages {peak:.3f} over these images.\n\n![attention](attention.png)"
    )


def compare_epochs(args, run, r: Recipe, d, key: str, budget) -> int:
    """`--epochs`, or as many epochs of `r` as the budget fits (a resumed run keeps its plan)."""
    if args.epochs:
        return args.epochs
    plan = run.dir / "checkpoints" / f"compare_{key}_plan.json"
    if run.resumed and plan.is_file():
        return json.loads(plan.read_text())[0]
    epochs, per_epoch = plan_epochs(r, d, args.seed, budget)
    plan.parent.mkdir(parents=True, exist_ok=True)
    write_text(plan, json.dumps([epochs, per_epoch]))
    print(f"compare {key}: one epoch takes ~{per_epoch:.0f} s -> {epochs} epochs", flush=True)
    return epochs


def study_compare(args, run, recipes: dict, chosen: str, d, metrics, history) -> tuple[str, str]:
    """The CNN (`recipes["small"]`) and the ViT of equal parameter count (`recipes["vit"]`),
    the same budget each; the recipe study's model is reused when it trained one of them.
    compare.json, compare.png, attention.png, and the report section."""
    budget = None if args.epochs else args.budget_minutes * 60
    rows, curves, vit_model = [], {}, None
    for key, label in (("small", "CNN"), ("vit", "ViT")):
        r = recipes[key]
        if key == chosen and "recipe" in history:  # trained (and tested once) by the recipe study
            model, h, test = load_model(run.path("model.keras")), history["recipe"], metrics["test_accuracy"]
        else:
            epochs = compare_epochs(args, run, r, d, key, budget)
            model, h = train(r, d, args.seed, epochs, budget, args.verbose, name=f"compare_{key}_seed{args.seed}")
            history[f"compare_{key}"] = h
            test = accuracy(model, d.x_test, d.y_test, tta=r.tta)
        vit_model = model if key == "vit" else vit_model
        row = {
            "model": label,
            "params": model.count_params(),
            "epochs": round(sum(h["epoch_share"]), 2),  # a last epoch the budget cut short counts its share
            "train_seconds": float(h["wall_seconds"][-1]),
            "val_accuracy": float(h["val_accuracy"][-1]),
            "test_accuracy": float(test),
            "time_to_60": time_to(h, 0.60),
            "time_to_70": time_to(h, 0.70),
        }
        rows.append(row)
        curves[f"{label} ({row['params']:,} parameters)"] = h
        metrics.update({f"compare_{key}_{k}": v for k, v in row.items() if k != "model"})
        print(f"compare {label}: test accuracy {test:.4f}, {row['epochs']} epochs in {row['train_seconds']:.0f} s")
    run.write_json("compare.json", rows)
    plots.accuracy_vs_time_overlay(curves, run.path("compare.png"), budget_s=budget)
    attention = study_attention(run, d, vit_model)
    return "CNN against ViT", compare_text(rows, recipes, budget) + "\n\n### " + attention[0] + "\n\n" + attention[1]


def compare_text(rows, recipes: dict, budget) -> str:
    cnn, vit = rows
    v = recipes["vit"]
    won = "The CNN" if cnn["test_accuracy"] >= vit["test_accuracy"] else "The ViT"
    shown = [
        {
            **row,
            "train_seconds": f"{row['train_seconds']:.0f}",
            **{k: "not reached" if row[k] is None else f"{row[k]:.0f} s" for k in ("time_to_60", "time_to_70")},
        }
        for row in rows
    ]
    return (
        f"The CNN recipe (widths {', '.join(map(str, recipes['small'].widths))}) against a vision transformer "
        f"of about the same size ({v.depth} blocks of width {v.dim}, {v.heads} heads, {v.patch}x{v.patch} "
        f"patches, MLP x{v.mlp_ratio}; AdamW, random erasing p={v.erase}, label smoothing "
        f"{v.label_smoothing}, flips and crops), "
        + (f"each trained for the same {budget / 60:g}-minute budget" if budget else "each for the same epochs")
        + f" on the same images and tested once. **{won} wins** here: test accuracy "
        f"{cnn['test_accuracy']:.4f} (CNN) against {vit['test_accuracy']:.4f} (ViT), "
        f"{cnn['params']:,} against {vit['params']:,} parameters.\n\n"
        + markdown_table(shown, list(rows[0]))
        + "\n\n![accuracy against time](compare.png)"
    )
