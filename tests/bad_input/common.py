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
    "textgen",
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


def _binary(ctx):
    p = ctx.tmp / "binary.txt"
    p.write_bytes(bytes(range(128, 256)) * 20)
    return p


def _one_document(ctx):
    p = ctx.tmp / "one.txt"
    p.write_text("just one document, no blank lines\n" * 50)
    return p


T = "keras_cases.textgen"
ROWS += [
    ("textgen-text-missing", T, ["--text", "no_such.txt"], "no such file"),
    ("textgen-text-binary", T, ["--text", "{binary}"], "not UTF-8"),
    ("textgen-text-one-document", T, ["--text", "{one_document}"], "distinct document"),
    ("textgen-heads-not-dividing", T, ["--heads", "3"], "must divide --width"),
    ("textgen-context-1", T, ["--context", "1"], "--context"),
    ("textgen-context-0", T, ["--context", "0"], "--context"),
    ("textgen-models-unknown", T, ["--models", "gpt5"], "unknown model"),
    ("textgen-dropout-1", T, ["--dropout", "1"], "--dropout"),
    ("textgen-sample-no-run", T, ["sample", "--run", "no_such_run"], "not found"),
    ("textgen-sample-not-a-textgen-run", T, ["sample", "--run", "{earlier}"], "not of textgen"),
    ("textgen-sample-top-p-0", T, ["sample", "--run", "x", "--top-p", "0"], "--top-p"),
    ("textgen-sample-length-huge", T, ["sample", "--run", "x", "--length", "100000"], "--length"),
    ("textgen-sample-temperature-negative", T, ["sample", "--run", "x", "--temperature", "-1"], "--temperature"),
]

BUILDERS = {
    "a_file": _file,
    "somebody_elses": _not_a_run,
    "earlier": _earlier_run,
    "binary": _binary,
    "one_document": _one_document,
}
