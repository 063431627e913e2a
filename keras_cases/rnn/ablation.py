"""The gate ablation: the LSTM with one gate (forget, input or output) held open at 1, as a
custom Keras cell (keras.layers.RNN + cells.GatedLSTMCell), on the copy task."""

from __future__ import annotations

from keras_cases import plots
from keras_cases.evaluation import mean_std, pm
from keras_cases.rnn.training import TARGET, CopyRuns
from keras_cases.runs import markdown_table

GATES = ("none", "forget", "input", "output")  # LSTM gate held open in the ablation


def study_ablation(args, copies: CopyRuns, run, metrics: dict) -> tuple[str, str]:
    """The "Gate ablation" section, at --ablation-length."""
    La, seeds = args.ablation_length, copies.seeds
    rows = []
    gates = GATES[:2] if args.quick else GATES  # --quick: the forget gate only
    for gate in gates:
        og = None if gate == "none" else gate
        # no gate open: the custom cell is keras.layers.LSTM (same weights, same outputs:
        # tests/test_rnn.py), so the built-in layer's runs stand in for it
        rs = [copies.train(La, "lstm", s, og, custom=og is not None) for s in seeds]
        acc = [r["test_accuracy"] for r in rs]
        metrics[f"ablation_{gate}_test_accuracy"], metrics[f"ablation_{gate}_test_accuracy_std"] = mean_std(acc)
        metrics[f"ablation_{gate}_used_params"] = rs[0]["used_params"]
        rows.append(
            {
                "gate held open": gate,
                "test accuracy": pm(acc, "{:.3f}"),
                f"seeds ≥ {TARGET}": f"{sum(a >= TARGET for a in acc)}/{len(acc)}",
                "epochs": pm([r["epochs_run"] for r in rs], "{:.1f}"),
                "parameters used": f"{rs[0]['used_params']:,} of {rs[0]['params']:,}",
            }
        )
    plots.learning_curves(
        {
            f"{g} open" if g != "none" else "full LSTM": copies.history[
                f"copy{La}_lstm{'_custom_' + g + '_open' if g != 'none' else ''}_seed{seeds[0]}"
            ]
            for g in gates
        },
        run.path("ablation_curves.png"),
        metrics=("loss", "accuracy"),
    )
    table = markdown_table(rows, list(rows[0]))
    print(table, flush=True)
    metrics["ablation_length"] = La
    return (
        "Gate ablation",
        f"""The LSTM as a custom Keras cell (keras.layers.RNN +
cells.GatedLSTMCell, keras.ops only; identical to keras.layers.LSTM with no gate held open) on the copy task
at T = {La}, with one gate fixed at 1 ("none" is keras.layers.LSTM itself, which the custom cell matches
exactly with no gate open; the runs are shared with the comparison). The weights of an open gate stay in the layout but never reach the
output.

{table}

![ablation learning curves](ablation_curves.png)""",
    )
