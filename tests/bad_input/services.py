"""Bad input rows: serve, runs, export and the predict commands (see __init__.py).

Broken runs are copies of a finished churn or spam --quick run (ctx.run) with one file
damaged; runs that need no real model are faked with the few files the command reads."""

import json

from keras_cases import runtime

# the export format this process's backend can write (torch: onnx; jax / tensorflow: saved_model)
FMT = "onnx" if runtime.backend() == "torch" else "saved_model"


def _edit_json(path, **changes):
    d = json.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    path.write_text(json.dumps(d))


def _broken(case, name, damage):
    """A builder: a copy of a finished `case` run with `damage(run_dir)` applied."""

    def build(ctx):
        d = ctx.run(case, name)
        damage(d)
        return d

    return build


def _truncate(d, file="model.keras"):
    data = (d / file).read_bytes()
    (d / file).write_bytes(data[: len(data) // 3])


def _fake_run(ctx, name, record):
    d = ctx.tmp / name
    d.mkdir()
    (d / "run.json").write_text(json.dumps(record))
    (d / "metrics.json").write_text("{}")
    return d


def _file(ctx, name, content: bytes):
    p = ctx.tmp / name
    p.write_bytes(content)
    return p


def _churn_csv(ctx, name, change):
    """Twelve rows of the churn run's own training columns (from preprocessing.json), the
    last one changed."""
    pre = json.loads((ctx.run("churn", "churn_for_csv") / "preprocessing.json").read_text())
    row = {c: s["median"] for c, s in pre["numeric"].items()}
    row.update({c: cats[0] for c, cats in pre["categorical"].items()})
    bad = dict(row)
    change(bad)
    lines = [",".join(row)] + [",".join(str(r[c]) for c in row) for r in [row] * 11 + [bad]]
    return _file(ctx, name, ("\n".join(lines) + "\n").encode())


def _taken_folder(ctx):
    """A folder of the user's (not a run directory) that already holds a file."""
    d = ctx.tmp / "taken_folder"
    d.mkdir()
    (d / "mine.txt").write_text("x\n")
    return d


def _existing(ctx):
    return _file(ctx, "existing.csv", b"mine\n")


BUILDERS = {
    "nowhere": lambda ctx: ctx.tmp / "no_such_run",
    "plain_file": lambda ctx: _file(ctx, "plain_file", b"not a run\n"),
    "churn_ok": lambda ctx: ctx.run("churn", "churn_ok"),
    "spam_ok": lambda ctx: ctx.run("spam", "spam_ok"),
    "churn_model_truncated": _broken("churn", "model_truncated", _truncate),
    "churn_pre_corrupt": _broken(
        "churn", "pre_corrupt", lambda d: (d / "preprocessing.json").write_text('{"numeric": {')
    ),
    "churn_pre_no_numeric": _broken(
        "churn", "pre_no_numeric", lambda d: _edit_json(d / "preprocessing.json", numeric=None)
    ),
    "churn_pre_bad_std": _broken(
        "churn",
        "pre_bad_std",
        lambda d: _edit_json(d / "preprocessing.json", numeric={"tenure": {"median": 1, "mean": 1, "std": 0}}),
    ),
    "churn_decision_corrupt": _broken("churn", "decision_corrupt", lambda d: (d / "decision.json").write_text("{thr")),
    "churn_no_threshold": _broken("churn", "no_threshold", lambda d: _edit_json(d / "decision.json", threshold=None)),
    "churn_threshold_text": _broken(
        "churn", "threshold_text", lambda d: _edit_json(d / "decision.json", threshold="high")
    ),
    "churn_no_decision": _broken("churn", "no_decision", lambda d: (d / "decision.json").unlink()),
    "churn_run_json_corrupt": _broken("churn", "run_json_corrupt", lambda d: (d / "run.json").write_text("{")),
    "churn_no_case": _broken("churn", "no_case", lambda d: _edit_json(d / "run.json", case=None)),
    "churn_running": _broken("churn", "running", lambda d: _edit_json(d / "run.json", status="running")),
    "churn_failed": _broken(
        "churn", "failed", lambda d: _edit_json(d / "run.json", status="failed", error="ValueError: boom")
    ),
    "churn_metrics_missing": _broken("churn", "metrics_missing", lambda d: (d / "metrics.json").unlink()),
    "churn_as_spam": _broken("churn", "churn_as_spam", lambda d: _edit_json(d / "run.json", case="spam")),
    "churn_as_cifar": _broken("churn", "churn_as_cifar", lambda d: _edit_json(d / "run.json", case="cifar")),
    "churn_predictions_exist": _broken(
        "churn", "predictions_exist", lambda d: (d / "predictions.csv").write_text("mine\n")
    ),
    "churn_saved_model_exists": _broken("churn", "saved_model_exists", lambda d: (d / "saved_model").mkdir()),
    "churn_no_model": _broken("churn", "no_model", lambda d: (d / "model.keras").unlink()),
    "spam_vocab_corrupt": _broken("spam", "vocab_corrupt", lambda d: (d / "vocab.json").write_text("[1, 2")),
    "spam_vocab_no_tokens": _broken("spam", "vocab_no_tokens", lambda d: _edit_json(d / "vocab.json", tokens=None)),
    "spam_decision_no_thresholds": _broken(
        "spam", "no_thresholds", lambda d: _edit_json(d / "decision.json", thresholds=None)
    ),
    "spam_decision_no_labels": _broken("spam", "no_labels", lambda d: _edit_json(d / "decision.json", labels="spam")),
    "spam_model_truncated": _broken("spam", "spam_model_truncated", _truncate),
    "spam_as_sentiment": _broken("spam", "spam_as_sentiment", lambda d: _edit_json(d / "run.json", case="sentiment")),
    "unknown_case": lambda ctx: _fake_run(ctx, "unknown_case", {"case": "weather", "status": "complete"}),
    "module_case": lambda ctx: _fake_run(ctx, "module_case", {"case": "serve", "status": "complete"}),
    "rnn_run": lambda ctx: _fake_run(ctx, "rnn_run", {"case": "rnn", "status": "complete"}),
    "interrupted": lambda ctx: _fake_run(ctx, "interrupted", {"case": "churn", "status": "interrupted"}),
    "existing_csv": _existing,
    "missing_folder_csv": lambda ctx: ctx.tmp / "no_such_folder" / "out.csv",
    "missing_folder_export": lambda ctx: ctx.tmp / "no_such_folder" / "export",
    "csv_missing_columns": lambda ctx: _file(ctx, "few_columns.csv", b"tenure,contract\n5,Month-to-month\n"),
    "csv_non_numeric": lambda ctx: _churn_csv(ctx, "non_numeric.csv", lambda r: r.update(tenure="long")),
    "csv_infinite": lambda ctx: _churn_csv(ctx, "infinite.csv", lambda r: r.update(monthly_charges="inf")),
    "csv_empty": lambda ctx: _file(ctx, "empty.csv", b""),
    "csv_header_only": lambda ctx: _file(ctx, "header_only.csv", b"tenure,contract\n"),
    "latin1_texts": lambda ctx: _file(ctx, "latin1.txt", "caf\u00e9 au lait\nsee you\n".encode("latin-1")),
    "texts_folder": lambda ctx: ctx.tmp,
    "taken_folder": lambda ctx: _taken_folder(ctx),
}

ROWS = [
    # serve: broken or unfinished runs
    ("serve-run-missing", "keras_cases", ["serve", "--run", "{nowhere}"], "run directory not found"),
    ("serve-run-is-a-file", "keras_cases", ["serve", "--run", "{plain_file}"], "run directory not found"),
    ("serve-model-truncated", "keras_cases", ["serve", "--run", "{churn_model_truncated}"], "cannot be loaded"),
    ("serve-no-model", "keras_cases", ["serve", "--run", "{churn_no_model}"], "model.keras"),
    ("serve-preprocessing-corrupt", "keras_cases", ["serve", "--run", "{churn_pre_corrupt}"], "not valid json"),
    ("serve-preprocessing-no-numeric", "keras_cases", ["serve", "--run", "{churn_pre_no_numeric}"], '"numeric"'),
    ("serve-preprocessing-zero-std", "keras_cases", ["serve", "--run", "{churn_pre_bad_std}"], 'non-zero "std"'),
    ("serve-decision-corrupt", "keras_cases", ["serve", "--run", "{churn_decision_corrupt}"], "decision.json"),
    ("serve-decision-no-threshold", "keras_cases", ["serve", "--run", "{churn_no_threshold}"], "threshold"),
    ("serve-decision-threshold-text", "keras_cases", ["serve", "--run", "{churn_threshold_text}"], "threshold"),
    ("serve-decision-missing", "keras_cases", ["serve", "--run", "{churn_no_decision}"], "decision.json"),
    ("serve-run-json-corrupt", "keras_cases", ["serve", "--run", "{churn_run_json_corrupt}"], "run.json"),
    ("serve-run-json-no-case", "keras_cases", ["serve", "--run", "{churn_no_case}"], "does not name the case"),
    ("serve-unknown-case", "keras_cases", ["serve", "--run", "{unknown_case}"], "unknown case 'weather'"),
    ("serve-case-is-a-module", "keras_cases", ["serve", "--run", "{module_case}"], "unknown case 'serve'"),
    ("serve-case-not-servable", "keras_cases", ["serve", "--run", "{rnn_run}"], "cannot be served"),
    ("serve-status-running", "keras_cases", ["serve", "--run", "{churn_running}"], "status running"),
    ("serve-status-failed", "keras_cases", ["serve", "--run", "{churn_failed}"], "status failed: valueerror"),
    ("serve-status-interrupted", "keras_cases", ["serve", "--run", "{interrupted}"], "status interrupted"),
    ("serve-metrics-missing", "keras_cases", ["serve", "--run", "{churn_metrics_missing}"], "metrics.json"),
    ("serve-model-of-other-case", "keras_cases", ["serve", "--run", "{churn_as_cifar}"], "fixed-size images"),
    ("serve-spam-vocab-corrupt", "keras_cases", ["serve", "--run", "{spam_vocab_corrupt}"], "vocab.json"),
    ("serve-spam-vocab-no-tokens", "keras_cases", ["serve", "--run", "{spam_vocab_no_tokens}"], '"tokens"'),
    ("serve-spam-no-thresholds", "keras_cases", ["serve", "--run", "{spam_decision_no_thresholds}"], '"thresholds"'),
    ("serve-spam-no-labels", "keras_cases", ["serve", "--run", "{spam_decision_no_labels}"], '"labels"'),
    ("serve-spam-model-truncated", "keras_cases", ["serve", "--run", "{spam_model_truncated}"], "cannot be loaded"),
    ("serve-port-70000", "keras_cases", ["serve", "--run", "{churn_ok}", "--port", "70000"], "--port"),
    ("serve-port-negative", "keras_cases", ["serve", "--run", "{churn_ok}", "--port", "-1"], "--port"),
    ("serve-port-text", "keras_cases", ["serve", "--run", "{churn_ok}", "--port", "http"], "--port"),
    # runs: the dashboard's root and port
    ("runs-root-missing", "keras_cases", ["runs", "--root", "{nowhere}"], "runs root not found"),
    ("runs-root-is-a-file", "keras_cases", ["runs", "--root", "{plain_file}"], "is not a directory"),
    ("runs-list-root-missing", "keras_cases", ["runs", "--list", "--root", "{nowhere}"], "runs root not found"),
    ("runs-port-70000", "keras_cases", ["runs", "--root", "{churn_ok}", "--port", "70000"], "--port"),
    ("runs-port-negative", "keras_cases", ["runs", "--root", "{churn_ok}", "--port", "-1"], "--port"),
    # export
    ("export-run-missing", "keras_cases", ["export", "--run", "{nowhere}", "--format", FMT], "run directory not found"),
    ("export-format-unknown", "keras_cases", ["export", "--run", "{churn_ok}", "--format", "tflite"], "--format"),
    (
        "export-out-exists",
        "keras_cases",
        ["export", "--run", "{churn_ok}", "--format", FMT, "--out", "{existing_csv}"],
        "--overwrite",
    ),
    (
        "export-default-out-exists",
        "keras_cases",
        ["export", "--run", "{churn_saved_model_exists}", "--format", "saved_model"],
        "--overwrite",
    ),
    (
        "export-out-missing-folder",
        "keras_cases",
        ["export", "--run", "{churn_ok}", "--format", FMT, "--out", "{missing_folder_export}"],
        "does not exist",
    ),
    (
        "export-model-truncated",
        "keras_cases",
        ["export", "--run", "{churn_model_truncated}", "--format", FMT],
        "cannot be loaded",
    ),
    ("export-no-model", "keras_cases", ["export", "--run", "{churn_no_model}", "--format", FMT], "model.keras"),
    ("export-status-running", "keras_cases", ["export", "--run", "{churn_running}", "--format", FMT], "status running"),
    (
        "export-run-json-no-case",
        "keras_cases",
        ["export", "--run", "{churn_no_case}", "--format", FMT],
        "does not name the case",
    ),
    # compress
    (
        "compress-run-missing",
        "keras_cases",
        ["compress", "--run", "{nowhere}", "--method", "int8"],
        "run directory not found",
    ),
    (
        "compress-case-not-compressible",
        "keras_cases",
        ["compress", "--run", "{churn_ok}", "--method", "int8"],
        "cannot be compressed",
    ),
    (
        "compress-status-running",
        "keras_cases",
        ["compress", "--run", "{churn_running}", "--method", "int8"],
        "status running",
    ),
    ("compress-method-unknown", "keras_cases", ["compress", "--run", "{spam_ok}", "--method", "int4"], "--method"),
    ("compress-method-missing", "keras_cases", ["compress", "--run", "{spam_ok}"], "--method"),
    (
        "compress-sparsity-one",
        "keras_cases",
        ["compress", "--run", "{spam_ok}", "--method", "prune", "--sparsity", "1"],
        "--sparsity",
    ),
    (
        "compress-sparsity-zero",
        "keras_cases",
        ["compress", "--run", "{spam_ok}", "--method", "prune", "--sparsity", "0"],
        "--sparsity",
    ),
    (
        "compress-sparsity-nan",
        "keras_cases",
        ["compress", "--run", "{spam_ok}", "--method", "prune", "--sparsity", "nan"],
        "--sparsity",
    ),
    (
        "compress-temperature-zero",
        "keras_cases",
        ["compress", "--run", "{spam_ok}", "--method", "distill", "--temperature", "0"],
        "--temperature",
    ),
    (
        "compress-temperature-negative",
        "keras_cases",
        ["compress", "--run", "{spam_ok}", "--method", "distill", "--temperature", "-2"],
        "--temperature",
    ),
    (
        "compress-alpha-above-one",
        "keras_cases",
        ["compress", "--run", "{spam_ok}", "--method", "distill", "--alpha", "1.5"],
        "--alpha",
    ),
    (
        "compress-width-zero",
        "keras_cases",
        ["compress", "--run", "{spam_ok}", "--method", "distill", "--width", "0"],
        "--width",
    ),
    (
        "compress-width-with-int8",
        "keras_cases",
        ["compress", "--run", "{spam_ok}", "--method", "int8", "--width", "0.5"],
        "--method distill",
    ),
    (
        "compress-out-not-empty",
        "keras_cases",
        ["compress", "--run", "{spam_ok}", "--method", "int8", "--out", "{taken_folder}"],
        "--overwrite",
    ),
    (
        "compress-out-not-a-run",
        "keras_cases",
        ["compress", "--run", "{spam_ok}", "--method", "int8", "--out", "{taken_folder}", "--overwrite"],
        "not a keras-cases run",
    ),
    # churn predict
    (
        "predict-churn-run-missing",
        "keras_cases.churn",
        ["predict", "--run", "{nowhere}", "--csv", "{csv_empty}"],
        "run directory not found",
    ),
    (
        "predict-churn-output-exists",
        "keras_cases.churn",
        ["predict", "--run", "{churn_ok}", "--csv", "{csv_non_numeric}", "--output", "{existing_csv}"],
        "--overwrite",
    ),
    (
        "predict-churn-default-output-exists",
        "keras_cases.churn",
        ["predict", "--run", "{churn_predictions_exist}", "--csv", "{csv_non_numeric}"],
        "--overwrite",
    ),
    (
        "predict-churn-output-missing-folder",
        "keras_cases.churn",
        ["predict", "--run", "{churn_ok}", "--csv", "{csv_non_numeric}", "--output", "{missing_folder_csv}"],
        "does not exist",
    ),
    (
        "predict-churn-csv-missing",
        "keras_cases.churn",
        ["predict", "--run", "{churn_ok}", "--csv", "{nowhere}"],
        "csv file not found",
    ),
    (
        "predict-churn-csv-missing-columns",
        "keras_cases.churn",
        ["predict", "--run", "{churn_ok}", "--csv", "{csv_missing_columns}"],
        "lacks column",
    ),
    (
        "predict-churn-csv-non-numeric",
        "keras_cases.churn",
        ["predict", "--run", "{churn_ok}", "--csv", "{csv_non_numeric}"],
        "'tenure' is numeric but data row 12 holds 'long'",
    ),
    (
        "predict-churn-explain-csv-infinite",
        "keras_cases.churn",
        ["predict", "--run", "{churn_ok}", "--csv", "{csv_infinite}", "--explain"],
        "'monthly_charges' holds an infinite",
    ),
    (
        "predict-churn-csv-infinite",
        "keras_cases.churn",
        ["predict", "--run", "{churn_ok}", "--csv", "{csv_infinite}"],
        "'monthly_charges' holds an infinite",
    ),
    (
        "predict-churn-csv-empty",
        "keras_cases.churn",
        ["predict", "--run", "{churn_ok}", "--csv", "{csv_empty}"],
        "is empty",
    ),
    (
        "predict-churn-csv-header-only",
        "keras_cases.churn",
        ["predict", "--run", "{churn_ok}", "--csv", "{csv_header_only}"],
        "no rows",
    ),
    (
        "predict-churn-model-truncated",
        "keras_cases.churn",
        ["predict", "--run", "{churn_model_truncated}", "--csv", "{csv_non_numeric}"],
        "cannot be loaded",
    ),
    (
        "predict-churn-preprocessing-corrupt",
        "keras_cases.churn",
        ["predict", "--run", "{churn_pre_corrupt}", "--csv", "{csv_non_numeric}"],
        "not valid json",
    ),
    (
        "predict-churn-no-threshold",
        "keras_cases.churn",
        ["predict", "--run", "{churn_no_threshold}", "--csv", "{csv_non_numeric}"],
        "threshold",
    ),
    (
        "predict-churn-status-failed",
        "keras_cases.churn",
        ["predict", "--run", "{churn_failed}", "--csv", "{csv_non_numeric}"],
        "status failed",
    ),
    (
        "predict-churn-run-of-spam",
        "keras_cases.churn",
        ["predict", "--run", "{churn_as_spam}", "--csv", "{csv_non_numeric}"],
        "is a spam run",
    ),
    # spam / sentiment predict
    (
        "predict-spam-file-not-utf8",
        "keras_cases.spam",
        ["predict", "--run", "{spam_ok}", "--file", "{latin1_texts}"],
        "not utf-8",
    ),
    (
        "predict-spam-file-missing",
        "keras_cases.spam",
        ["predict", "--run", "{spam_ok}", "--file", "{nowhere}"],
        "cannot read --file",
    ),
    (
        "predict-spam-file-is-a-folder",
        "keras_cases.spam",
        ["predict", "--run", "{spam_ok}", "--file", "{texts_folder}"],
        "cannot read --file",
    ),
    ("predict-spam-nothing-to-score", "keras_cases.spam", ["predict", "--run", "{spam_ok}"], "nothing to score"),
    (
        "predict-spam-model-not-saved",
        "keras_cases.spam",
        ["predict", "--run", "{spam_ok}", "--model", "lstm", "hi"],
        "no saved model 'lstm'",
    ),
    (
        "predict-spam-model-unknown",
        "keras_cases.spam",
        ["predict", "--run", "{spam_ok}", "--model", "bert", "hi"],
        "--model",
    ),
    (
        "predict-spam-output-exists",
        "keras_cases.spam",
        ["predict", "--run", "{spam_ok}", "--output", "{existing_csv}", "hi"],
        "--overwrite",
    ),
    (
        "predict-spam-output-missing-folder",
        "keras_cases.spam",
        ["predict", "--run", "{spam_ok}", "--output", "{missing_folder_csv}", "hi"],
        "does not exist",
    ),
    (
        "predict-spam-vocab-corrupt",
        "keras_cases.spam",
        ["predict", "--run", "{spam_vocab_corrupt}", "hi"],
        "vocab.json",
    ),
    (
        "predict-spam-no-thresholds",
        "keras_cases.spam",
        ["predict", "--run", "{spam_decision_no_thresholds}", "hi"],
        '"thresholds"',
    ),
    (
        "predict-spam-model-truncated",
        "keras_cases.spam",
        ["predict", "--run", "{spam_model_truncated}", "hi"],
        "cannot be loaded",
    ),
    (
        "predict-spam-status-running",
        "keras_cases.spam",
        ["predict", "--run", "{churn_running}", "hi"],
        "status running",
    ),
    (
        "predict-sentiment-run-of-spam",
        "keras_cases.sentiment",
        ["predict", "--run", "{spam_ok}", "hi"],
        "is a spam run",
    ),
    (
        "predict-sentiment-file-not-utf8",
        "keras_cases.sentiment",
        ["predict", "--run", "{spam_as_sentiment}", "--file", "{latin1_texts}"],
        "not utf-8",
    ),
    (
        "predict-sentiment-model-not-saved",
        "keras_cases.sentiment",
        ["predict", "--run", "{spam_as_sentiment}", "--model", "gru", "fine"],
        "no saved model 'gru'",
    ),
    (
        "predict-sentiment-run-missing",
        "keras_cases.sentiment",
        ["predict", "--run", "{nowhere}", "fine"],
        "run directory not found",
    ),
]
