"""Study 2, summarise and query: a masked GRU reads a digit sequence into one vector, and a
query network answers from that vector alone whether q appeared (task a) or q followed by
q+1 did (task b)."""

from __future__ import annotations

import numpy as np

from keras_cases import plots, runtime
from keras_cases.evaluation import mean_std, pm
from keras_cases.runs import markdown_table
from keras_cases.sequences.data import MIN_LEN, PAD, TASKS, Columns, data_rng, query_data
from keras_cases.sequences.models import build_query_model, compile_once, fit


def query_sets(args, task: str) -> tuple:
    """(train, validation, test) queries of `task`, from distinct streams of --data-seed."""
    rng = lambda split: data_rng(args.data_seed, "query", split, list(TASKS).index(task))  # noqa: E731
    n = args.n_query
    return tuple(
        query_data(k, rng(split), task, max_len=args.max_len)
        for split, k in (("train", n), ("val", max(n // 4, 64)), ("test", max(n // 4, 64)))
    )


def query_scores(model, va, te, max_len: int) -> dict:
    """Validation and test accuracy at 0.5, and the test accuracy per sequence length."""
    acc = lambda d: (  # noqa: E731
        (np.asarray(model.predict(d.inputs, verbose=0, batch_size=512)).ravel() > 0.5) == (d.y > 0.5)
    )
    hit = acc(te)
    return {
        "val_accuracy": float(acc(va).mean()),
        "test_accuracy": float(hit.mean()),
        "by_length": [
            float(hit[te.lengths == L].mean()) if (te.lengths == L).any() else np.nan
            for L in range(MIN_LEN, max_len + 1)
        ],
    }


def train_task(model, fresh, task, sets, args, seeds, run, history, saved) -> list[dict]:
    """The query model trained on one task for every seed; the first seed's model is saved."""
    tr, va, te = sets
    res = []
    for s in seeds:
        print(f"--- query task {task} ({model.count_params():,} parameters), seed {s}", flush=True)
        name = f"query_{task}_seed{s}"
        history[name] = fit(model, fresh, Columns(**tr.inputs), tr.y, (va.inputs, va.y), args, s, name)
        scores = query_scores(model, va, te, args.max_len)
        res.append({**scores, "epochs": len(history[name]["loss"])})
        if s == seeds[0]:
            runtime.save_model(model, run.path(f"query_{task}.keras"))
            saved[f"query_{task}"] = (run.path(f"query_{task}.keras"), res[-1]["val_accuracy"])
    return res


def study_query(args, seeds, run, metrics, history, saved) -> str:
    """Both tasks on every seed: metrics, the accuracy-by-length plot, and the report section."""
    rows, by_length = [], {}
    model = build_query_model()  # one architecture: compiled once, re-drawn for every task and seed
    fresh = compile_once(model, args.lr)
    metrics["query_params"] = model.count_params()
    for task in TASKS:
        sets = query_sets(args, task)
        tr, te = sets[0], sets[2]
        rate = float(te.y.mean())
        metrics.update(
            {
                f"query_{task}_n_train": len(tr.y),
                f"query_{task}_n_test": len(te.y),
                f"query_{task}_label_rate": rate,
                f"query_{task}_majority": max(rate, 1 - rate),
            }
        )
        res = train_task(model, fresh, task, sets, args, seeds, run, history, saved)
        for k in ("val_accuracy", "test_accuracy", "epochs"):
            metrics[f"query_{task}_{k}"], metrics[f"query_{task}_{k}_std"] = mean_std([r[k] for r in res])
        by_length[f"task {task}"] = (
            np.arange(MIN_LEN, args.max_len + 1),
            *np.array([mean_std(v) for v in zip(*[r["by_length"] for r in res])]).T,
        )
        rows.append(
            {
                "task": f"{task}: {TASKS[task]}",
                "test label rate": f"{rate:.3f}",
                "majority baseline": f"{max(rate, 1 - rate):.4f}",
                "val accuracy": pm([r["val_accuracy"] for r in res]),
                "test accuracy": pm([r["test_accuracy"] for r in res]),
                "epochs": pm([r["epochs"] for r in res], "{:.1f}"),
            }
        )
    plots.lines_with_errors(
        by_length,
        run.path("query_by_length.png"),
        "sequence length (digits)",
        "test accuracy",
        "query accuracy by sequence length",
    )
    plots.learning_curves(
        {f"task {t}": history[f"query_{t}_seed{seeds[0]}"] for t in TASKS},
        run.path("query_curves.png"),
        metrics=("loss", "accuracy"),
    )
    table = markdown_table(rows, list(rows[0]))
    print(table, flush=True)
    return query_text(args, metrics, table, seeds[0])


def query_text(args, metrics: dict, table: str, seed: int) -> str:
    n = args.n_query
    return f"""Digit sequences of length {MIN_LEN}..{args.max_len} (uniform), digits stored as tokens 1..10 and
padded with token {PAD} after the end, so padding never looks like a digit; Embedding(mask_zero=True)
masks it, and a GRU(64) reads the digits alone into one summary vector. The query network embeds q,
concatenates it with the summary and answers through Dense(64) -> sigmoid ({metrics["query_params"]:,}
parameters; one model per task). {n:,} training, {max(n // 4, 64):,} validation and {max(n // 4, 64):,} test
queries per task, half of them positive by construction.

{table}

![accuracy by length](query_by_length.png)

![learning curves, seed {seed}](query_curves.png)"""
