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
    ("textgen-text-and-corpus", T, ["--text", "{one_document}", "--corpus", "imdb"], "give one"),
    ("textgen-input-ngrams-one", T, ["--input-ngrams", "1"], "--input-ngrams 1"),
    ("textgen-heads-not-dividing", T, ["--heads", "3"], "must divide --width"),
    ("textgen-context-1", T, ["--context", "1"], "--context"),
    ("textgen-context-0", T, ["--context", "0"], "--context"),
    ("textgen-models-unknown", T, ["--models", "gpt5"], "unknown model"),
    ("textgen-dropout-1", T, ["--dropout", "1"], "--dropout"),
    ("textgen-ngram-buckets-0", T, ["--ngram-buckets", "0"], "--ngram-buckets"),
    ("textgen-ngram-buckets-huge", T, ["--ngram-buckets", "5000000"], "--ngram-buckets 5000000"),
    ("textgen-weight-decay-negative", T, ["--weight-decay", "-0.1"], "--weight-decay"),
    ("textgen-weight-decay-huge", T, ["--weight-decay", "3"], "--weight-decay 3"),
    ("textgen-local-mixing-huge", T, ["--local-mixing", "65"], "--local-mixing 65"),
    ("textgen-activation-unknown", T, ["--activation", "swish"], "--activation"),
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

# several JAX processes (--distribute data-parallel --num-processes N): checked before any
# process tries to reach the coordinator, on whichever backend runs the table
C, DP = "keras_cases.churn", ["--quick", "--distribute", "data-parallel"]
COORD = ["--coordinator", "127.0.0.1:8476"]
ROWS += [
    ("multiprocess-process-id-too-big", C, [*DP, "--num-processes", "2", "--process-id", "2", *COORD], "0 to 1"),
    (
        "multiprocess-process-id-negative",
        C,
        [*DP, "--num-processes", "2", "--process-id", "-1", *COORD],
        "--process-id",
    ),
    ("multiprocess-num-processes-0", C, [*DP, "--num-processes", "0"], "--num-processes"),
    ("multiprocess-no-process-id", C, [*DP, "--num-processes", "2", *COORD], "needs --process-id"),
    ("multiprocess-no-coordinator", C, [*DP, "--num-processes", "2", "--process-id", "0"], "needs --coordinator"),
    (
        "multiprocess-coordinator-no-port",
        C,
        [*DP, "--num-processes", "2", "--process-id", "0", "--coordinator", "localhost"],
        "host:port",
    ),
    (
        "multiprocess-coordinator-port-too-big",
        C,
        [*DP, "--num-processes", "2", "--process-id", "0", "--coordinator", "10.0.0.1:70000"],
        "port from 1 to 65535",
    ),
    (
        "multiprocess-coordinator-addresses-count",
        C,
        [*DP, "--num-processes", "3", "--process-id", "0", "--coordinator", "10.0.0.1:1234,10.0.0.2:1234"],
        "2 addresses for 3 processes",
    ),
    (
        "multiprocess-without-distribute",
        C,
        ["--quick", "--num-processes", "2", "--process-id", "0", *COORD],
        "--distribute",
    ),
    ("multiprocess-coordinator-alone", C, [*DP, *COORD], "--num-processes"),
    (
        "multiprocess-resume",
        C,
        [*DP, "--resume", "{earlier}", "--num-processes", "2", "--process-id", "0", *COORD],
        "--resume",
    ),
]
