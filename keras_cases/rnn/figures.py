"""Figures of the RNN case study (matplotlib, Agg): one function per figure, each writes
its file and returns the path."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLORS = {"SimpleRNN": "C3", "LSTM": "C0", "GRU": "C2"}


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def hidden_gradients(panels: dict, marks: dict, path, title=""):
    """One panel per stage ("at initialisation", "after training"): for each model name, the
    mean ||dL/dh_t|| over time steps t on a log axis. `marks` maps a label to a time step
    drawn as a vertical line (the symbol the last output copies, the delimiter)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False, sharey=True)
    for ax, (stage, curves) in zip(axes[0], panels.items()):
        for i, (name, g) in enumerate(curves.items()):
            base = name.split(" ")[0]
            ax.plot(
                np.arange(len(g)),
                np.maximum(g, 1e-30),
                color=COLORS.get(base, f"C{i + 4}"),
                ls="--" if name != base else "-",
                lw=1.6,
                label=name,
            )
        for j, (label, t) in enumerate(marks.items()):
            ax.axvline(t, color="grey", ls=":" if j else "-.", lw=1)
            ax.text(
                t, 1.02, label, transform=ax.get_xaxis_transform(), fontsize=7, ha="center", va="bottom", color="grey"
            )
        ax.set_yscale("log")
        ax.set(xlabel="time step t", title=stage)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower right")
    axes[0, 0].set_ylabel("mean ||dL/dh_t||  (L: loss of the last output)")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def spectral_radius(curves: dict, path):
    """One panel per model kind; one line per label (e.g. copy-task length): the spectral
    radius of the recurrent matrix at epoch 0 (initial) and after each epoch."""
    kinds = list(curves)
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.6), squeeze=False, sharey=True)
    for ax, kind in zip(axes[0], kinds):
        for i, (label, r) in enumerate(curves[kind].items()):
            ax.plot(np.arange(len(r)), r, marker="o", ms=3, color=f"C{i}", label=label)
        ax.axhline(1.0, color="k", ls=":", lw=1)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set(xlabel="epoch", title=kind)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0, 0].set_ylabel("spectral radius of the recurrent matrix")
    return _save(fig, path)


def series_examples(x, y, names, path, per_class=3):
    """A few standardized series of each class, one panel per class."""
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 2.8), squeeze=False, sharey=True)
    for c, (ax, name) in enumerate(zip(axes[0], names)):
        for k, i in enumerate(np.flatnonzero(y == c)[:per_class]):
            ax.plot(x[i, :, 0], lw=1.1, color=f"C{k}")
        ax.set(title=name, xlabel="time step")
        ax.grid(alpha=0.3)
    return _save(fig, path)
