"""The vanishing-gradient study: ||dL/dh_t|| per time step on the copy task for SimpleRNN,
LSTM and GRU, at initialisation and after training, and the spectral radius of the
recurrent matrix over training."""

from __future__ import annotations

import numpy as np

from keras_cases.rnn import figures
from keras_cases.rnn.cells import hidden_state_gradients
from keras_cases.rnn.models import KINDS, LABELS, build_copy_model, init_model
from keras_cases.rnn.tasks import CopyTask
from keras_cases.rnn.training import CopyRuns
from keras_cases.runs import markdown_table


def probe_gradients(task: CopyTask, kind, units, x, y, weights=None, seed=0, gate_init="chrono"):
    """mean ||dL/dh_t|| per time step for `kind` with `weights` (a trained model's) or,
    without them, at the initialisation `seed` gives."""
    probe = build_copy_model(task, kind, units, probe=True)
    if weights is None:
        init_model(probe, seed, gate_init, task.steps)
    else:
        probe.set_weights(weights)
    return hidden_state_gradients(probe, x, y)


def log10_ratio(g, task: CopyTask) -> float:
    """log10 of ||dL/dh_t|| at the step that read the symbol the last output copies, over
    the same at the last step: how much of the gradient survives the trip back."""
    return float(np.log10(g[task.n_symbols - 1] / g[-1]))


def study_gradients(args, copies: CopyRuns, run, metrics: dict) -> tuple[str, str]:
    """The "Vanishing gradients" section: the gradient table and plot, the spectral radius."""
    L_max, seeds = max(copies.lengths), copies.seeds
    task = copies.tasks[L_max]
    grad_table = gradient_table(args, copies, run, metrics)
    radius_table = spectral_radius(copies, run, metrics)
    return (
        "Vanishing gradients",
        f"""L is the cross-entropy of the *last* output step (it must
copy the last symbol, read at step {task.n_symbols - 1}); the plot shows the mean over sequences of
||dL/dh_t|| for every earlier hidden state h_t, computed by adding a zero tensor eps_t to each h_t inside the
recurrence (cells.HiddenProbeCell) and differentiating with respect to eps (runtime.value_and_grad), so the
same code runs on every backend. (For the LSTM only h_t is perturbed, not the carry c_t; the gradient that
reaches h_t has come back mostly along c, scaled by the forget gate at every step.) The table gives log10 of ||dL/dh_t|| at the step that read that symbol over
its value at the last step: -8 means a hundred-millionth of the gradient survives the trip back.

{grad_table}

![hidden-state gradients](hidden_gradients.png)

Spectral radius (largest |eigenvalue|) of the recurrent matrix, seed {seeds[0]}: the whole matrix of the
SimpleRNN, the candidate block (the one that writes new content) of the LSTM and GRU. A radius above 1
does not make the gradient explode once the tanh units saturate (their derivative is then near 0):
for the SimpleRNN, the radius and the vanishing of ||dL/dh_t|| can grow together. At T = {L_max}:

{radius_table}

![spectral radius](spectral_radius.png)""",
    )


def gradient_table(args, copies: CopyRuns, run, metrics: dict) -> str:
    """log10 ratios at every length (at initialisation; trained at the longest, where the
    models of seed 0 are trained if the comparison has not), the per-step plot; the table."""
    L_max, seed, units, n = max(copies.lengths), copies.seeds[0], copies.sizes.units, copies.sizes.probe_examples
    rows, init_curves, trained_curves = [], {}, {}
    for L in copies.lengths:
        task = copies.tasks[L]
        d = copies.copy_data(L)
        x, y = d.x_val[:n], d.y_val[:n]
        row = {"T": L}
        for kind in KINDS:
            g = probe_gradients(task, kind, units, x, y, seed=seed, gate_init=args.gate_init)
            metrics[f"grad_log10_ratio_init_{kind}_T{L}"] = row[f"{LABELS[kind]} init"] = log10_ratio(g, task)
            if L == L_max:
                init_curves[LABELS[kind]] = metrics[f"hidden_grad_norms_init_{kind}"] = g
        if args.gate_init == "chrono":  # what Keras' default gate biases would give
            g = probe_gradients(task, "lstm", units, x, y, seed=seed, gate_init="keras")
            metrics[f"grad_log10_ratio_init_lstm_keras_bias_T{L}"] = row["LSTM init, Keras bias"] = log10_ratio(g, task)
            if L == L_max:
                init_curves["LSTM (Keras default gate bias)"] = metrics["hidden_grad_norms_init_lstm_keras_bias"] = g
        if L == L_max:
            for kind in KINDS:
                g = probe_gradients(task, kind, units, x, y, weights=copies.train(L, kind, seed)["weights"])
                trained_curves[LABELS[kind]] = g
                metrics[f"grad_log10_ratio_trained_{kind}_T{L}"] = row[f"{LABELS[kind]} trained"] = log10_ratio(g, task)
                metrics[f"hidden_grad_norms_trained_{kind}"] = g
        rows.append(row)
    task = copies.tasks[L_max]
    figures.hidden_gradients(
        {"at initialisation": init_curves, "after training": trained_curves},
        {"last symbol read": task.n_symbols - 1, "delimiter": task.delimiter_step},
        run.path("hidden_gradients.png"),
        f"copy task T = {L_max}: gradient of the last output's loss w.r.t. each hidden state "
        f"(mean over {n} sequences, seed {seed})",
    )
    table = markdown_table(rows, list(dict.fromkeys(k for r in rows for k in r)), fmt="{:.1f}")
    print(table, flush=True)
    return table


def spectral_radius(copies: CopyRuns, run, metrics: dict) -> str:
    """The recurrent matrix's spectral radius over training of seed 0's copy-task fits at
    every length trained (plot); metrics and the table at the longest length."""
    L_max, seed = max(copies.lengths), copies.seeds[0]
    curves, rows = {}, []
    for kind in KINDS:
        curves[LABELS[kind]] = {}
        for L in copies.lengths:
            key = (L, kind, None, False, seed)
            if key not in copies.runs:
                continue
            r = copies.runs[key]["radius"]
            curves[LABELS[kind]][f"T = {L}"] = r
            if L == L_max:
                metrics[f"radius_init_{kind}"], metrics[f"radius_final_{kind}"] = r[0], r[-1]
                rows.append(
                    {
                        "model": LABELS[kind],
                        "initial": f"{r[0]:.2f}",
                        "final": f"{r[-1]:.2f}",
                        "max": f"{max(r):.2f}",
                        "epochs": len(r) - 1,
                    }
                )
    figures.spectral_radius(curves, run.path("spectral_radius.png"))
    return markdown_table(rows, list(rows[0])) if rows else ""
