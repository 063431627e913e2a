"""The change-point study's own matplotlib figures (plots.py has no band plot)."""

from __future__ import annotations

import numpy as np

from keras_cases import plots
from keras_cases.sequences.data import ChangePoints


def plot_detection(curves: dict, path, titles):
    """One panel per data set: mean detection probability ± std against time relative to
    the change, one band per model. (A local figure: plots.py has no band plot.)"""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(titles), figsize=(5.5 * len(titles), 3.8), squeeze=False)
    for ax, title in zip(axes[0], titles):
        for i, (name, per_set) in enumerate(curves.items()):
            k, m, s = per_set[title]
            ax.plot(k, m, color=f"C{i}", label=name)
            ax.fill_between(k, np.clip(m - s, 0, 1), np.clip(m + s, 0, 1), color=f"C{i}", alpha=0.2)
        ax.axvline(0, color="k", ls=":", lw=1)
        ax.axhline(0.5, color="grey", ls="--", lw=0.8)
        ax.set(
            xlabel="steps relative to the change (0 = first shifted step)",
            ylabel="P(change so far)",
            ylim=(-0.02, 1.02),
            title=title,
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    return plots._save(fig, path)


def plot_examples(d: ChangePoints, preds: dict, path):
    """Three test sequences, each model's detection probability over time against the label:
    a small and a large shift (changes in the middle third), and a sequence without a change."""
    import matplotlib.pyplot as plt

    length = d.y.shape[1]
    mid = np.flatnonzero((d.change >= length // 3) & (d.change < 2 * length // 3))
    mid = mid if len(mid) >= 2 else np.flatnonzero(d.has_change)
    size = np.abs(d.shift).sum(1)
    order = mid[np.argsort(size[mid], kind="stable")]
    picks = [order[len(order) // 4], order[-1 - len(order) // 10]]
    picks += list(np.flatnonzero(~d.has_change)[:1])
    fig, axes = plt.subplots(len(picks), 1, figsize=(8, 2.2 * len(picks)), sharex=True, squeeze=False)
    for ax, i in zip(axes[:, 0], picks):
        ax.step(np.arange(length), d.y[i], where="post", color="k", lw=1, label="label")
        for j, (name, p) in enumerate(preds.items()):
            ax.plot(p[i], color=f"C{j}", label=name)
        title = (
            f"change at {d.change[i]}, |shift| summed over the 5 dims = {size[i]:.2f}"
            if d.change[i] >= 0
            else "no change"
        )
        ax.set(ylabel="P(change)", ylim=(-0.05, 1.05), title=title)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, ncol=3)
    axes[-1, 0].set_xlabel("time step")
    return plots._save(fig, path)
