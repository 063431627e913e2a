"""Regularization: over- and underfitting, bias and variance, dropout, weight decay,
early stopping.

Five small studies, each a table and a plot, every claim a mean ± std over seeds:

a. fit       polynomials of degree 1, 3 and 15 fit to 20 noisy points of
             y = 1.5 x^2 + 0.3 sin(15 x) (seeded synthetic data, by design): train and test
             MSE, the fitted curves, and how large the coefficients get.
b. biasvar   degree 1..20 on y = sin(2 pi x) + 0.5 cos(4 pi x) + noise: bias^2 and variance
             estimated by refitting on many freshly drawn training sets, next to the test
             error they add up to (bias^2 + variance + noise).
c. dropout   an MLP on MNIST with and without dropout (0.5): train vs test accuracy.
d. l2        an L2 weight-decay sweep on a small CNN trained on a few thousand CIFAR-10
             images (300 per class by default: small enough to overfit, real photos).
e. early     early stopping on a held-out validation split vs a fixed number of epochs:
             epochs saved, test accuracy kept.

(a) and (b) are NumPy least squares; (c)-(e) are Keras functional models with weights
drawn from NumPy (runtime.init_weights) and batches shuffled in NumPy. Dropout masks come
from each backend's own random stream, so (c) differs slightly between backends.

    python -m keras_cases.regularization                  # all five, 3 seeds
    python -m keras_cases.regularization --studies a,b --seeds 10
    python -m keras_cases.regularization --quick
"""

from __future__ import annotations

import time
import warnings

import keras
import numpy as np
from keras import layers

from keras_cases import cli, plots, runtime
from keras_cases.callbacks import resumable, tensorboard
from keras_cases.data import arrays, batches, images
from keras_cases.evaluation import mean_std, pm  # noqa: F401  (re-exported for tests and notebooks)
from keras_cases.runs import command, markdown_table

CASE = "regularization"
STUDIES = {"a": "fit", "b": "biasvar", "c": "dropout", "d": "l2", "e": "early"}
FIT_DEGREES = (1, 3, 15)
L2_VALUES = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)


# --- (a) over- and underfitting ------------------------------------------------------
def truth_fit(x):
    return 1.5 * x**2 + 0.3 * np.sin(15 * x)


def fit_poly(x, y, degree: int):
    """Least-squares polynomial (numpy scales x to [-1, 1] inside, so high degrees stay
    well conditioned)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", getattr(getattr(np, "exceptions", np), "RankWarning", UserWarning))
        return np.polynomial.Polynomial.fit(x, y, degree)


def fit_data(seed: int, n_train=20, n_test=1000, noise=0.2):
    """Training inputs on a fixed grid over [-1, 1] (no extrapolation at test time), test
    inputs uniform on the same interval, Gaussian noise."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, n_train)
    xt = rng.uniform(-1, 1, n_test)
    return x, truth_fit(x) + noise * rng.normal(size=n_train), xt, truth_fit(xt) + noise * rng.normal(size=n_test)


def study_fit(seeds, degrees=FIT_DEGREES):
    per = {d: {"train_mse": [], "test_mse": [], "max_abs_coef": []} for d in degrees}
    for s in seeds:
        x, y, xt, yt = fit_data(s)
        for d in degrees:
            p = fit_poly(x, y, d)
            per[d]["train_mse"].append(float(np.mean((p(x) - y) ** 2)))
            per[d]["test_mse"].append(float(np.mean((p(xt) - yt) ** 2)))
            per[d]["max_abs_coef"].append(float(np.max(np.abs(p.convert().coef))))  # power basis in x
    return per


def plot_fit(seed, path, degrees=FIT_DEGREES):
    x, y, _, _ = fit_data(seed)
    grid = np.linspace(-1, 1, 400)
    fits = {f"degree {d}": fit_poly(x, y, d)(grid) for d in degrees}
    return plots.fitted_curves(
        grid, truth_fit(grid), x, y, fits, path, title="underfit (1), about right (3), overfit (15)"
    )


# --- (b) bias and variance ----------------------------------------------------------
def truth_biasvar(x):
    return np.sin(2 * np.pi * x) + 0.5 * np.cos(4 * np.pi * x)


def bias_variance(truth, degree: int, n_train: int, noise: float, n_sets: int, rng, x_test=None) -> dict:
    """Refit a degree-`degree` polynomial on `n_sets` independent training sets (x uniform
    on [0, 1], y = truth(x) + N(0, noise^2)) and decompose its error at fixed test inputs:

    bias^2   = mean over x of (mean prediction - truth)^2
    variance = mean over x of the variance of the predictions across training sets
    expected test error = mean of (prediction - fresh noisy target)^2, measured directly;
    in expectation it equals bias^2 + variance + noise^2."""
    x_test = np.linspace(0.02, 0.98, 200) if x_test is None else x_test
    preds = np.empty((n_sets, len(x_test)))
    for r in range(n_sets):
        x = (np.arange(n_train) + rng.uniform(size=n_train)) / n_train  # one point per 1/n bin
        preds[r] = fit_poly(x, truth(x) + noise * rng.normal(size=n_train), degree)(x_test)
    f = truth(x_test)
    y_new = f + noise * rng.normal(size=preds.shape)
    bias2 = float(np.mean((preds.mean(0) - f) ** 2))
    variance = float(np.mean(preds.var(0)))
    return {
        "bias2": bias2,
        "variance": variance,
        "noise": noise**2,
        "sum": bias2 + variance + noise**2,
        "test_error": float(np.mean((preds - y_new) ** 2)),
    }


def study_biasvar(seeds, degrees=range(1, 21), n_train=30, noise=0.3, n_sets=200):
    out = {}
    for d in degrees:
        runs = [
            bias_variance(truth_biasvar, d, n_train, noise, n_sets, np.random.default_rng(1000 * s + d)) for s in seeds
        ]
        out[d] = {k: [r[k] for r in runs] for k in runs[0]}
    return out


# --- (c)-(e) Keras models ----------------------------------------------------------------
def build_mlp(shape, n_classes, dropout=0.0, hidden=(256, 256), seed=0):
    inputs = keras.Input(shape, name="image")
    x = layers.Flatten()(inputs)
    for i, units in enumerate(hidden):
        x = layers.Dense(units, activation="relu", name=f"dense{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, seed=seed + i, name=f"dropout{i}")(x)
    return keras.Model(
        inputs, layers.Dense(n_classes, activation="softmax", name="class")(x), name=f"mlp_dropout{dropout:g}"
    )


def build_cnn(shape, n_classes, l2=0.0):
    """conv 16 - pool - conv 32 - pool - conv 64 - pool - dense 128 on uint8 images
    (h, w, channels), with an L2 penalty of factor `l2` on every kernel."""
    reg = keras.regularizers.L2(l2) if l2 else None
    inputs = keras.Input(shape, name="image")
    x = layers.Rescaling(1 / 255)(inputs)
    for i, filters in enumerate((16, 32, 64)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_regularizer=reg, name=f"conv{i}")(x)
        x = layers.MaxPooling2D(name=f"pool{i}")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu", kernel_regularizer=reg, name="dense")(x)
    out = layers.Dense(n_classes, activation="softmax", kernel_regularizer=reg, name="class")(x)
    return keras.Model(inputs, out, name=f"cnn_l2_{l2:g}")


def fit_classifier(model, d, args, seed, epochs, early_stopping=False, lr=1e-3):
    """Train on d's training split (validation watched), return (model, history, results)."""
    runtime.init_weights(model, seed)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cbs = (
        [keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience, restore_best_weights=True)]
        if early_stopping
        else []
    )
    name = f"{model.name}{'_early' if early_stopping else ''}_seed{seed}"
    data = batches(d.x_train, d.y_train, args.batch_size, seed)
    hist = model.fit(
        data,
        validation_data=(d.x_val, d.y_val),
        epochs=epochs,
        verbose=args.verbose,
        callbacks=resumable(name, cbs + tensorboard(name), data),
    ).history
    acc = lambda x, y: float(model.evaluate(x, y, verbose=0, batch_size=512)[1])  # noqa: E731
    kernels = [w for w in model.trainable_weights if len(w.shape) >= 2]
    res = {
        "train_accuracy": acc(d.x_train, d.y_train),
        "val_accuracy": acc(d.x_val, d.y_val),
        "test_accuracy": acc(d.x_test, d.y_test),
        "epochs_run": len(hist["loss"]),
        "best_val_epoch": int(np.argmin(hist["val_loss"])) + 1,
        "weight_norm": float(np.sqrt(sum(np.sum(np.square(keras.ops.convert_to_numpy(w))) for w in kernels))),
    }
    res["gap"] = res["train_accuracy"] - res["test_accuracy"]
    return model, hist, res


def load_images(name, quick):
    d = arrays.load(name)
    if quick:
        d = d.subset(1000, 300, 500)
    return d


# --- the command --------------------------------------------------------------------
def make_parser():
    p = cli.parser(
        "python -m keras_cases.regularization", __doc__.split("\n\n")[0], epochs=30, batch_size=128, threads=1
    )
    g = p.add_argument_group("regularization")
    g.add_argument(
        "--studies", default="a,b,c,d,e", help="comma-separated: a (fit), b (biasvar), c (dropout), d (l2), e (early)"
    )
    g.add_argument(
        "--data",
        default="mnist",
        help="images for the dropout and early-stopping studies: mnist (offline: its "
        "10,000-image test split), digits, mnist1d, or an .npz file with arrays x and y",
    )
    g.add_argument("--dropout", type=cli.fraction, default=0.5, help="dropout rate in study c")
    g.add_argument("--l2-epochs", type=cli.positive_int, default=30, help="epochs of each CNN in study d")
    g.add_argument(
        "--l2-per-class",
        type=cli.positive_int,
        default=300,
        help="CIFAR-10 images per class in each split of study d (train, validation, test)",
    )
    g.add_argument("--patience", type=cli.positive_int, default=3, help="early-stopping patience (study e)")
    g.add_argument(
        "--resamples", type=cli.positive_int, default=200, help="training sets drawn per degree and seed in study b"
    )
    g.set_defaults(seeds=3)
    return p


def parse_studies(text: str) -> list[str]:
    return cli.parse_list(text, "--studies", STUDIES, "study")


@command
def main(argv=None):
    args = make_parser().parse_args(argv)
    studies = parse_studies(args.studies)
    if args.quick:
        args.epochs, args.l2_epochs, args.patience = min(args.epochs, 4), min(args.l2_epochs, 8), min(args.patience, 1)
        args.resamples, args.l2_per_class = min(args.resamples, 50), min(args.l2_per_class, 50)
        if not cli.given(argv, "--seeds"):
            args.seeds = 1
    t0 = time.time()
    # the data first: bad --data stops the command before any study has written a file
    mlp_data = load_images(args.data, args.quick) if "c" in studies or "e" in studies else None
    l2_data = images.cifar10_per_class(args.l2_per_class) if "d" in studies else None
    run, info, seeds = cli.start(CASE, args, f"studies {', '.join(STUDIES[s] for s in studies)}")
    metrics = {**info, "case": CASE, "seed": args.seed, "seeds": args.seeds, "studies": studies}
    sections, history = [], {}

    if "a" in studies:
        per = study_fit(seeds)
        plot_fit(seeds[0], run.path("fit_curves.png"))
        rows = [
            {
                "degree": d,
                "train MSE": pm(r["train_mse"]),
                "test MSE": pm(r["test_mse"]),
                "max abs coefficient": pm(r["max_abs_coef"], "{:.3g}"),
            }
            for d, r in per.items()
        ]
        for d, r in per.items():
            for k, v in r.items():
                metrics[f"fit_degree{d}_{k}"], metrics[f"fit_degree{d}_{k}_std"] = mean_std(v)
        sections.append(
            (
                "a. Over- and underfitting",
                f"""20 training points on a fixed grid over [-1, 1],
y = 1.5 x^2 + 0.3 sin(15 x) + N(0, 0.2^2); test MSE on 1,000 fresh points. Coefficients in
the power basis of x.

{markdown_table(rows, list(rows[0]))}

![fitted curves](fit_curves.png)""",
            )
        )
        print(markdown_table(rows, list(rows[0])), flush=True)

    if "b" in studies:
        bv = study_biasvar(seeds, n_sets=args.resamples)
        degs = list(bv)
        mean = lambda k: np.array([mean_std(bv[d][k])[0] for d in degs])  # noqa: E731
        plots.log_curves(
            degs,
            {
                "bias²": mean("bias2"),
                "variance": mean("variance"),
                "bias² + variance + noise": mean("sum"),
                "measured test error": mean("test_error"),
                "noise σ²": mean("noise"),
            },
            run.path("bias_variance.png"),
            "polynomial degree",
            "squared error",
            f"{args.resamples} training sets of 30 points per degree",
        )
        best = degs[int(np.argmin(mean("test_error")))]
        rel = np.abs(mean("sum") - mean("test_error")) / mean("test_error")
        metrics.update(
            {
                "biasvar_best_degree": best,
                "biasvar_max_rel_gap": float(rel.max()),
                "biasvar": {str(d): {k: mean_std(v)[0] for k, v in bv[d].items()} for d in degs},
            }
        )
        shown = [d for d in degs if d in (1, 2, 3, 5, 8, 10, 12, 15, 20)]
        rows = [
            {
                "degree": d,
                "bias²": pm(bv[d]["bias2"]),
                "variance": pm(bv[d]["variance"]),
                "bias²+var+noise": pm(bv[d]["sum"]),
                "measured test error": pm(bv[d]["test_error"]),
            }
            for d in shown
        ]
        sections.append(
            (
                "b. Bias and variance",
                f"""y = sin(2 pi x) + 0.5 cos(4 pi x) + N(0, 0.3^2); for each degree {args.resamples}
training sets of 30 points (one uniform x in each of 30 equal bins of [0, 1]) are drawn and fit, and
the predictions at 200 fixed test inputs are decomposed. The measured test error (against
fresh noisy targets) and bias² + variance + noise agree within {100 * rel.max():.1f}% at every
degree. Lowest test error at degree **{best}**; below it bias dominates, above it variance.

{markdown_table(rows, list(rows[0]))}

![bias-variance](bias_variance.png)""",
            )
        )
        print(markdown_table(rows, list(rows[0])), flush=True)

    mlp_runs = {}

    def mlp(d, seed, dropout, early):
        key = (seed, dropout, early)
        if key not in mlp_runs:
            name = f"mlp_dropout{dropout:g}{'_early' if early else ''}_seed{seed}"
            print(f"--- {name}", flush=True)
            model, history[name], res = fit_classifier(
                build_mlp(d.shape, d.n_classes, dropout, seed=seed), d, args, seed, args.epochs, early_stopping=early
            )
            if seed == seeds[0]:
                runtime.save_model(model, run.path(f"{model.name}{'_early' if early else ''}.keras"))
            mlp_runs[key] = res
        return mlp_runs[key]

    if mlp_data is not None:
        d = mlp_data
        metrics.update(dataset=d.name, n_train=len(d.y_train), n_val=len(d.y_val), n_test=len(d.y_test))

    if "c" in studies:
        res = {p: [mlp(d, s, p, False) for s in seeds] for p in (0.0, args.dropout)}
        rows = []
        for p, rs in res.items():
            row = {"dropout": f"{p:g}"}
            for k in ("train_accuracy", "test_accuracy", "gap"):
                v = [r[k] for r in rs]
                row[k] = pm(v)
                metrics[f"dropout{p:g}_{k}"], metrics[f"dropout{p:g}_{k}_std"] = mean_std(v)
            rows.append(row)
        plots.learning_curves(
            {f"dropout {p:g}": history[f"mlp_dropout{p:g}_seed{seeds[0]}"] for p in res},
            run.path("dropout_curves.png"),
            metrics=("loss", "accuracy"),
        )
        sections.append(
            (
                "c. Dropout",
                f"""MLP 256-256 on {d.name} ({len(d.y_train)} training images),
{args.epochs} epochs, no early stopping; dropout {args.dropout:g} after each hidden layer.
Gap = train accuracy - test accuracy.

{markdown_table(rows, list(rows[0]))}

![dropout learning curves, seed {seeds[0]}](dropout_curves.png)""",
            )
        )
        print(markdown_table(rows, list(rows[0])), flush=True)

    if l2_data is not None:
        dg = l2_data
        metrics.update(l2_dataset=dg.name, l2_n_train=len(dg.y_train), l2_n_test=len(dg.y_test))
        values = L2_VALUES if not args.quick else (0.0, 1e-2)
        res = {}
        for lam in values:
            res[lam] = []
            for s in seeds:
                name = f"cnn_l2_{lam:g}_seed{s}"
                print(f"--- {name}", flush=True)
                model, history[name], r = fit_classifier(
                    build_cnn(dg.shape, dg.n_classes, lam), dg, args, s, args.l2_epochs
                )
                res[lam].append(r)
        rows = []
        for lam, rs in res.items():
            row = {"L2": f"{lam:g}"}
            for k in ("train_accuracy", "test_accuracy", "gap", "weight_norm"):
                v = [r[k] for r in rs]
                row[k] = pm(v, "{:.2f}" if k == "weight_norm" else "{:.4f}")
                metrics[f"l2_{lam:g}_{k}"], metrics[f"l2_{lam:g}_{k}_std"] = mean_std(v)
            rows.append(row)
        x = np.array([max(v, 1e-5) for v in values])
        plots.lines_with_errors(
            {
                k: (x, *np.array([mean_std([r[k] for r in res[v]]) for v in values]).T)
                for k in ("train_accuracy", "test_accuracy")
            },
            run.path("l2_sweep.png"),
            "L2 factor (0 drawn at 1e-5)",
            "accuracy",
            "weight decay on a small CNN (CIFAR-10 subset)",
            logx=True,
        )
        sections.append(
            (
                "d. L2 weight decay",
                f"""A small CNN (conv 16, 32, 64 with max-pooling, dense 128) with
an L2 penalty of the given factor on every kernel, {args.l2_epochs} epochs of Adam 1e-3, no augmentation,
on {dg.name}: {len(dg.y_train):,} training, {len(dg.y_val):,} validation and {len(dg.y_test):,} test images
(every class equally). Weight norm = L2 norm of all kernels after training; the test accuracy
is reported after the fixed number of epochs (no early stopping, so the penalty alone fights
overfitting).

{markdown_table(rows, list(rows[0]))}

![L2 sweep](l2_sweep.png)""",
            )
        )
        print(markdown_table(rows, list(rows[0])), flush=True)

    if "e" in studies:
        fixed = [mlp(d, s, 0.0, False) for s in seeds]
        early = [mlp(d, s, 0.0, True) for s in seeds]
        saved = [args.epochs - r["epochs_run"] for r in early]
        for tag, rs in (("fixed", fixed), ("early", early)):
            for k in ("test_accuracy", "epochs_run"):
                metrics[f"{tag}_{k}"], metrics[f"{tag}_{k}_std"] = mean_std([r[k] for r in rs])
        metrics["early_epochs_saved"], metrics["early_epochs_saved_std"] = mean_std(saved)
        rows = [
            {
                "training": f"fixed {args.epochs} epochs",
                "epochs run": pm([r["epochs_run"] for r in fixed], "{:.1f}"),
                "test accuracy": pm([r["test_accuracy"] for r in fixed]),
            },
            {
                "training": f"early stopping (patience {args.patience})",
                "epochs run": pm([r["epochs_run"] for r in early], "{:.1f}"),
                "test accuracy": pm([r["test_accuracy"] for r in early]),
            },
        ]
        first = seeds[0]
        plots.learning_curves(
            {
                "fixed": history[f"mlp_dropout0_seed{first}"],
                "early stopping": history[f"mlp_dropout0_early_seed{first}"],
            },
            run.path("early_stopping.png"),
            metrics=("loss", "accuracy"),
        )
        sections.append(
            (
                "e. Early stopping",
                f"""The MLP without dropout, trained for a fixed {args.epochs}
epochs or stopped when validation loss has not improved for {args.patience} epochs (best
weights restored). Epochs saved: {pm(saved, "{:.1f}")}.

{markdown_table(rows, list(rows[0]))}

![early stopping, seed {first}](early_stopping.png)""",
            )
        )
        print(markdown_table(rows, list(rows[0])), flush=True)

    if history:
        run.write_history(history)
    else:
        run.write_text("history.csv", "model,epoch\n")
    metrics.setdefault("dataset", "synthetic polynomial data (seeded)")
    for k in ("n_train", "n_val", "n_test"):
        metrics.setdefault(k, 20 if k == "n_train" else (0 if k == "n_val" else 1000))
    run.write_json("config.json", vars(args))
    metrics["seconds"] = round(time.time() - t0, 2)
    run.write_json("metrics.json", metrics)
    body = "\n\n".join(f"## {title}\n\n{text}" for title, text in sections)
    run.write_text(
        "report.md",
        f"""# Regularization

- studies: {", ".join(f"{s} ({STUDIES[s]})" for s in studies)}; seeds {seeds} (mean ± std over seeds)
- backend: {info["backend"]} (Keras {info["keras_version"]}); {metrics["seconds"]} s

{body}
""",
    )
    print(f"wrote {run.dir}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
