"""CIFAR-10: the strongest recipe we can make for the hardware at hand.

    python -m keras_cases.cifar                          # the recipe, 60-minute budget
    python -m keras_cases.cifar --budget-minutes 10      # whatever fits in 10 minutes
    python -m keras_cases.cifar --epochs 12              # a fixed number of epochs
    python -m keras_cases.cifar --study ablation         # each ingredient's measured gain
    python -m keras_cases.cifar --images DIR             # your own image folder

The network follows the airbench design (Jordan 2024) scaled to a CPU: a fixed 2x2
*whitening* convolution computed from the training images' patch covariance (not learned),
then three blocks of conv -> max-pool -> batch-norm -> GELU -> conv -> batch-norm -> GELU
(widths `--widths`, default 32,64,128), global max-pool, one dense layer. The recipe:

- augmentation: random horizontal flips and 4-pixel reflect-padded random crops (NumPy,
  identical on every backend);
- label smoothing (0.2);
- SGD with Nesterov momentum and decoupled weight decay, learning rate warmed up
  linearly, then cosine-decayed to zero over exactly the planned number of steps
  (a one-cycle schedule: it needs to know where training ends, which `--budget-minutes`
  works out by timing a few steps first);
- batch normalization;
- test-time augmentation: logits averaged over the image and its mirror image;
- mixed precision (bfloat16 / float16 compute) on a GPU; off on a CPU, where it was slower.

`--budget-minutes M` measures a few training steps, plans as many epochs as fit in M
minutes and stops at M minutes regardless. Accuracy against epoch and wall-clock, the time
to 80% and 85% validation accuracy, and the ablation table (each ingredient removed in
turn, mean ± std over `--seeds`, decided on validation) go in the report. The test set is
evaluated once, for the final model.

The data (see `keras_cases.data.images`): `keras.datasets.cifar10` when it can be had,
offline the JPEG copy in `$KERAS_CASES_DATA_DIR/cifar10_jpg`; 45,000 train / 5,000
validation / 10,000 test.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace

import keras
import numpy as np
from keras import layers

from keras_cases import UserError, cli, plots, runtime
from keras_cases.callbacks import EpochClock, resumable, tensorboard
from keras_cases.data import batches, images, resumable_epochs
from keras_cases.runs import Run, command, markdown_table, write_text

CASE = "cifar"
# --quick, where the user did not type the flag: a small net on 100 images per class, three
# epochs of batches of 40 (75 steps): under a minute, and it learns (20-27% test accuracy over
# seeds, chance is 10%). The batch size stays as given with --distribute (it must split evenly).
QUICK = {"widths": (8, 16, 32), "batch_size": 40, "epochs": 3, "per_class": 100}
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


@dataclass
class Recipe:
    widths: tuple = (32, 64, 128)
    batch_size: int = 256
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.2
    warmup: float = 0.15  # fraction of the steps spent warming up
    augment: bool = True
    whiten: bool = True
    batchnorm: bool = True
    schedule: str = "cosine"  # or "constant"
    optimizer: str = "nesterov"  # or "adamw"
    tta: bool = True
    mixed_precision: bool = False


# --- the model ----------------------------------------------------------------------------
def whitening_filters(x: np.ndarray, size: int = 2, eps: float = 5e-4, n: int = 5000):
    """Kernel (size, size, 3, 2 * size*size*3) and bias that whiten the image patches of
    `x` (uint8): the eigenvectors of the patch covariance scaled by 1/sqrt(eigenvalue), each
    with both signs (so a ReLU-like activation after it keeps the information)."""
    x = x[:n].astype("float64") / 255.0
    h, w = x.shape[1:3]
    patches = np.stack(
        [x[:, i : i + h - size + 1, j : j + w - size + 1] for i in range(size) for j in range(size)], axis=3
    )  # (n, h', w', size*size, c)
    patches = patches.reshape(-1, size * size * x.shape[-1])  # (.., size*size*c) in (i, j, c) order
    mean = patches.mean(0)
    cov = np.cov(patches - mean, rowvar=False)
    vals, vecs = np.linalg.eigh(cov)
    filt = vecs / np.sqrt(vals + eps)  # columns: whitening directions
    filt = np.concatenate([filt, -filt], axis=1)
    kernel = filt.reshape(size, size, x.shape[-1], -1)
    bias = -(mean @ filt)
    return kernel.astype("float32"), bias.astype("float32")


def build_model(r: Recipe, input_shape=(32, 32, 3), n_classes: int = 10, x_whiten=None) -> keras.Model:
    """The airbench-style network; `x_whiten` (uint8 training images) sets the fixed first
    layer when `r.whiten` is on."""
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    channels = 2 * 2 * 2 * input_shape[-1]
    x = layers.Conv2D(channels, 2, padding="valid", name="whiten", trainable=not r.whiten)(x)
    x = layers.Activation("gelu", name="whiten_gelu")(x)
    for b, width in enumerate(r.widths, start=1):
        for c in (1, 2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=not r.batchnorm, name=f"block{b}_conv{c}")(x)
            if c == 1:
                x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
            if r.batchnorm:
                x = layers.BatchNormalization(momentum=0.9, name=f"block{b}_bn{c}")(x)
            x = layers.Activation("gelu", name=f"block{b}_gelu{c}")(x)
    x = layers.GlobalMaxPooling2D(name="pool")(x)
    outputs = layers.Dense(n_classes, name="logits", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name="cifar_net")
    return model


def min_image_size(r: Recipe) -> int:
    """The smallest image side `build_model` takes: the 2x2 whitening convolution ("valid")
    takes one pixel off, then each block's 2x2 max-pool halves the side (rounding down), and
    the last feature map must keep at least one pixel."""
    side = 1
    for _ in r.widths:
        side *= 2  # undo one max-pool
    return side + 1  # undo the whitening convolution


def initialise(model: keras.Model, r: Recipe, seed: int, x_whiten=None) -> None:
    runtime.init_weights(model, seed)
    if r.whiten and x_whiten is not None:
        model.get_layer("whiten").set_weights(list(whitening_filters(x_whiten)))


def compile_model(model: keras.Model, r: Recipe, total_steps: int) -> None:
    warm = max(1, int(r.warmup * total_steps))
    if r.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            0.0, max(1, total_steps - warm), alpha=0.0, warmup_target=r.lr, warmup_steps=warm
        )
    else:
        lr = r.lr
    if r.optimizer == "nesterov":
        opt = keras.optimizers.SGD(lr, momentum=r.momentum, nesterov=True, weight_decay=r.weight_decay or None)
    else:  # AdamW at its usual scale: the SGD learning rate / 100
        lr_adam = (
            keras.optimizers.schedules.CosineDecay(
                0.0, max(1, total_steps - warm), warmup_target=r.lr / 100, warmup_steps=warm
            )
            if r.schedule == "cosine"
            else r.lr / 100
        )
        opt = keras.optimizers.AdamW(lr_adam, weight_decay=r.weight_decay * 100 if r.weight_decay else 0.0)
    loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=r.label_smoothing)
    model.compile(opt, loss, metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])


def predict_logits(model, x, tta: bool, batch_size: int = 1000) -> np.ndarray:
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    if tta:
        logits = (logits + model.predict(x[:, :, ::-1], batch_size=batch_size, verbose=0)) / 2
    return logits


def accuracy(model, x, y, tta: bool) -> float:
    return float(np.mean(np.argmax(predict_logits(model, x, tta), axis=1) == y))


# --- training -----------------------------------------------------------------------------
def one_hot(y, k):
    return np.eye(k, dtype="float32")[y]


def training_data(r: Recipe, d, seed: int):
    y = one_hot(d.y_train, d.n_classes)
    if r.augment:
        return resumable_epochs(images.augmented_batches(d.x_train, y, r.batch_size, seed))
    return batches(d.x_train, y, r.batch_size, seed)


def plan_epochs(r: Recipe, d, seed: int, budget_s: float, n_steps: int = 20) -> tuple[int, float]:
    """Epochs that fit in `budget_s`: time `n_steps` steady-state steps of a throwaway copy
    of the model (after one compiled step), add the validation pass, keep 10% slack (a
    machine whose load changes can still overrun: training then stops at the budget)."""
    model = build_model(r, d.x_train.shape[1:], d.n_classes)
    initialise(model, r, seed, d.x_train)
    compile_model(model, r, 1000)
    data = training_data(r, d, seed)
    xb, yb = data[0][:2]
    model.train_on_batch(xb, yb)
    t = time.perf_counter()
    for i in range(1, n_steps + 1):
        xb, yb = data[i % len(data)][:2]
        model.train_on_batch(xb, yb)
    step = (time.perf_counter() - t) / n_steps
    t = time.perf_counter()
    model.predict(d.x_val, batch_size=1000, verbose=0)
    val = time.perf_counter() - t
    epoch = step * len(data) + val
    return max(1, int(0.9 * budget_s / epoch)), epoch


def train(
    r: Recipe,
    d,
    seed: int,
    epochs: int,
    budget_s: float | None = None,
    verbose: int = 2,
    extra_callbacks=(),
    name: str | None = None,
):
    """Train the recipe for `epochs` (the schedule ends there), stopping early only if the
    wall-clock budget runs out (a resumed fit has only what was left of it). `name` (unique
    in the run; default recipe_seed<seed>) names its checkpoint for --resume. Returns
    (model, history dict)."""
    keras.utils.set_random_seed(seed)
    model = build_model(r, d.x_train.shape[1:], d.n_classes)
    initialise(model, r, seed, d.x_train)
    data = training_data(r, d, seed)
    compile_model(model, r, epochs * len(data))
    clock = EpochClock(budget_s)
    name = name or f"recipe_seed{seed}"
    hist = model.fit(
        data,
        epochs=epochs,
        verbose=verbose,
        validation_data=(d.x_val, one_hot(d.y_val, d.n_classes)),
        callbacks=resumable(name, [clock, *extra_callbacks, *tensorboard(name)], data),
    )
    h = dict(hist.history)
    h["wall_seconds"] = clock.seconds
    return model, h


def time_to(h: dict, level: float):
    """Seconds (wall clock) until validation accuracy first reached `level`, else None."""
    for acc, s in zip(h["val_accuracy"], h["wall_seconds"]):
        if acc >= level:
            return float(s)
    return None


def set_precision(on: bool) -> None:
    keras.mixed_precision.set_global_policy(
        ("mixed_bfloat16" if runtime.backend() == "tensorflow" or not _has_gpu() else "mixed_float16")
        if on
        else "float32"
    )


def _has_gpu() -> bool:
    return any(d.split(":")[0] in ("gpu", "cuda") for d in runtime.devices())


# --- CLI ----------------------------------------------------------------------------------
def parse_widths(text: str) -> tuple:
    try:
        w = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--widths {text!r}: give comma-separated integers (one per block), e.g. 32,64,128")
    if len(w) < 1 or min(w) < 1:
        raise UserError(f"--widths {text!r}: widths must be positive integers")
    return w


def make_parser():
    p = cli.parser("python -m keras_cases.cifar", __doc__.split("\n\n")[0], epochs=0, batch_size=256)
    g = p.add_argument_group("cifar")
    g.add_argument(
        "--study",
        choices=("recipe", "ablation", "both"),
        default="recipe",
        help="train the recipe, measure each ingredient's gain, or both",
    )
    g.add_argument(
        "--budget-minutes",
        type=cli.positive_float,
        default=60.0,
        help="wall-clock training budget when --epochs is not given",
    )
    g.add_argument("--widths", default="32,64,128", help="channels of the three conv blocks")
    g.add_argument("--lr", type=cli.positive_float, default=Recipe.lr, help="peak learning rate (SGD)")
    g.add_argument("--label-smoothing", type=cli.fraction, default=Recipe.label_smoothing)
    g.add_argument("--weight-decay", type=cli.nonnegative_float, default=Recipe.weight_decay)
    g.add_argument(
        "--mixed-precision", choices=("auto", "on", "off"), default="auto", help="auto: on with a GPU, off on a CPU"
    )
    g.add_argument("--ablation-epochs", type=cli.positive_int, default=6, help="epochs per ablation run")
    g.add_argument(
        "--ablation-train", type=cli.positive_int, default=1000, help="training images per class in the ablation runs"
    )
    g.add_argument("--data", default="cifar10", help="cifar10, or an image folder (one sub-folder per class)")
    g.add_argument("--images", default=None, help="an image folder (same as --data DIR)")
    g.add_argument(
        "--image-size", type=cli.positive_int, default=32, help="side length images are resized to (folders)"
    )
    return p


def check_input(args, r: Recipe) -> None:
    """Before any image is loaded: the data source exists, and its images are large enough
    for the network (see `min_image_size`)."""
    if args.images:
        images.check_folder(args.images, "--images")
        side = None
    else:
        side = images.check_source(args.data, "--data")
    need = min_image_size(r)
    for n, what, fix in (
        (side, f"--data {args.data}: its images are", "fewer --widths"),
        (args.image_size, f"--image-size {args.image_size}: images of", f"--image-size {need} or more"),
    ):
        if n is not None and n < need:
            raise UserError(
                f"{what} {n}x{n} pixels, and the network needs at least {need}x{need} (its 2x2 "
                f"whitening convolution takes off one pixel, then each of its {len(r.widths)} blocks "
                f"halves the size): use {fix}"
            )


def recipe_from(args) -> Recipe:
    on = {"on": True, "off": False, "auto": _has_gpu()}[args.mixed_precision]
    return Recipe(
        widths=parse_widths(args.widths),
        batch_size=args.batch_size,
        lr=args.lr,
        label_smoothing=args.label_smoothing,
        weight_decay=args.weight_decay,
        mixed_precision=on,
    )


def ablation(base: Recipe, d, seeds, epochs: int, verbose: int, ingredients=tuple(INGREDIENTS)):
    """Validation accuracy of the recipe and of the recipe with each ingredient removed."""
    rows = []
    variants = [("full recipe", "", {})] + [(k, *INGREDIENTS[k]) for k in ingredients]
    trained = {}
    for name, what, change in variants:
        accs, secs = [], []
        for s in seeds:
            if name == "tta":  # the same trained models, evaluated without flips
                model = trained[s]
                accs.append(accuracy(model, d.x_val, d.y_val, tta=False))
                secs.append(np.nan)
                continue
            r = replace(base, **change)
            t = time.perf_counter()
            model, _ = train(r, d, s, epochs, verbose=0, name=f"ablation_{name.replace(' ', '_')}_seed{s}")
            secs.append(time.perf_counter() - t)
            accs.append(accuracy(model, d.x_val, d.y_val, tta=r.tta))
            if name == "full recipe":
                trained[s] = model
        rows.append(
            {
                "variant": "full recipe" if not what else f"without {what}",
                "ingredient": name,
                "val_accuracy": float(np.mean(accs)),
                "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
                "seconds": float(np.nanmean(secs)) if not np.all(np.isnan(secs)) else float("nan"),
            }
        )
        if verbose:
            print(
                f"  ablation {rows[-1]['variant']:45s} val acc {rows[-1]['val_accuracy']:.4f} ± {rows[-1]['std']:.4f}",
                flush=True,
            )
    full = rows[0]["val_accuracy"]
    for row in rows:
        row["gain"] = full - row["val_accuracy"]  # what the ingredient adds
    return rows


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    t_start = time.time()
    runtime.set_seed(args.seed)
    runtime.set_threads(args.threads)
    r = recipe_from(args)
    if args.quick:
        keep = {
            "widths": cli.given(argv, "--widths"),
            "batch_size": cli.given(argv, "--batch-size") or args.distribute != "none",
        }
        r = replace(r, **{k: QUICK[k] for k, typed in keep.items() if not typed})
    check_input(args, r)
    set_precision(r.mixed_precision)
    source = args.images or args.data
    if args.quick and source == "cifar10":
        d = images.cifar10_per_class(QUICK["per_class"])  # decodes only these images
    else:
        d = images.load(source, size=args.image_size)
    if d.x_train.ndim != 4:
        raise UserError(f"{source}: the CIFAR recipe needs colour or grey images (n, h, w, c)")
    if args.quick and len(d.y_train) > QUICK["per_class"] * d.n_classes:
        d = images.per_class(d, QUICK["per_class"])
    run = Run(CASE, args.out, tensorboard=args.tensorboard, overwrite=args.overwrite)
    info = runtime.backend_report()
    print(
        f"{d.name}: {d.sizes[0]:,} train / {d.sizes[1]:,} val / {d.sizes[2]:,} test; backend {info['backend']} "
        f"{info['devices']}; writing {run.dir}",
        flush=True,
    )
    metrics = {
        **info,
        "case": CASE,
        "dataset": d.name,
        "n_train": d.sizes[0],
        "n_val": d.sizes[1],
        "n_test": d.sizes[2],
        "seed": args.seed,
        "recipe": asdict(r),
        "class_names": list(d.class_names),
    }
    seeds = list(range(args.seed, args.seed + args.seeds))
    sections = []

    if args.study in ("ablation", "both"):
        small = images.per_class(d, args.ablation_train if not args.quick else 30)
        epochs = args.ablation_epochs if not args.quick else 1
        print(
            f"ablation: {2 + 1 if args.quick else len(INGREDIENTS) + 1} variants x {len(seeds)} seeds, {small.sizes[0]:,} training images, "
            f"{epochs} epochs each",
            flush=True,
        )
        rows = ablation(r, small, seeds, epochs, args.verbose, ("augment", "tta") if args.quick else tuple(INGREDIENTS))
        run.write_json("ablation.json", rows)
        plots.ablation_bars(
            rows,
            run.path("ablation.png"),
            f"each ingredient's gain in validation accuracy ({small.sizes[0]:,} images, {epochs} epochs)",
        )
        metrics["ablation_full_val_accuracy"] = rows[0]["val_accuracy"]
        for row in rows[1:]:
            metrics[f"ablation_gain_{row['ingredient']}"] = row["gain"]
        sections.append(ablation_report(rows, small, epochs, seeds))

    if args.study in ("recipe", "both"):
        budget = None if args.epochs else args.budget_minutes * 60
        if args.quick:
            epochs, budget = args.epochs or QUICK["epochs"], None
        elif args.epochs:
            epochs = args.epochs
        else:
            plan = run.dir / "checkpoints" / "budget_plan.json"  # a resumed run keeps its schedule
            if run.resumed and plan.is_file():
                epochs, per_epoch = json.loads(plan.read_text())
            else:
                epochs, per_epoch = plan_epochs(r, d, args.seed, budget)
                plan.parent.mkdir(parents=True, exist_ok=True)
                write_text(plan, json.dumps([epochs, per_epoch]))
            print(
                f"budget {args.budget_minutes:g} min: one epoch takes ~{per_epoch:.0f} s -> {epochs} epochs", flush=True
            )
        load_before = os.getloadavg()[0]
        model, h = train(r, d, args.seed, epochs, budget, args.verbose)
        metrics["load_average_before"], metrics["load_average_after"] = load_before, os.getloadavg()[0]
        runtime.save_model(model, run.path("model.keras"))
        run.write_history({"recipe": h})
        test_acc = accuracy(model, d.x_test, d.y_test, tta=r.tta)
        test_plain = accuracy(model, d.x_test, d.y_test, tta=False) if r.tta else test_acc
        val_acc = accuracy(model, d.x_val, d.y_val, tta=r.tta)
        metrics.update(
            {
                "test_accuracy": test_acc,
                "test_accuracy_no_tta": test_plain,
                "val_accuracy": val_acc,
                "epochs_planned": epochs,
                "epochs_trained": len(h["loss"]),
                "train_seconds": h["wall_seconds"][-1],
                "params": model.count_params(),
                "time_to_80": time_to(h, 0.80),
                "time_to_85": time_to(h, 0.85),
                "time_to_90": time_to(h, 0.90),
            }
        )
        plots.accuracy_vs_time(h, run.path("accuracy.png"), levels=(0.80, 0.85))
        logits = predict_logits(model, d.x_test, r.tta)
        plots.confusion_matrices(
            {"test": confusion(d.y_test, logits.argmax(1), d.n_classes)},
            run.path("confusion.png"),
            labels=d.class_names,
        )
        show = np.linspace(0, len(d.y_test) - 1, 30).astype(int)  # spread over the (maybe sorted) test set
        plots.image_grid(
            d.x_test[show].astype("float32") / 255,
            run.path("test_examples.png"),
            "test images with the predicted class (✗: wrong)",
            ncols=10,
            captions=[
                d.class_names[p] + ("" if p == t else " ✗") for p, t in zip(logits[show].argmax(1), d.y_test[show])
            ],
        )
        sections.insert(0, recipe_report(metrics, h, r))
        print(
            f"test accuracy {test_acc:.4f} (no TTA {test_plain:.4f}); {len(h['loss'])} epochs in "
            f"{h['wall_seconds'][-1]:.0f} s; time to 80%: {fmt_s(metrics['time_to_80'])}, "
            f"to 85%: {fmt_s(metrics['time_to_85'])}",
            flush=True,
        )

    metrics["seconds"] = time.time() - t_start
    run.write_json(
        "metrics.json",
        {k: v for k, v in metrics.items() if not isinstance(v, dict)}
        | {f"recipe_{k}": (list(v) if isinstance(v, tuple) else v) for k, v in asdict(r).items()},
    )
    run.write_text(
        "report.md",
        f"# CIFAR-10 recipe\n\n{d.name}; backend {info['backend']} on {info['devices']}.\n\n"
        + "\n\n".join(sections)
        + "\n",
    )
    print(f"wrote {run.dir}")
    return 0


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
        f"## The recipe\n\n{len(r.widths)} blocks of widths {', '.join(map(str, r.widths))}, {m['params']:,} "
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


def ablation_report(rows, small, epochs, seeds) -> str:
    return (
        f"## Ablation: what each ingredient adds\n\nEach row removes one ingredient from the recipe and "
        f"retrains ({small.sizes[0]:,} training images, {epochs} epochs, seeds {seeds[0]}..{seeds[-1]}); "
        f"validation accuracy, mean and std over seeds. *gain* = full recipe minus the variant: positive "
        f"means the ingredient helps at this scale.\n\n"
        + markdown_table(rows, ["variant", "val_accuracy", "std", "gain", "seconds"])
        + "\n\n![ablation](ablation.png)"
    )


def load_predictor(run_dir) -> images.ImagePredictor:
    """A saved run, for `python -m keras_cases serve --run DIR` (image upload)."""
    return images.ImagePredictor(run_dir, CASE)


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
