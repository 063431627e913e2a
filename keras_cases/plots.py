"""Matplotlib figures (Agg backend), one function per figure kind. Each writes a PNG and
returns its path."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn import metrics as skm  # noqa: E402


def _save(fig, path):
    from keras_cases.runs import atomic

    fig.tight_layout()
    with atomic(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def learning_curves(histories: dict, path, metrics=("loss", "auc")):
    """One panel per metric; train solid, validation dashed, one colour per model."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for i, (name, h) in enumerate(histories.items()):
            color = f"C{i}"
            if m in h:
                ax.plot(np.arange(1, len(h[m]) + 1), h[m], color=color, label=f"{name} train")
            if f"val_{m}" in h:
                ax.plot(np.arange(1, len(h[f"val_{m}"]) + 1), h[f"val_{m}"], "--", color=color, label=f"{name} val")
        ax.set_xlabel("epoch")
        ax.set_ylabel(m)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def roc_pr(curves: dict, path, title=""):
    """ROC and precision-recall curves; each model's operating point (its threshold) is marked.

    `curves` maps a model name to (y_true, scores, threshold).
    """
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    for i, (name, (y, p, t)) in enumerate(curves.items()):
        y, p = np.asarray(y).ravel(), np.asarray(p).ravel()
        fpr, tpr, _ = skm.roc_curve(y, p)
        prec, rec, _ = skm.precision_recall_curve(y, p)
        pred = p >= t
        tp, fp = np.sum(pred & (y == 1)), np.sum(pred & (y == 0))
        r, f = tp / max(y.sum(), 1), fp / max((y == 0).sum(), 1)
        pr = tp / max(pred.sum(), 1)
        auc = skm.roc_auc_score(y, p)
        ap = skm.average_precision_score(y, p)
        a1.plot(fpr, tpr, color=f"C{i}", label=f"{name} (AUC {auc:.3f})")
        a1.plot([f], [r], "o", color=f"C{i}", ms=7, mec="k")
        a2.plot(rec, prec, color=f"C{i}", label=f"{name} (AP {ap:.3f})")
        a2.plot([r], [pr], "o", color=f"C{i}", ms=7, mec="k", label=f"t={t:.2f}")
    a1.plot([0, 1], [0, 1], ":", color="gray")
    a1.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title=f"ROC {title}")
    a2.set(xlabel="recall", ylabel="precision", title=f"Precision-recall {title}")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    return _save(fig, path)


def threshold_sweep(sweep: dict, chosen: float, path, title=""):
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for key in ("precision", "recall", "f1"):
        ax.plot(sweep["threshold"], sweep[key], label=key)
    ax.axvline(chosen, color="k", ls="--", label=f"chosen {chosen:.3f}")
    ax.set(xlabel="threshold", ylabel="value", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def confusion_matrices(cms: dict, path, labels=("0", "1")):
    side = max(3.6, 0.55 * len(labels) + 1.5)
    fig, axes = plt.subplots(1, len(cms), figsize=(side * len(cms), side * 0.95), squeeze=False)
    for ax, (name, cm) in zip(axes[0], cms.items()):
        cm = np.asarray(cm)
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(
                j,
                i,
                str(v),
                ha="center",
                va="center",
                color="white" if v > cm.max() / 2 else "black",
                fontsize=12 if len(labels) <= 4 else 7,
            )
        ax.set_xticks(
            range(len(labels)),
            labels,
            rotation=45 if len(labels) > 4 else 0,
            ha="right" if len(labels) > 4 else "center",
        )
        ax.set_yticks(range(len(labels)), labels)
        ax.set(xlabel="predicted", ylabel="true", title=name)
    return _save(fig, path)


def rate_by_category(frame, target, columns, path, ylabel="positive rate"):
    """Bar charts of the mean of a 0/1 target per category, one panel per column."""
    columns = [c for c in columns if c in frame.columns]
    n = max(len(columns), 1)
    cols = min(n, 2)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.4 * rows), squeeze=False)
    overall = float(np.mean(target))
    for ax, c in zip(axes.ravel(), columns):
        g = frame.assign(_y=np.asarray(target)).groupby(c, observed=True)["_y"].agg(["mean", "size"])
        ax.bar([str(i) for i in g.index], g["mean"], color="C3")
        for k, (m, s) in enumerate(zip(g["mean"], g["size"])):
            ax.text(k, m, f"{m:.0%}\nn={s}", ha="center", va="bottom", fontsize=7)
        ax.axhline(overall, color="k", ls=":", label=f"overall {overall:.1%}")
        ax.set(title=c, ylabel=ylabel, ylim=(0, min(1, g["mean"].max() * 1.35 + 0.02)))
        ax.tick_params(axis="x", labelrotation=15, labelsize=8)
        ax.legend(fontsize=8)
    for ax in axes.ravel()[len(columns) :]:
        ax.axis("off")
    return _save(fig, path)


def lines_with_errors(series: dict, path, xlabel, ylabel, title="", logx=False):
    """One line per name from `series[name] = (x, mean, std)`: markers, error bars, and the
    x values as ticks when they are few and shared."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (name, (x, m, s)) in enumerate(series.items()):
        ax.errorbar(x, m, yerr=s, marker="o", ms=5, capsize=3, color=f"C{i}", label=name)
    if logx:
        ax.set_xscale("log")
    else:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def heatmap(values, row_labels, col_labels, path, title="", text=None, cmap="viridis"):
    """A matrix as coloured cells, each annotated with `text[i][j]` (default: the value)."""
    values = np.asarray(values, dtype="float64")
    fig, ax = plt.subplots(figsize=(1.5 * len(col_labels) + 2, 0.7 * len(row_labels) + 1.5))
    im = ax.imshow(values, cmap=cmap, aspect="auto")
    lo, hi = np.nanmin(values), np.nanmax(values)
    for (i, j), v in np.ndenumerate(values):
        label = text[i][j] if text is not None else f"{v:.3f}"
        dark = hi > lo and (v - lo) / (hi - lo) < 0.5
        ax.text(j, i, label, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(len(col_labels)), col_labels)
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def pareto(groups: dict, path, xlabel, ylabel, title="", vline=None, rejected=(), logx=False):
    """Scatter of (x, y) points per group, the Pareto front over all of them (best y at or
    below each x) as a step line, an optional vertical line (a budget), and `rejected` x
    values (e.g. configurations never trained) as a rug along the bottom."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    xs, ys = [], []
    for i, (name, (x, y)) in enumerate(groups.items()):
        ax.scatter(x, y, s=28, color=f"C{i}", label=name, zorder=3)
        xs += list(x)
        ys += list(y)
    if xs:
        order = np.argsort(xs, kind="stable")
        fx, fy, best = [], [], -np.inf
        for j in order:
            if ys[j] > best:
                best = ys[j]
                fx.append(xs[j])
                fy.append(ys[j])
        ax.step(fx, fy, where="post", color="k", lw=1, label="Pareto front")
    if len(rejected):
        ax.plot(
            rejected,
            np.zeros(len(rejected)),
            "|",
            color="gray",
            ms=12,
            transform=ax.get_xaxis_transform(),
            label=f"rejected ({len(rejected)})",
        )
    if vline is not None:
        ax.axvline(vline, color="C3", ls="--", label=f"budget {vline:,}")
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def image_grid(images, path, title="", ncols=10, row_labels=None, captions=None):
    """A grid of images (n, h, w) or (n, h, w, c) with values in [0, 1]; optional
    `captions` (one short string per image) above each."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * 0.9, nrows * (1.05 if captions else 0.9) + (0.4 if title else 0)), squeeze=False
    )
    for i, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
        if i < n:
            ax.imshow(np.clip(images[i], 0, 1), cmap="gray" if images.ndim == 3 else None, vmin=0, vmax=1)
            if captions is not None and i < len(captions):
                ax.set_title(captions[i], fontsize=6, pad=2)
        if row_labels is not None and i % ncols == 0 and i // ncols < len(row_labels):
            ax.set_ylabel(row_labels[i // ncols], fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def latent_scatter(z, labels, path, title=""):
    fig, ax = plt.subplots(figsize=(5.5, 5))
    sc = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=4, alpha=0.7)
    fig.colorbar(sc, ax=ax, ticks=range(int(np.max(labels)) + 1))
    ax.set(xlabel="z[0]", ylabel="z[1]", title=title)
    return _save(fig, path)


def forecast_windows(windows, path, ylabel="value"):
    """One panel per forecast window `(times, observed, {model: forecast}[, title])`: the
    observed series (history and truth) in black, each model's forecast over the last
    len(forecast) steps in colour."""
    fig, axes = plt.subplots(len(windows), 1, figsize=(9, 2.6 * len(windows)), squeeze=False)
    for ax, (times, observed, forecasts, *title) in zip(axes[:, 0], windows):
        if title:
            ax.set_title(title[0], fontsize=9)
        ax.plot(times, observed, color="black", lw=1.4, label="observed")
        for i, (name, f) in enumerate(forecasts.items()):
            ax.plot(times[len(times) - len(f) :], f, color=f"C{i}", lw=1.1, label=name)
        ax.axvline(times[len(times) - len(next(iter(forecasts.values())))], color="grey", ls=":", lw=1)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, ncol=len(windows[0][2]) + 1)
    return _save(fig, path)


def fitted_curves(x_grid, truth, x_train, y_train, fits: dict, path, title="", ylim=None):
    """Training points, the true function, and one fitted curve per model name."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.scatter(x_train, y_train, s=18, color="black", zorder=3, label="training points")
    ax.plot(x_grid, truth, color="grey", ls="--", label="true function")
    for i, (name, f) in enumerate(fits.items()):
        ax.plot(x_grid, f, color=f"C{i}", label=name)
    lo, hi = np.min(truth), np.max(truth)
    ax.set_ylim(ylim or (lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo)))
    ax.set(xlabel="x", ylabel="y", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def log_curves(x, curves: dict, path, xlabel, ylabel, title=""):
    """Named curves over a shared x on a log y axis (e.g. bias^2 / variance / total)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (name, y) in enumerate(curves.items()):
        ax.plot(x, y, marker="o", ms=4, color=f"C{i}", label=name)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)


def accuracy_vs_time(h: dict, path, levels=(0.80, 0.85)):
    """Train and validation accuracy against epoch and against wall-clock seconds, with
    horizontal lines at the target levels."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = np.arange(1, len(h["accuracy"]) + 1)
    for ax, x, label in ((a1, epochs, "epoch"), (a2, np.asarray(h["wall_seconds"]) / 60, "wall-clock minutes")):
        ax.plot(x, h["accuracy"], "o-", ms=3, label="train (augmented)")
        ax.plot(x, h["val_accuracy"], "o-", ms=3, label="validation")
        for lv in levels:
            ax.axhline(lv, ls=":", color="gray")
        ax.set(xlabel=label, ylabel="accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def ablation_bars(rows: list[dict], path, title=""):
    """Horizontal bars: validation accuracy of each variant (error bar = std over seeds)."""
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    acc = [r["val_accuracy"] for r in rows]
    ax.barh(y, acc, xerr=[r.get("std", 0.0) for r in rows], color=["C2"] + ["C0"] * (len(rows) - 1))
    ax.set_yticks(y, [r["variant"] for r in rows], fontsize=8)
    ax.axvline(acc[0], ls=":", color="gray")
    lo = min(acc)
    ax.set_xlim(max(0.0, lo - 0.1), min(1.0, max(acc) + 0.05))
    ax.set(xlabel="validation accuracy", title=title)
    ax.title.set_fontsize(9)
    return _save(fig, path)


def per_fold(scores: dict, path, metric: str, title: str = ""):
    """Paired scores: one thin line per fold across the models, the means as dots."""
    names = list(scores)
    values = np.asarray([scores[n] for n in names], dtype="float64")  # models x folds
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2.5, 3.8))
    x = np.arange(len(names))
    for j in range(values.shape[1]):
        ax.plot(x, values[:, j], color="0.6", lw=0.8, alpha=0.8, marker=".", ms=3)
    ax.plot(x, values.mean(axis=1), "o", color="C3", ms=8, label="mean over folds", zorder=3)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} per held-out fold (one line per fold)")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def accuracy_vs_time_overlay(histories: dict, path, budget_s=None, title=""):
    """Several trainings in one plot: validation accuracy (solid) and augmented training
    accuracy (dashed) against wall-clock minutes, one colour per {label: history} (each
    history has "accuracy", "val_accuracy", "wall_seconds"); a line at the budget."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (label, h) in enumerate(histories.items()):
        t = np.asarray(h["wall_seconds"], dtype="float64") / 60
        ax.plot(t, h["val_accuracy"], "o-", ms=3, color=f"C{i}", label=f"{label}: validation")
        ax.plot(t, h["accuracy"], "--", lw=1, color=f"C{i}", alpha=0.7, label=f"{label}: train (augmented)")
    if budget_s:
        ax.axvline(budget_s / 60, ls=":", color="gray", label="budget")
    ax.set(xlabel="wall-clock minutes", ylabel="accuracy", title=title or "accuracy against wall-clock time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def attention_overlays(images, maps: dict, path, title="", captions=None):
    """One column per image (n, h, w, c) in [0, 1]: the image, then each attention map
    {label: (n, gh, gw)} upsampled (nearest) and laid over it, one row per label."""
    images = np.asarray(images)
    n, h, w = images.shape[:3]
    rows = 1 + len(maps)
    fig, axes = plt.subplots(rows, n, figsize=(1.3 * n + 0.8, 1.35 * rows + 0.5), squeeze=False)
    for j in range(n):
        for i, (label, m) in enumerate([("image", None), *maps.items()]):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.imshow(np.clip(images[j], 0, 1), alpha=1.0 if m is None else 0.55)
            if m is not None:
                ax.imshow(m[j], cmap="inferno", alpha=0.6, extent=(-0.5, w - 0.5, h - 0.5, -0.5))
            if j == 0:
                ax.set_ylabel(label, fontsize=7)
            if i == 0 and captions is not None:
                ax.set_title(captions[j], fontsize=6, pad=2)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def _blank(ax):
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def gradcam_overlays(groups: dict, path, title="", ncols=8):
    """Grad-CAM explanations, two rows per group {label: (images (n, h, w, c) in [0, 1], maps
    (n, h, w) in [0, 1], true class names, predicted captions)}: the images with their true
    class, then each map laid over its image with the prediction (red unless the caption
    starts with the true class and a space). Returns the path."""
    rows = 2 * len(groups)
    fig, axes = plt.subplots(rows, ncols, figsize=(1.25 * ncols + 0.9, 1.4 * rows + 0.5), squeeze=False)
    for g, (label, (imgs, maps, true, pred)) in enumerate(groups.items()):
        imgs = np.asarray(imgs)
        for j in range(ncols):
            top, bottom = axes[2 * g, j], axes[2 * g + 1, j]
            _blank(top)
            _blank(bottom)
            if j >= len(imgs):
                continue
            im = np.clip(imgs[j][..., 0] if imgs.shape[-1] == 1 else imgs[j], 0, 1)
            cmap = "gray" if im.ndim == 2 else None
            top.imshow(im, cmap=cmap, vmin=0, vmax=1)
            top.set_title(f"true: {true[j]}", fontsize=6, pad=2)
            bottom.imshow(im, cmap=cmap, vmin=0, vmax=1)
            bottom.imshow(maps[j], cmap="jet", alpha=0.4, vmin=0, vmax=1)
            ok = pred[j].startswith(f"{true[j]} ")
            bottom.set_title(f"pred: {pred[j]}", fontsize=6, pad=2, color="black" if ok else "red")
        axes[2 * g, 0].set_ylabel(f"{label}\nimage", fontsize=7)
        axes[2 * g + 1, 0].set_ylabel("Grad-CAM", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def _convolutions(model):
    """The convolution layers of `model` in order, nested models (backbones) included."""
    import keras

    kinds = tuple(getattr(keras.layers, k) for k in ("Conv1D", "Conv2D", "SeparableConv2D", "DepthwiseConv2D"))
    found = []
    for layer in model.layers:
        if isinstance(layer, kinds):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found += _convolutions(layer)
    return found


def conv_filters(model, path, title="", limit=64) -> int:
    """The first convolution's filters, each scaled to [0, 1] on its own: 2-D kernels as RGB
    (3 input channels) or grey (the mean over the input channels otherwise), 1-D kernels as
    lines (one per input channel). At most `limit` filters; returns how many are shown.
    UserError when the model has no convolution."""
    from keras_cases import UserError

    convs = _convolutions(model)
    if not convs:
        raise UserError(f"the model {model.name!r} has no convolution layer: it has no filters to show")
    layer = convs[0]
    k = np.asarray(layer.get_weights()[0], "float64")  # (kh, kw, cin, cout) or (k, cin, cout)
    n = min(k.shape[-1], limit)
    ncols = min(n, 8 if k.ndim == 3 else 12)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.9 * ncols + 0.3, 0.95 * nrows + 0.5), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        _blank(ax)
        if i >= n:
            continue
        f = k[..., i]
        if k.ndim == 3:
            ax.plot(f / max(np.abs(f).max(), 1e-12), lw=1)
            ax.set_ylim(-1.1, 1.1)
            continue
        f = f if f.shape[-1] == 3 else f.mean(-1)
        f = (f - f.min()) / max(f.max() - f.min(), 1e-12)
        ax.imshow(f, cmap=None if f.ndim == 3 else "gray", vmin=0, vmax=1, interpolation="nearest")
    what = f"{layer.name}: {n} of {k.shape[-1]} filters, {'x'.join(map(str, k.shape[:-2]))}, each scaled on its own"
    fig.suptitle(title or what, fontsize=8)
    _save(fig, path)
    return n


def feature_maps(model, image, layers, path, title="", channels=8) -> int:
    """The activations of one example (no batch axis) after each layer in `layers` (names):
    2-D maps as a row per layer of its `channels` most active channels (each scaled on its
    own), 1-D maps as one (channels x positions) panel per layer; the input first. Returns
    the number of panels drawn. UserError for no layers or a layer that is not a map."""
    import keras

    from keras_cases import UserError

    if not layers:
        raise UserError(f"the model {model.name!r} has no convolution blocks: no feature maps to show")
    outs = keras.Model(model.inputs, [model.get_layer(n).output for n in layers]).predict(
        np.asarray(image)[None], verbose=0
    )  # predict: one compiled call, faster than an eager one (JAX compiles each eager op)
    # float32: under a mixed-precision policy the activations are bfloat16 or float16, which
    # matplotlib cannot scale
    maps = [np.asarray(o, "float32")[0] for o in (outs if isinstance(outs, list) else [outs])]
    if any(m.ndim not in (2, 3) for m in maps):
        raise UserError(f"feature maps: the layers {layers} do not all give 1-D or 2-D maps")
    x = np.asarray(image, "float64")
    one_d = maps[0].ndim == 2
    ncols, nrows = (1 if one_d else channels), 1 + len(maps)
    size = (7, 1.3 * nrows + 0.4) if one_d else (1.05 * ncols, 1.15 * nrows + 0.4)
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False)
    for ax in axes.ravel():
        _blank(ax)
    if one_d:
        axes[0, 0].plot(x.reshape(len(x), -1))
    else:
        x = (x - x.min()) / max(x.max() - x.min(), 1e-12)
        axes[0, 0].imshow(x[..., 0] if x.shape[-1] == 1 else x, cmap="gray" if x.shape[-1] == 1 else None)
    axes[0, 0].set_ylabel("input", fontsize=7)
    panels = 1
    for r, (name, m) in enumerate(zip(layers, maps), start=1):
        axes[r, 0].set_ylabel(f"{name}\n{'x'.join(map(str, m.shape))}", fontsize=6)
        if one_d:
            axes[r, 0].imshow(m.T, aspect="auto", cmap="viridis", interpolation="nearest")
            panels += 1
            continue
        for j, c in enumerate(np.argsort(-m.mean(axis=(0, 1)))[:channels]):
            a = m[..., c]
            axes[r, j].imshow((a - a.min()) / max(a.max() - a.min(), 1e-12), cmap="viridis", vmin=0, vmax=1)
            axes[r, j].set_title(f"ch {c}", fontsize=5, pad=1)
            panels += 1
    fig.suptitle(title or "feature maps of one test image after each block", fontsize=8)
    _save(fig, path)
    return panels


def attribution_bars(panels: list[dict], path, title="", ncols=3):
    """Horizontal bar charts in a grid, one per panel dict: `title`, `names`, `values`, and
    optionally `errors` (error bars; the bars are then grey) and `xlabel`. Without errors a bar
    is red when it pushes towards the explained class and blue when away; the first name is
    drawn at the top."""
    n = max(len(panels), 1)
    cols = min(n, ncols)
    rows = int(np.ceil(n / cols))
    height = max(3.0, 0.26 * max((len(p["names"]) for p in panels), default=1) + 1.3)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, height * rows), squeeze=False)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    for ax, p in zip(axes.ravel(), panels):
        values = np.asarray(p["values"], "float64")
        pos = np.arange(len(values))[::-1]
        errors = p.get("errors")
        colors = ["0.55"] * len(values) if errors is not None else ["C3" if v > 0 else "C0" for v in values]
        ax.barh(pos, values, xerr=errors, color=colors, capsize=2 if errors is not None else 0)
        ax.set_yticks(pos, [str(s) for s in p["names"]], fontsize=8)
        ax.axvline(0, color="k", lw=0.8)
        ax.set(title=p.get("title", ""), xlabel=p.get("xlabel", ""))
        ax.title.set_fontsize(9)
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def token_highlights(rows: list[dict], path, title="", width_px=900, max_tokens=80):
    """Texts as rows of token boxes coloured by attribution: red pushes towards the explained
    class, blue away, the shade scaled to the largest |attribution| of that text. Each row dict:
    `caption` (a line above the tokens) and `tokens` [(token, attribution), ...]; texts longer
    than `max_tokens` tokens are cut with an ellipsis."""
    from matplotlib import colormaps

    cmap, dpi, line_px, pad = colormaps["RdBu_r"], 110, 22, 4
    layout, y = [], 12 if title else 0  # (kind, x, y, text, colour): boxes laid out in pixels first
    fig = plt.figure(figsize=(width_px / dpi, 4), dpi=dpi)
    renderer = fig.canvas.get_renderer()

    def text_px(s, **kw):
        t = fig.text(0, 0, s, fontsize=9, **kw)
        w = t.get_window_extent(renderer).width
        t.remove()
        return w

    for row in rows:
        y += line_px + 4
        layout.append(("caption", 8, y, str(row["caption"])[: width_px // 7], None))
        toks = list(row["tokens"])
        scale = max([abs(a) for _, a in toks] + [1e-12])
        shown = toks[:max_tokens] + ([("…", 0.0)] if len(toks) > max_tokens else [])
        x, y = 8, y + line_px
        for tok, a in shown:
            w = text_px(tok) + 2 * pad
            if x + w > width_px - 8 and x > 8:
                x, y = 8, y + line_px
            layout.append(("token", x, y, tok, float(a) / scale))
            x += w + 3
        y += 8
    height_px = y + line_px
    fig.set_size_inches(width_px / dpi, height_px / dpi)
    for kind, x, yy, s, share in layout:
        fy = 1 - yy / height_px
        if kind == "caption":
            fig.text(x / width_px, fy, s, fontsize=9, weight="bold", va="center")
        else:
            box = dict(boxstyle=f"square,pad={pad / 9:.2f}", facecolor=cmap(0.5 + 0.5 * share), edgecolor="0.8", lw=0.5)
            ink = "white" if abs(share) > 0.6 else "black"
            fig.text((x + pad) / width_px, fy, s, fontsize=9, va="center", color=ink, bbox=box)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 8 / height_px, va="top")
    from keras_cases.runs import atomic

    with atomic(path) as tmp:  # no tight_layout: the boxes are placed in pixels
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    return path


def curves_and_differences(x, curves: dict, diffs: dict, path, xlabel, ylabel, diff_label, logx=True):
    """Left: `curves` {name: (means, stds)} against x, mean ± std; right: `diffs`
    {name: (diff, low, high)} with their intervals (None where there is no interval), beside
    a line at 0. Names shared by both panels keep their colour."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, (m, s)) in enumerate(curves.items()):
        solid = i % 4 >= 2  # the second half of the curves solid, the first dotted and hollow
        style = {"marker": "o" if solid else "s", "ls": "-" if solid else ":", "mfc": None if solid else "none"}
        ax.errorbar(x, m, yerr=s, capsize=3, color=f"C{i % 2}", label=name, **style)
    for i, (name, (d, low, high)) in enumerate(diffs.items()):
        d = np.asarray(d, dtype=float)
        low = np.array([np.nan if v is None else v for v in low], dtype=float)
        high = np.array([np.nan if v is None else v for v in high], dtype=float)
        xs = np.asarray(x, dtype=float) * (1.04 if i else 1 / 1.04)  # side by side
        bx.errorbar(xs, d, yerr=np.nan_to_num([d - low, high - d]), marker="o", capsize=3, color=f"C{i}", label=name)
    bx.axhline(0, color="k", lw=0.8)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{ylabel} (mean ± std over seeds)")
    bx.set(xlabel=xlabel, ylabel=diff_label, title="paired difference, 95% interval")
    for a in (ax, bx):
        if logx:
            a.set_xscale("log")
        a.set_xticks(list(x), [f"{n:,}" for n in x])
        a.minorticks_off()
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    return _save(fig, path)
