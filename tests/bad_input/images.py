"""Bad input rows: the image cases (cifar, transfer, representation, generative) and
regularization (see __init__.py). Every row stops before any data set is decoded, except
the folders whose mistake is in an image itself (a handful of tiny PNGs)."""

import struct
import zlib

import numpy as np

CIFAR, TRANSFER = "keras_cases.cifar", "keras_cases.transfer"
REP, GEN, REG = "keras_cases.representation", "keras_cases.generative", "keras_cases.regularization"
# a representation backbone with random weights: no network, no pretraining, no runs/ lookup
SMALL = ["--backbone", "representation", "--weights", "none"]


def _png(path, colour, size=(12, 10)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _folder(ctx, name, counts):
    """ctx.tmp/name/<class>/<i>.png, counts = {class: number of images}."""
    root = ctx.tmp / name
    root.mkdir()
    for k, (cls, n) in enumerate(counts.items()):
        (root / cls).mkdir()
        for i in range(n):
            _png(root / cls / f"{i}.png", (40 * k, 100, 10 * i))
    return root


def img_one_class(ctx):
    return _folder(ctx, "one_class", {"red": 6})


def img_empty_class(ctx):
    return _folder(ctx, "empty_class", {"red": 6, "blue": 0})


def img_few_per_class(ctx):
    return _folder(ctx, "few", {"red": 6, "blue": 3})


def img_corrupt_jpeg(ctx):
    from PIL import Image

    root = _folder(ctx, "corrupt", {"red": 6, "blue": 6})
    whole = root / "blue" / "whole.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(whole, quality=90)
    data = whole.read_bytes()
    whole.unlink()
    (root / "blue" / "cut.jpg").write_bytes(data[: len(data) // 2])  # a JPEG cut short
    return root


def bomb_png(width=30_000, height=30_000) -> bytes:
    """A valid PNG header declaring width x height pixels (more than PIL's decompression-bomb
    limit, Image.MAX_IMAGE_PIXELS), and no pixel data: 60 bytes that would decode to 2.7 GB."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def img_bomb(ctx):
    root = _folder(ctx, "bomb", {"red": 6, "blue": 6})
    (root / "blue" / "huge.png").write_bytes(bomb_png())
    return root


def img_loose(ctx):
    """Images straight in the folder, no class sub-folders."""
    root = ctx.tmp / "loose"
    for i in range(6):
        _png(root / f"{i}.png", (10 * i, 0, 0))
    return root


def img_empty_dir(ctx):
    root = ctx.tmp / "nothing_here"
    root.mkdir()
    (root / "readme.txt").write_text("no images\n")
    return root


def img_train_only(ctx):
    root = ctx.tmp / "split"
    for cls in ("red", "blue"):
        for i in range(6):
            _png(root / "train" / cls / f"{i}.png", (10 * i, 50, 50))
    return root


def img_good(ctx):
    return _folder(ctx, "good", {"red": 6, "blue": 6})


def img_file(ctx):
    p = ctx.tmp / "photo.png"
    _png(p, (1, 2, 3))
    return p


def img_weights_text(ctx):
    p = ctx.tmp / "backbone.keras"
    p.write_text("not a model\n")
    return p


def _npz(ctx, name, **arrays):
    p = ctx.tmp / name
    np.savez(p, **arrays)
    return p


def _xy(n=60, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 40)).astype("float32"), np.arange(n) % k


def img_npz_truncated(ctx):
    x, y = _xy()
    p = _npz(ctx, "cut.npz", x=x, y=y)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def img_npz_not_zip(ctx):
    p = ctx.tmp / "notes.npz"
    p.write_text("x,y\n1,2\n")
    return p


def img_npz_nan(ctx):
    x, y = _xy()
    x[5, 3] = np.nan
    return _npz(ctx, "nan.npz", x=x, y=y)


def img_npz_float_labels(ctx):
    x, y = _xy()
    return _npz(ctx, "float_labels.npz", x=x, y=y + 0.5)


def img_npz_few_per_class(ctx):
    x, y = _xy()
    y[y == 2] = 0
    y[:3] = 2  # class 2: 3 examples
    return _npz(ctx, "few.npz", x=x, y=y)


def img_npz_test_shape(ctx):
    x, y = _xy()
    return _npz(ctx, "test_shape.npz", x=x, y=y, x_test=x[:10, :20], y_test=y[:10])


def img_npz_is_npy(ctx):
    p = ctx.tmp / "array.npz"
    with open(p, "wb") as f:
        np.save(f, _xy()[0])  # np.save to an open file: no .npy suffix added
    return p


def img_npz_folder(ctx):
    p = ctx.tmp / "data.npz"
    p.mkdir()
    return p


def img_npz_empty(ctx):
    return _npz(ctx, "empty.npz", x=np.zeros((0, 40), "float32"), y=np.zeros(0, "int64"))


BUILDERS = {
    f.__name__: f
    for f in (
        img_one_class,
        img_empty_class,
        img_few_per_class,
        img_corrupt_jpeg,
        img_bomb,
        img_loose,
        img_empty_dir,
        img_train_only,
        img_good,
        img_file,
        img_weights_text,
        img_npz_truncated,
        img_npz_not_zip,
        img_npz_nan,
        img_npz_float_labels,
        img_npz_few_per_class,
        img_npz_test_shape,
        img_npz_empty,
        img_npz_folder,
        img_npz_is_npy,
    )
}

# the mistakes in an image folder, the same for both cases that read one
FOLDERS = [
    ("missing", "no_such_folder", "image folder not found"),
    ("is-a-file", "{img_file}", "is a file, not an image folder"),
    ("no-images", "{img_empty_dir}", "holds no images"),
    ("no-class-folders", "{img_loose}", "no class sub-folders"),
    ("one-class", "{img_one_class}", "at least 2"),
    ("empty-class", "{img_empty_class}", "holds no images"),
    ("few-per-class", "{img_few_per_class}", "need at least 5"),
    ("train-without-test", "{img_train_only}", "no test/ folder"),
    ("corrupt-jpeg", "{img_corrupt_jpeg}", "cut.jpg is not a readable image"),
    ("decompression-bomb", "{img_bomb}", "decompression-bomb limit"),
]

ROWS = [
    # cifar: the budget, the recipe's flags, and images too small for the network
    ("cifar-budget-nan", CIFAR, ["--budget-minutes", "nan"], "--budget-minutes"),
    ("cifar-budget-inf", CIFAR, ["--budget-minutes", "inf"], "--budget-minutes"),
    ("cifar-budget-zero", CIFAR, ["--budget-minutes", "0"], "--budget-minutes"),
    ("cifar-budget-negative", CIFAR, ["--budget-minutes", "-5"], "--budget-minutes"),
    ("cifar-ablation-train-zero", CIFAR, ["--study", "ablation", "--ablation-train", "0"], "--ablation-train"),
    ("cifar-ablation-epochs-zero", CIFAR, ["--study", "ablation", "--ablation-epochs", "0"], "--ablation-epochs"),
    ("cifar-lr-nan", CIFAR, ["--lr", "nan"], "--lr"),
    ("cifar-label-smoothing-one", CIFAR, ["--label-smoothing", "1"], "--label-smoothing"),
    ("cifar-weight-decay-negative", CIFAR, ["--weight-decay", "-0.1"], "--weight-decay"),
    ("cifar-study-unknown", CIFAR, ["--study", "everything"], "--study"),
    ("cifar-widths-not-numbers", CIFAR, ["--widths", "8,x,32"], "--widths"),
    ("cifar-widths-zero", CIFAR, ["--widths", "8,0,32"], "positive integers"),
    ("cifar-image-size-8", CIFAR, ["--images", "{img_good}", "--image-size", "8"], "needs at least 9x9"),
    ("cifar-image-size-8-cifar10", CIFAR, ["--image-size", "8"], "needs at least 9x9"),
    (
        "cifar-data-digits-too-small",
        CIFAR,
        ["--data", "digits"],
        "its images are 8x8 pixels, and the network needs at least 9x9",
    ),
    ("cifar-widths-too-deep", CIFAR, ["--widths", "8,8,8,8,8,8"], "needs at least 65x65"),
    ("cifar-image-size-huge", CIFAR, ["--images", "{img_good}", "--image-size", "1000000"], "smaller --image-size"),
    ("cifar-data-unknown", CIFAR, ["--data", "imagenet"], "unknown dataset"),
    ("cifar-data-folder-missing", CIFAR, ["--data", "no/such/folder"], "image folder not found"),
    *[(f"cifar-images-{k}", CIFAR, ["--quick", "--images", arg], want) for k, arg, want in FOLDERS],
    # cifar --recipe vit: the preset name, the transformer's flags
    ("cifar-recipe-unknown", CIFAR, ["--recipe", "airbench99"], "--recipe"),
    ("cifar-vit-patch-not-dividing", CIFAR, ["--recipe", "vit", "--patch-size", "5"], "--patch-size 5 does not divide"),
    ("cifar-vit-patch-too-big", CIFAR, ["--recipe", "vit", "--patch-size", "64"], "--patch-size 64 does not divide"),
    (
        "cifar-vit-dim-below-heads",
        CIFAR,
        ["--recipe", "vit", "--vit-dim", "2", "--heads", "4"],
        "narrower than --heads",
    ),
    ("cifar-vit-depth-zero", CIFAR, ["--recipe", "vit", "--vit-depth", "0"], "--vit-depth"),
    ("cifar-vit-heads-zero", CIFAR, ["--recipe", "vit", "--heads", "0"], "--heads"),
    ("cifar-vit-erase-one", CIFAR, ["--recipe", "vit", "--erase", "1"], "--erase"),
    ("cifar-vit-erase-negative", CIFAR, ["--recipe", "vit", "--erase", "-0.5"], "--erase"),
    ("cifar-vit-ablation", CIFAR, ["--recipe", "vit", "--studies", "ablation"], "run it with --recipe small"),
    ("cifar-studies-compare-typo", CIFAR, ["--studies", "recipe,comapre"], "unknown study 'comapre'"),
    # transfer: backbones, weights, the stages' flags, your own folder
    ("transfer-backbone-unknown", TRANSFER, ["--backbone", "vgg99"], "unknown backbone 'vgg99'"),
    (
        "transfer-weights-missing",
        TRANSFER,
        ["--backbone", "representation", "--weights", "no_such.keras"],
        "no such file or directory",
    ),
    (
        "transfer-weights-not-a-model",
        TRANSFER,
        ["--backbone", "representation", "--weights", "{img_weights_text}"],
        "is not a keras model file",
    ),
    (
        "transfer-weights-folder-without-backbone",
        TRANSFER,
        ["--backbone", "representation", "--weights", "{img_good}"],
        "holds no rotation_backbone.keras",
    ),
    (
        "transfer-representation-imagenet",
        TRANSFER,
        ["--backbone", "representation", "--weights", "imagenet"],
        "has no imagenet weights",
    ),
    (
        "transfer-unfreeze-beyond-representation",
        TRANSFER,
        [*SMALL, "--unfreeze-blocks", "4"],
        "the representation backbone has 3 blocks",
    ),
    (
        "transfer-unfreeze-beyond-mobilenet",
        TRANSFER,
        ["--backbone", "mobilenetv3small", "--weights", "none", "--unfreeze-blocks", "13"],
        "the mobilenetv3small backbone has 12 blocks",
    ),
    ("transfer-unfreeze-negative", TRANSFER, [*SMALL, "--unfreeze-blocks", "-1"], "--unfreeze-blocks"),
    (
        "transfer-backbone-size-too-small",
        TRANSFER,
        ["--backbone", "resnet50", "--weights", "none", "--backbone-size", "16"],
        "at least 32x32",
    ),
    ("transfer-fine-tune-lr-factor-3", TRANSFER, [*SMALL, "--fine-tune-lr-factor", "3"], "must be in (0, 1]"),
    ("transfer-fine-tune-lr-factor-nan", TRANSFER, [*SMALL, "--fine-tune-lr-factor", "nan"], "--fine-tune-lr-factor"),
    ("transfer-lr-zero", TRANSFER, [*SMALL, "--lr", "0"], "--lr"),
    ("transfer-patience-zero", TRANSFER, [*SMALL, "--patience", "0"], "--patience"),
    ("transfer-per-class-zero", TRANSFER, [*SMALL, "--per-class", "0"], "--per-class"),
    ("transfer-data-unknown", TRANSFER, [*SMALL, "--data", "mnist"], "--data 'mnist'"),
    (
        "transfer-image-size-huge",
        TRANSFER,
        [*SMALL, "--images", "{img_good}", "--image-size", "1000000"],
        "smaller --image-size",
    ),
    *[(f"transfer-images-{k}", TRANSFER, [*SMALL, "--quick", "--images", arg], want) for k, arg, want in FOLDERS],
    # representation: parts and code sizes
    ("representation-parts-unknown", REP, ["--parts", "ae,gan"], "unknown part 'gan'"),
    ("representation-parts-empty", REP, ["--parts", ","], "--parts is empty"),
    ("representation-bottleneck-zero", REP, ["--bottlenecks", "0,8"], "1..784"),
    ("representation-bottleneck-too-big", REP, ["--bottlenecks", "8,785"], "1..784"),
    ("representation-bottleneck-not-numbers", REP, ["--bottlenecks", "2,big"], "comma-separated integers"),
    ("representation-reuse-k-too-big", REP, ["--reuse-k", "1000"], "--reuse-k 1000"),
    ("representation-reuse-k-zero", REP, ["--reuse-k", "0"], "--reuse-k"),
    ("representation-transfer-blocks-beyond", REP, ["--transfer-blocks", "4"], "the backbone has 3 blocks"),
    ("representation-probe-lr-inf", REP, ["--probe-lr", "inf"], "--probe-lr"),
    ("representation-labels-zero", REP, ["--labels", "0"], "--labels"),
    ("representation-labels-not-multiple", REP, ["--labels", "100,105"], "is not a multiple of 10"),
    ("representation-pretext-images-zero", REP, ["--pretext-images", "0"], "--pretext-images"),
    # generative: models, data, sizes
    ("generative-model-unknown", GEN, ["--model", "flow"], "--model"),
    ("generative-data-unknown", GEN, ["--data", "celeba"], "--data"),
    ("generative-latent-dim-zero", GEN, ["--latent-dim", "0"], "--latent-dim"),
    ("generative-gan-epochs-zero", GEN, ["--gan-epochs", "0"], "--gan-epochs"),
    ("generative-diffusion-epochs-zero", GEN, ["--diffusion-epochs", "0"], "--diffusion-epochs"),
    ("generative-prediction-unknown", GEN, ["--prediction", "x0"], "--prediction"),
    ("generative-noise-schedule-unknown", GEN, ["--noise-schedule", "sigmoid"], "--noise-schedule"),
    ("generative-min-snr-negative", GEN, ["--min-snr-gamma", "-1"], "--min-snr-gamma"),
    ("generative-min-snr-nan", GEN, ["--min-snr-gamma", "nan"], "--min-snr-gamma"),
    ("generative-diffusion-steps-zero", GEN, ["--diffusion-steps", "0"], "--diffusion-steps"),
    ("generative-diffusion-steps-one", GEN, ["--diffusion-steps", "1", "--sample-steps", "1"], "at least 2 steps"),
    ("generative-sample-steps-zero", GEN, ["--sample-steps", "0"], "--sample-steps"),
    (
        "generative-sample-steps-beyond-diffusion-steps",
        GEN,
        ["--diffusion-steps", "20", "--sample-steps", "50"],
        "--sample-steps 50 is more than --diffusion-steps 20",
    ),
    (
        "generative-gan-batch-larger-than-data",
        GEN,
        ["--quick", "--data", "digits", "--model", "gan", "--batch-size", "5000"],
        "more than the 1,000 training images",
    ),
    # regularization: studies, rates, and an .npz of your own
    ("regularization-studies-unknown", REG, ["--studies", "a,z"], "unknown study 'z'"),
    ("regularization-studies-empty", REG, ["--studies", " "], "--studies is empty"),
    ("regularization-dropout-one", REG, ["--dropout", "1.0"], "--dropout"),
    ("regularization-dropout-negative", REG, ["--dropout", "-0.2"], "--dropout"),
    ("regularization-resamples-zero", REG, ["--resamples", "0"], "--resamples"),
    ("regularization-l2-per-class-zero", REG, ["--l2-per-class", "0"], "--l2-per-class"),
    ("regularization-data-unknown", REG, ["--studies", "a,c", "--data", "fashion"], "unknown dataset 'fashion'"),
    ("regularization-npz-missing", REG, ["--studies", "a,c", "--data", "no_such.npz"], "data file not found"),
    (
        "regularization-npz-truncated",
        REG,
        ["--studies", "a,c", "--data", "{img_npz_truncated}"],
        "damaged or cut short",
    ),
    (
        "regularization-npz-not-a-zip",
        REG,
        ["--studies", "c", "--data", "{img_npz_not_zip}"],
        "could not be read as .npz",
    ),
    ("regularization-npz-nan", REG, ["--studies", "c", "--data", "{img_npz_nan}"], "nan or infinite"),
    (
        "regularization-npz-float-labels",
        REG,
        ["--studies", "c", "--data", "{img_npz_float_labels}"],
        "integer class labels",
    ),
    (
        "regularization-npz-few-per-class",
        REG,
        ["--studies", "c", "--data", "{img_npz_few_per_class}"],
        "at least 5 examples per class",
    ),
    (
        "regularization-npz-test-shape",
        REG,
        ["--studies", "e", "--data", "{img_npz_test_shape}"],
        "x_test must be examples shaped like x",
    ),
    ("regularization-npz-empty", REG, ["--studies", "c", "--data", "{img_npz_empty}"], "at least 5 examples"),
    ("regularization-npz-is-npy", REG, ["--studies", "c", "--data", "{img_npz_is_npy}"], "holds one .npy array"),
    ("regularization-npz-is-a-folder", REG, ["--studies", "c", "--data", "{img_npz_folder}"], "is a folder"),
]
