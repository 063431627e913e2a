"""Bad input shared by every command: backend, seeds, threads, run directories, outputs."""

import json

CASES = [
    "churn",
    "scratch",
    "spam",
    "sentiment",
    "architecture",
    "representation",
    "transfer",
    "cifar",
    "sequences",
    "rnn",
    "forecast",
    "regularization",
    "generative",
]


def _file(ctx):
    p = ctx.tmp / "a_file"
    p.write_text("not a directory\n")
    return p


def _not_a_run(ctx):
    d = ctx.tmp / "somebody_elses"
    d.mkdir()
    (d / "notes.txt").write_text("mine\n")
    return d


def _earlier_run(ctx):
    d = ctx.tmp / "earlier"
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"case": "churn", "status": "complete"}))
    (d / "metrics.json").write_text("{}")
    return d


ROWS = []
for case in CASES:
    m = f"keras_cases.{case}"
    ROWS += [
        (f"{case}-seed-negative", m, ["--seed", "-1"], "--seed"),
        (f"{case}-seed-2**32", m, ["--seed", str(2**32)], "--seed"),
        (f"{case}-threads-negative", m, ["--threads", "-1"], "--threads"),
        (f"{case}-out-is-a-file", m, ["--quick", "--out", "{a_file}"], "not a directory"),
        (f"{case}-out-not-a-run", m, ["--quick", "--out", "{somebody_elses}", "--overwrite"], "not a keras-cases run"),
        (f"{case}-out-holds-a-run", m, ["--quick", "--out", "{earlier}"], "--overwrite"),
    ]

BUILDERS = {"a_file": _file, "somebody_elses": _not_a_run, "earlier": _earlier_run}
