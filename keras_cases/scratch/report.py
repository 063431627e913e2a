"""The case's report: the comparison table, the gradient-check tables and the sections."""

from __future__ import annotations

from keras_cases.runs import markdown_table
from keras_cases.scratch import worked_example
from keras_cases.scratch.checks import GRAD_PASS, OPT_PASS

ROW_COLUMNS = [
    "group",
    "hidden",
    "optimizer",
    "learning_rate",
    "train_loss",
    "train_accuracy",
    "test_accuracy",
    "epochs_to_97%",
]


def pd_csv(rows) -> str:
    import pandas as pd

    return pd.DataFrame(rows).to_csv(index=False)


def worked_example_rows(ok: dict) -> list[dict]:
    """The 2-2-1 example by the scratch code next to each backend's Keras, quantity by quantity."""
    rows = []
    for hidden in ("linear", "relu"):
        m = worked_example.one_step(hidden)
        theirs = {b: r["worked_example"][hidden] for b, r in ok.items()}
        for q, key in [("y_hat", "y_hat"), ("loss", "loss"), ("loss after 1 step", "loss_after")]:
            rows.append({"hidden": hidden, "quantity": q, "scratch": m[key], **{b: t[key] for b, t in theirs.items()}})
        for i in range(6):
            rows.append(
                {
                    "hidden": hidden,
                    "quantity": f"dL/dW{i + 1}",
                    "scratch": m["grads"][i],
                    **{b: t["grads"][i] for b, t in theirs.items()},
                }
            )
    return rows


def gradient_report(fd, keras_results, h="#") -> str:
    """The gradient-check tables; `h` is the markdown heading level of the title."""
    ok = {b: r for b, r in keras_results.items() if "error" not in r}
    failed = "".join(
        f"\n- {b}: the check did not run: {r['error']}\n" for b, r in keras_results.items() if "error" in r
    )
    grad_rows = [{"case": c, "finite differences": fd[c], **{b: r["gradients"][c] for b, r in ok.items()}} for c in fd]
    first = next(iter(ok.values()), None)
    opt_rows = [
        {"update rule": o, **{b: r["optimizers"][o] for b, r in ok.items()}}
        for o in (first["optimizers"] if first else [])
    ]
    backends = list(ok)
    differ = {b: d for b, r in ok.items() for d in r["optimizer_defaults"].values() if d}
    defaults = differ or "none"
    steps = first["optimizer_steps"] if first else "n"
    return f"""{h} Gradient check

Max relative error |a - n| / max(|a|, |n|, 1e-8) of the hand-written gradients, per
case: against centered finite differences (float64, h = 1e-5, parameters) and against
Keras' autodiff in float64 on each backend (loss, input and parameter gradients).
Pass: < {GRAD_PASS:g}.
{failed}
{markdown_table(grad_rows, ["case", "finite differences", *backends], fmt="{:.1e}")}

![gradient check](gradient_check.png)

{h}# Optimizers

Max |w_scratch - w_keras| after {steps} steps from the same weights with the same
gradients (float64). Pass: < {OPT_PASS:g}. Constructor defaults that differ from
keras.optimizers: {defaults}.

{markdown_table(opt_rows, ["update rule", *backends], fmt="{:.1e}")}

{h}# The worked 2-2-1 example

Inputs (2, 4), target 1, loss 1/2 (y - y_hat)^2, SGD with learning rate 0.05.

{markdown_table(worked_example_rows(ok), ["hidden", "quantity", "scratch", *backends], fmt="{:.10f}")}
"""


def notes(m) -> list[str]:
    """The case's lines of the report header."""
    return [
        f"models: a single neuron on the blobs; a {m['architecture']} network with {m['activation']} hidden\n"
        f"  units on the circles; {m['optimizer']} (learning rate {m['learning_rate']}), {m['epochs']} epochs, "
        f"batch size {m['batch_size']}\n  (full batch when >= the training set); each data set is split as above",
        f"gradients checked against Keras on: {m['checked_backends'] or 'none'}",
        "`model.keras`: the trained circles network as a float64 Keras model (`model.npz`: its NumPy weights)",
    ]


def sections(m, rows, fd, keras_results) -> list:
    results = f"""| model | test accuracy | test loss |
|---|---|---|
| single neuron, blobs | {m["blobs_test_accuracy"]:.4f} | {m["blobs_test_loss"]:.4f} |
| {m["architecture"]} {m["activation"]} net, circles | {m["circles_test_accuracy"]:.4f} | {m["circles_test_loss"]:.4f} |

![decision boundaries](decision_boundary.png)

Training, frame by frame: ![decision boundary during training](training.gif)

The trained network saved as a float64 Keras model (`model.keras`) predicts the test
points within {m["keras_export_max_abs_diff"]:.1e} of the NumPy network."""
    return [
        ("Results (test set)", results),
        (
            "Hidden units and optimizers (circles)",
            f"{markdown_table(rows, ROW_COLUMNS)}\n\n![loss curves](loss_curves.png)",
        ),
        gradient_report(fd, keras_results, h="##")
        + f"\n**Gradient check {'passed' if m['gradcheck_passed'] else 'FAILED'}.**",
    ]
