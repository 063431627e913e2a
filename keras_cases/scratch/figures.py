"""Figures of the from-scratch case study (matplotlib, Agg): one function per figure,
each writes its file and returns the path."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402

CMAP = "RdBu_r"


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _grid(x, steps=120, margin=0.4):
    lo, hi = x.min(axis=0) - margin, x.max(axis=0) + margin
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], steps), np.linspace(lo[1], hi[1], steps))
    return g0, g1, np.c_[g0.ravel(), g1.ravel()]


def _draw_boundary(ax, net, x, y, title):
    """P(class 1) as filled contours, the 0.5 contour in black, the points on top."""
    g0, g1, grid = _grid(x)
    p = net.predict(grid)[:, 0].reshape(g0.shape)
    ax.contourf(g0, g1, p, levels=np.linspace(0, 1, 11), cmap=CMAP, alpha=0.55)
    if p.min() < 0.5 < p.max():
        ax.contour(g0, g1, p, levels=[0.5], colors="k", linewidths=1.2)
    ax.scatter(x[:, 0], x[:, 1], c=np.ravel(y), cmap=CMAP, s=12, edgecolors="k", linewidths=0.3)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def decision_boundaries(panels: dict, path):
    """panels: {title: (network, x, y)}; one panel each, side by side."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), squeeze=False)
    for ax, (title, (net, x, y)) in zip(axes[0], panels.items()):
        _draw_boundary(ax, net, x, y, title)
    return _save(fig, path)


def loss_curves(groups: dict, path):
    """groups: {panel title: {run name: per-epoch training losses}}; log-scale loss."""
    fig, axes = plt.subplots(1, len(groups), figsize=(5.2 * len(groups), 3.8), squeeze=False)
    for ax, (title, runs) in zip(axes[0], groups.items()):
        for name, losses in runs.items():
            ax.plot(np.arange(1, len(losses) + 1), losses, label=name)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return _save(fig, path)


def training_animation(net, snapshots, x, y, path, fps=6):
    """A GIF of the decision boundary during training.

    snapshots: [(epoch, weights, loss, accuracy)]; `net` is redrawn with each weights
    and gets its own weights back at the end.
    """
    final = net.get_weights()
    fig, ax = plt.subplots(figsize=(4.2, 4.2))

    def frame(i):
        epoch, weights, loss, acc = snapshots[i]
        net.set_weights(weights)
        ax.clear()
        _draw_boundary(ax, net, x, y, f"epoch {epoch}: loss {loss:.3f}, accuracy {acc:.2f}")

    anim = FuncAnimation(fig, frame, frames=len(snapshots))
    anim.save(path, writer=PillowWriter(fps=fps), dpi=70)
    plt.close(fig)
    net.set_weights(final)
    return path


def gradient_check(errors: dict, path, threshold=1e-7):
    """errors: {column (finite differences, backend...): {case: max relative error}};
    horizontal log-scale bars per case, the pass threshold dashed."""
    columns = list(errors)
    cases = list(next(iter(errors.values())))
    fig, ax = plt.subplots(figsize=(8, 0.1 * len(cases) * (len(columns) + 1) + 1.5))
    height = 0.8 / len(columns)
    for j, col in enumerate(columns):
        values = [max(errors[col].get(c, np.nan), 1e-18) for c in cases]
        ax.barh(np.arange(len(cases)) + j * height, values, height, label=col)
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"pass < {threshold:g}")
    ax.set_xscale("log")
    ax.set_yticks(np.arange(len(cases)) + 0.4 - height / 2)
    ax.set_yticklabels(cases, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("max relative error of the hand-written gradients")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)
