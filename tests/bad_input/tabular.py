"""Bad input rows: tabular, text and sequence commands, the searches and the benchmarks
(see __init__.py)."""

import json

import numpy as np

CHURN_HEADER = "customer_id,tenure,contract,monthly_charges,churn\n"


def _churn_rows(n, positives, bad_tenure_at=None):
    """A churn-shaped CSV body: n rows, the first `positives` of them churned."""
    lines = []
    for i in range(n):
        tenure = "abc" if i == bad_tenure_at else str(1 + i % 60)
        contract = ("Month-to-month", "One year", "Two year")[i % 3]
        lines.append(f"C{i:04d},{tenure},{contract},{20 + i % 80}.5,{'Yes' if i < positives else 'No'}\n")
    return "".join(lines)


def _write(ctx, name, text, encoding="utf-8"):
    p = ctx.tmp / name
    p.write_text(text, encoding=encoding)
    return p


def _write_bytes(ctx, name, data):
    p = ctx.tmp / name
    p.write_bytes(data)
    return p


# --- tabular CSVs (churn, tuning.churn) ---------------------------------------------
def churn_few_rows(ctx):
    return _write(ctx, "few_rows.csv", CHURN_HEADER + _churn_rows(12, 4))


def churn_few_positives(ctx):
    return _write(ctx, "few_positives.csv", CHURN_HEADER + _churn_rows(200, 3))


def churn_no_target(ctx):
    return _write(ctx, "no_target.csv", CHURN_HEADER.replace(",churn", ",left") + _churn_rows(200, 50))


def churn_text_in_number(ctx):
    return _write(ctx, "text_in_number.csv", CHURN_HEADER + _churn_rows(200, 50, bad_tenure_at=41))


def churn_one_class(ctx):
    return _write(ctx, "one_class.csv", CHURN_HEADER + _churn_rows(200, 0))


def churn_three_classes(ctx):
    body = _churn_rows(200, 50).replace("No\n", "Maybe\n", 20)
    return _write(ctx, "three_classes.csv", CHURN_HEADER + body)


def empty_file(ctx):
    return _write(ctx, "empty.csv", "")


def header_only(ctx):
    return _write(ctx, "header_only.csv", CHURN_HEADER)


def latin1_csv(ctx):
    body = _churn_rows(200, 50).replace("One year", "Un an déjà")
    return _write(ctx, "latin1.csv", CHURN_HEADER + body, encoding="latin-1")


def binary_file(ctx):
    return _write_bytes(ctx, "picture.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)


def ragged_csv(ctx):
    return _write(ctx, "ragged.csv", 'a,b,churn\n1,2,Yes\n3,4,No,5,6\n"unclosed,7,Yes\n')


def a_directory(ctx):
    d = ctx.tmp / "a_folder.csv"
    d.mkdir()
    return d


def churn_only_ids(ctx):
    body = "".join(f"C{i:04d},{'Yes' if i % 4 == 0 else 'No'}\n" for i in range(200))
    return _write(ctx, "only_ids.csv", "customer_id,churn\n" + body)


# --- text CSVs and files (spam, sentiment) ------------------------------------------
def _texts(n, spam_every=4):
    return [(("spam" if i % spam_every == 0 else "ham"), f"message number {i} says hello {i * 7}") for i in range(n)]


def text_csv(ctx):
    body = "".join(f"{lab},{txt}\n" for lab, txt in _texts(200))
    return _write(ctx, "messages.csv", "label,text\n" + body)


def text_csv_no_columns(ctx):
    body = "".join(f"{lab},{txt}\n" for lab, txt in _texts(200))
    return _write(ctx, "unnamed.csv", "kind,words\n" + body)


def text_csv_one_label(ctx):
    body = "".join(f"ham,{txt}\n" for _, txt in _texts(200))
    return _write(ctx, "one_label.csv", "label,text\n" + body)


def text_csv_blank_labels(ctx):
    body = "".join(f",{txt}\n" for _, txt in _texts(200))
    return _write(ctx, "blank_labels.csv", "label,text\n" + body)


def text_csv_few(ctx):
    body = "".join(f"{lab},{txt}\n" for lab, txt in _texts(12))
    return _write(ctx, "few_texts.csv", "label,text\n" + body)


def text_csv_repeated(ctx):
    """200 rows, but only four distinct messages: too few to split once duplicates stay together."""
    body = "".join(f"{'spam' if i % 2 else 'ham'},same message {i % 4}\n" for i in range(200))
    return _write(ctx, "repeated.csv", "label,text\n" + body)


def sentiment_csv_three(ctx):
    body = "".join(f"{('positive', 'negative', 'neutral')[i % 3]},review {i} was fine\n" for i in range(90))
    return _write(ctx, "three_labels.csv", "sentiment,review\n" + body)


def tab_file_no_tab(ctx):
    return _write(ctx, "SMSSpamCollection", "ham\tok then\nspam this line has no tab at all\n")


# --- time series CSVs (forecast) ------------------------------------------------------
def _hourly(n, start="2024-01-01"):
    import pandas as pd

    return [str(t) for t in pd.date_range(start, periods=n, freq="h")]


def series_csv(ctx, name="series.csv", n=2000, times=None, load=None):
    times = times or _hourly(n)
    load = load or [f"{100 + 10 * np.sin(i / 24 * 2 * np.pi):.2f}" for i in range(len(times))]
    body = "".join(f"{t},{v},{15 + i % 7}\n" for i, (t, v) in enumerate(zip(times, load)))
    return _write(ctx, name, "time,load,temp\n" + body)


def series_short(ctx):
    return series_csv(ctx, "short.csv", n=60)


def series_bad_time(ctx):
    times = _hourly(2000)
    times[500] = "yesterday-ish"
    return series_csv(ctx, "bad_time.csv", times=times)


def series_duplicate_time(ctx):
    times = _hourly(2000)
    times[700] = times[699]
    return series_csv(ctx, "dup_time.csv", times=times)


def series_text_target(ctx):
    load = [f"{100 + i % 24}" for i in range(2000)]
    load[1234] = "n/a!"
    return series_csv(ctx, "text_target.csv", load=load)


def series_mixed_zones(ctx):
    times = [t + ("+01:00" if i % 2 else "+00:00") for i, t in enumerate(_hourly(2000))]
    return series_csv(ctx, "zones.csv", times=times)


def series_numbered(ctx):
    return series_csv(ctx, "numbered.csv", times=[str(i) for i in range(2000)])


def series_constant(ctx):
    return series_csv(ctx, "constant.csv", load=["42"] * 2000)


def series_infinite(ctx):
    load = [f"{100 + i % 24 + i / 1000:.3f}" for i in range(2000)]
    load[321] = "1e400"
    return series_csv(ctx, "infinite.csv", load=load)


def churn_infinite(ctx):
    body = _churn_rows(200, 50).replace(",20.5,", ",1e400,", 1)
    return _write(ctx, "infinite.csv", CHURN_HEADER + body)


# --- arrays (architecture, tuning.architecture) -------------------------------------
def corrupt_npz(ctx):
    return _write_bytes(ctx, "corrupt.npz", b"PK\x03\x04 this is not really a zip archive")


def npz_without_y(ctx):
    p = ctx.tmp / "no_y.npz"
    np.savez(p, x=np.zeros((50, 8), "float32"))
    return p


# --- searches -------------------------------------------------------------------------
def earlier_search(ctx):
    d = ctx.tmp / "search"
    (d / "keras_tuner").mkdir(parents=True)
    (d / "keras_tuner" / "oracle.json").write_text('{"ongoing_trials": {}}')
    (d / "trials.csv").write_text("trial,score\n0,0.5\n")
    (d / "notes.md").write_text("my notes on the earlier search\n")
    return d


def empty_search_dir(ctx):
    d = ctx.tmp / "fresh"
    d.mkdir()
    return d


def a_file(ctx):
    return _write(ctx, "plain_file", "not a directory\n")


# --- benchmark results ----------------------------------------------------------------
def corrupt_json(ctx):
    return _write(ctx, "results.json", '{"results": {"jax": ')


def wrong_json(ctx):
    return _write(ctx, "other.json", json.dumps({"hello": "world"}))


def json_list(ctx):
    return _write(ctx, "list.json", "[1, 2, 3]")


def bad_results(ctx):
    keys = {
        "wall_s": 1.0,
        "load_average": [],
        "cases": ["churn"],
        "quick": True,
        "batch_size": 64,
        "generated_utc": "2024-01-01 00:00",
    }
    return _write(ctx, "bad_results.json", json.dumps({**keys, "results": {"jax": 5}}))


BUILDERS = {
    f.__name__: f
    for f in (
        churn_few_rows,
        churn_few_positives,
        churn_no_target,
        churn_text_in_number,
        churn_one_class,
        churn_three_classes,
        empty_file,
        header_only,
        latin1_csv,
        binary_file,
        ragged_csv,
        a_directory,
        churn_only_ids,
        text_csv,
        text_csv_no_columns,
        text_csv_one_label,
        text_csv_blank_labels,
        text_csv_few,
        text_csv_repeated,
        sentiment_csv_three,
        tab_file_no_tab,
        series_csv,
        series_short,
        series_bad_time,
        series_duplicate_time,
        series_text_target,
        corrupt_npz,
        npz_without_y,
        earlier_search,
        empty_search_dir,
        a_file,
        corrupt_json,
        wrong_json,
        json_list,
        bad_results,
        series_mixed_zones,
        series_numbered,
        series_constant,
        series_infinite,
        churn_infinite,
    )
}

C, TC = "keras_cases.churn", "tuning.churn"
ROWS = [
    ("churn-cv-one-fold", "keras_cases.churn", ["--quick", "--cv", "1"], "at least 2 folds"),
    ("churn-networks-typo", "keras_cases.churn", ["--quick", "--cv", "2", "--networks", "mlp,resdual"], "resdual"),
    ("churn-two-networks-one-split", C, ["--quick", "--networks", "mlp,residual"], "one split trains one network"),
    # churn: the user's CSV
    ("churn-csv-missing", C, ["--quick", "--csv", "no_such.csv"], "not found"),
    ("churn-csv-directory", C, ["--quick", "--csv", "{a_directory}"], "is a directory"),
    ("churn-csv-empty", C, ["--quick", "--csv", "{empty_file}"], "is empty"),
    ("churn-csv-header-only", C, ["--quick", "--csv", "{header_only}"], "no rows"),
    ("churn-csv-not-utf8", C, ["--quick", "--csv", "{latin1_csv}"], "utf-8"),
    ("churn-csv-binary", C, ["--quick", "--csv", "{binary_file}"], "picture.csv"),
    ("churn-csv-ragged", C, ["--quick", "--csv", "{ragged_csv}"], "ragged.csv"),
    ("churn-csv-few-rows", C, ["--quick", "--csv", "{churn_few_rows}"], "too few rows"),
    ("churn-csv-few-positives", C, ["--quick", "--csv", "{churn_few_positives}"], "too few positives"),
    ("churn-csv-no-target", C, ["--quick", "--csv", "{churn_no_target}"], "no target column 'churn'"),
    (
        "churn-target-unknown",
        C,
        ["--quick", "--csv", "{churn_few_rows}", "--target", "nope"],
        "no target column 'nope'",
    ),
    ("churn-csv-text-in-number", C, ["--quick", "--csv", "{churn_text_in_number}"], "row 42"),
    ("churn-csv-one-class", C, ["--quick", "--csv", "{churn_one_class}"], "only one class"),
    ("churn-csv-three-classes", C, ["--quick", "--csv", "{churn_three_classes}"], "3 classes"),
    ("churn-positive-unknown", C, ["--quick", "--csv", "{churn_text_in_number}", "--positive", "maybe"], "--positive"),
    ("churn-csv-infinite", C, ["--quick", "--csv", "{churn_infinite}"], "'monthly_charges' holds an infinite"),
    ("churn-csv-only-ids", C, ["--quick", "--csv", "{churn_only_ids}"], "no usable feature"),
    ("churn-objective-unknown", C, ["--quick", "--objective", "accuracy"], "objective"),
    ("churn-objective-floor-2", C, ["--quick", "--objective", "recall>=2"], "(0, 1]"),
    ("churn-objective-garbled", C, ["--quick", "--objective", "recall>=0.8.1"], "objective"),
    ("churn-objective-cost-negative", C, ["--quick", "--objective", "cost:fp=-1,fn=5"], "objective"),
    ("churn-objective-cost-zero", C, ["--quick", "--objective", "cost:fp=0,fn=0"], "objective"),
    ("churn-objective-fbeta-0", C, ["--quick", "--objective", "fbeta:0"], "objective"),
    ("churn-epochs-0", C, ["--epochs", "0"], "--epochs"),
    ("churn-batch-size-word", C, ["--batch-size", "many"], "--batch-size"),
    # spam
    ("spam-model-unknown", "keras_cases.spam", ["--model", "nope"], "--model"),
    ("spam-cv-one-fold", "keras_cases.spam", ["--cv", "1"], "at least 2 folds"),
    ("spam-cv-negative", "keras_cases.spam", ["--cv", "-2"], "--cv"),
    ("spam-cv-more-folds-than-texts", "keras_cases.spam", ["--cv", "400"], "smallest class"),
    ("spam-families-unknown", "keras_cases.spam", ["--cv", "2", "--families", "bert"], "unknown family"),
    ("sentiment-cv-one-fold", "keras_cases.sentiment", ["--cv", "1"], "at least 2 folds"),
    ("sentiment-repeats-zero", "keras_cases.sentiment", ["--cv", "2", "--repeats", "0"], "--repeats"),
    ("sentiment-families-empty", "keras_cases.sentiment", ["--cv", "2", "--families", ","], "--families is empty"),
    ("spam-objective-unknown", "keras_cases.spam", ["--quick", "--objective", "precision"], "objective"),
    ("spam-objective-floor-0", "keras_cases.spam", ["--quick", "--objective", "precision>=0"], "(0, 1]"),
    ("spam-csv-missing", "keras_cases.spam", ["--quick", "--csv", "no_such.csv"], "not found"),
    ("spam-csv-empty", "keras_cases.spam", ["--quick", "--csv", "{empty_file}"], "is empty"),
    ("spam-csv-binary", "keras_cases.spam", ["--quick", "--csv", "{binary_file}"], "picture.csv"),
    ("spam-csv-guess-columns", "keras_cases.spam", ["--quick", "--csv", "{text_csv_no_columns}"], "--text-column"),
    (
        "spam-text-column-unknown",
        "keras_cases.spam",
        ["--quick", "--csv", "{text_csv}", "--text-column", "body"],
        "no text column 'body'",
    ),
    (
        "spam-label-column-unknown",
        "keras_cases.spam",
        ["--quick", "--csv", "{text_csv}", "--label-column", "kind"],
        "no label column 'kind'",
    ),
    (
        "spam-same-column",
        "keras_cases.spam",
        ["--quick", "--csv", "{text_csv}", "--label-column", "text"],
        "same column",
    ),
    ("spam-csv-one-label", "keras_cases.spam", ["--quick", "--csv", "{text_csv_one_label}"], "exactly two"),
    ("spam-csv-blank-labels", "keras_cases.spam", ["--quick", "--csv", "{text_csv_blank_labels}"], "is empty"),
    ("spam-csv-few", "keras_cases.spam", ["--quick", "--csv", "{text_csv_few}"], "too few"),
    ("spam-csv-repeated", "keras_cases.spam", ["--quick", "--csv", "{text_csv_repeated}"], "distinct"),
    (
        "spam-positive-unknown",
        "keras_cases.spam",
        ["--quick", "--csv", "{text_csv}", "--positive", "junk"],
        "--positive",
    ),
    ("spam-data-missing", "keras_cases.spam", ["--quick", "--data", "no_such_file"], "not found"),
    ("spam-data-no-tab", "keras_cases.spam", ["--quick", "--data", "{tab_file_no_tab}"], "no tab"),
    ("spam-max-len-0", "keras_cases.spam", ["--max-len", "0"], "--max-len"),
    # sentiment
    ("sentiment-data-unknown", "keras_cases.sentiment", ["--data", "tweets"], "--data"),
    ("sentiment-model-unknown", "keras_cases.sentiment", ["--model", "bert"], "--model"),
    ("sentiment-objective-garbled", "keras_cases.sentiment", ["--quick", "--objective", "f2"], "objective"),
    (
        "sentiment-csv-three-labels",
        "keras_cases.sentiment",
        ["--quick", "--csv", "{sentiment_csv_three}"],
        "exactly two",
    ),
    (
        "sentiment-csv-no-text",
        "keras_cases.sentiment",
        ["--quick", "--csv", "{text_csv}", "--text-column", "review"],
        "no text column 'review'",
    ),
    ("sentiment-csv-which-positive", "keras_cases.sentiment", ["--quick", "--csv", "{text_csv}"], "--positive"),
    ("sentiment-csv-empty", "keras_cases.sentiment", ["--quick", "--csv", "{empty_file}"], "is empty"),
    ("spam-csv-ragged", "keras_cases.spam", ["--quick", "--csv", "{ragged_csv}"], "ragged.csv"),
    ("sentiment-csv-not-utf8-binary", "keras_cases.sentiment", ["--quick", "--csv", "{binary_file}"], "picture.csv"),
    # forecast
    ("forecast-csv-without-columns", "keras_cases.forecast", ["--quick", "--csv", "{series_csv}"], "--time-column"),
    ("forecast-columns-without-csv", "keras_cases.forecast", ["--quick", "--target", "load"], "--csv"),
    (
        "forecast-time-column-missing",
        "keras_cases.forecast",
        ["--quick", "--csv", "{series_csv}", "--time-column", "when", "--target", "load"],
        "no time column 'when'",
    ),
    (
        "forecast-target-missing",
        "keras_cases.forecast",
        ["--quick", "--csv", "{series_csv}", "--time-column", "time", "--target", "demand"],
        "no target column 'demand'",
    ),
    (
        "forecast-feature-unknown",
        "keras_cases.forecast",
        ["--quick", "--csv", "{series_csv}", "--time-column", "time", "--target", "load", "--features", "temp,rain"],
        "no feature column 'rain'",
    ),
    (
        "forecast-time-unparseable",
        "keras_cases.forecast",
        ["--quick", "--csv", "{series_bad_time}", "--time-column", "time", "--target", "load"],
        "yesterday-ish",
    ),
    (
        "forecast-time-duplicates",
        "keras_cases.forecast",
        ["--quick", "--csv", "{series_duplicate_time}", "--time-column", "time", "--target", "load"],
        "repeated time stamps",
    ),
    (
        "forecast-target-text",
        "keras_cases.forecast",
        ["--quick", "--csv", "{series_text_target}", "--time-column", "time", "--target", "load"],
        "n/a!",
    ),
    (
        "forecast-too-short",
        "keras_cases.forecast",
        ["--quick", "--csv", "{series_short}", "--time-column", "time", "--target", "load"],
        "too short",
    ),
    (
        "forecast-lookback-too-long",
        "keras_cases.forecast",
        ["--quick", "--csv", "{series_csv}", "--time-column", "time", "--target", "load", "--lookback", "5000"],
        "too short",
    ),
    (
        "forecast-csv-empty",
        "keras_cases.forecast",
        ["--quick", "--csv", "{empty_file}", "--time-column", "time", "--target", "load"],
        "is empty",
    ),
    (
        "forecast-series-column-missing",
        "keras_cases.forecast",
        ["--quick", "--csv", "{series_csv}", "--time-column", "time", "--target", "load", "--series-column", "site"],
        "no series column 'site'",
    ),
    (
        "forecast-time-mixed-zones",
        "keras_cases.forecast",
        ["--quick", "--csv", "{series_mixed_zones}", "--time-column", "time", "--target", "load"],
        "time zones",
    ),
    (
        "forecast-time-numbers",
        "keras_cases.forecast",
        ["--quick", "--csv", "{series_numbered}", "--time-column", "time", "--target", "load"],
        "not a date/time",
    ),
    (
        "forecast-target-constant",
        "keras_cases.forecast",
        ["--quick", "--csv", "{series_constant}", "--time-column", "time", "--target", "load"],
        "constant",
    ),
    (
        "forecast-target-infinite",
        "keras_cases.forecast",
        ["--quick", "--csv", "{series_infinite}", "--time-column", "time", "--target", "load"],
        "infinite",
    ),
    (
        "forecast-feature-is-target",
        "keras_cases.forecast",
        ["--quick", "--csv", "{series_csv}", "--time-column", "time", "--target", "load", "--features", "load"],
        "cannot also be",
    ),
    ("forecast-model-unknown", "keras_cases.forecast", ["--model", "prophet"], "--model"),
    ("forecast-learning-rate-0", "keras_cases.forecast", ["--learning-rate", "0"], "--learning-rate"),
    ("forecast-model-list-unknown", "keras_cases.forecast", ["--model", "dlinear,prophet"], "unknown model 'prophet'"),
    ("forecast-model-list-empty", "keras_cases.forecast", ["--model", ","], "--model is empty"),
    # rnn
    ("rnn-data-seed-negative", "keras_cases.rnn", ["--data-seed", "-1"], "--data-seed"),
    ("rnn-alphabet-1", "keras_cases.rnn", ["--quick", "--alphabet", "1"], "--alphabet"),
    ("rnn-alphabet-word", "keras_cases.rnn", ["--quick", "--alphabet", "ten"], "--alphabet"),
    ("rnn-lengths-0", "keras_cases.rnn", ["--quick", "--lengths", "0"], "--lengths"),
    ("rnn-lengths-word", "keras_cases.rnn", ["--quick", "--lengths", "8,long"], "--lengths"),
    ("rnn-lengths-huge", "keras_cases.rnn", ["--quick", "--lengths", "100000000"], "--lengths"),
    ("rnn-symbols-huge", "keras_cases.rnn", ["--quick", "--symbols", "100000000"], "--symbols"),
    ("rnn-ablation-length-huge", "keras_cases.rnn", ["--quick", "--ablation-length", "100000000"], "--ablation-length"),
    ("rnn-studies-unknown", "keras_cases.rnn", ["--quick", "--studies", "gradients,nope"], "--studies"),
    ("rnn-units-0", "keras_cases.rnn", ["--units", "0"], "--units"),
    ("rnn-units-huge", "keras_cases.rnn", ["--quick", "--units", "1000000"], "--units"),
    # sequences
    ("sequences-data-seed-negative", "keras_cases.sequences", ["--data-seed", "-1"], "--data-seed"),
    ("sequences-studies-unknown", "keras_cases.sequences", ["--quick", "--studies", "copy"], "--studies"),
    ("sequences-length-short", "keras_cases.sequences", ["--quick", "--length", "5"], "--length"),
    ("sequences-length-huge", "keras_cases.sequences", ["--quick", "--length", "100000000"], "--length"),
    ("sequences-max-len-short", "keras_cases.sequences", ["--quick", "--max-len", "1"], "--max-len"),
    ("sequences-max-len-huge", "keras_cases.sequences", ["--quick", "--max-len", "100000000"], "--max-len"),
    ("sequences-lr-1", "keras_cases.sequences", ["--quick", "--lr", "5"], "--lr"),
    # scratch
    ("scratch-hidden-word", "keras_cases.scratch", ["--quick", "--hidden", "8,wide"], "--hidden"),
    ("scratch-hidden-zero", "keras_cases.scratch", ["--quick", "--hidden", "0"], "--hidden"),
    ("scratch-samples-few", "keras_cases.scratch", ["--quick", "--samples", "3"], "--samples"),
    (
        "scratch-check-backends-unknown",
        "keras_cases.scratch",
        ["--quick", "--check-backends", "nope"],
        "--check-backends",
    ),
    ("scratch-activation-unknown", "keras_cases.scratch", ["--activation", "swish2"], "--activation"),
    ("scratch-noise-negative", "keras_cases.scratch", ["--noise", "-1"], "--noise"),
    # architecture
    (
        "architecture-experiments-unknown",
        "keras_cases.architecture",
        ["--quick", "--experiments", "nope"],
        "experiment",
    ),
    ("architecture-budgets-word", "keras_cases.architecture", ["--quick", "--budgets", "1000,lots"], "--budgets"),
    ("architecture-budgets-huge", "keras_cases.architecture", ["--budgets", "10**12"], "--budgets"),
    ("architecture-budgets-over-limit", "keras_cases.architecture", ["--budgets", "1000000000000"], "at most"),
    ("architecture-budget-too-small", "keras_cases.architecture", ["--quick", "--budgets", "3"], "too small"),
    ("architecture-data-unknown", "keras_cases.architecture", ["--quick", "--data", "cifar100"], "unknown dataset"),
    ("architecture-data-missing", "keras_cases.architecture", ["--quick", "--data", "missing.npz"], "not found"),
    (
        "architecture-data-corrupt",
        "keras_cases.architecture",
        ["--quick", "--data", "{corrupt_npz}"],
        "could not be read",
    ),
    (
        "architecture-data-no-y",
        "keras_cases.architecture",
        ["--quick", "--data", "{npz_without_y}"],
        "no array named y",
    ),
    # tuning.churn
    ("tuning-churn-csv-few-rows", TC, ["--quick", "--csv", "{churn_few_rows}"], "too few rows"),
    ("tuning-churn-csv-few-positives", TC, ["--quick", "--csv", "{churn_few_positives}"], "too few positives"),
    ("tuning-churn-csv-no-target", TC, ["--quick", "--csv", "{churn_no_target}"], "no target column"),
    ("tuning-churn-csv-one-class", TC, ["--quick", "--csv", "{churn_one_class}"], "only one class"),
    ("tuning-churn-csv-empty", TC, ["--quick", "--csv", "{empty_file}"], "is empty"),
    ("tuning-churn-objective-floor", TC, ["--quick", "--objective", "recall>=2"], "(0, 1]"),
    ("tuning-churn-objective-cost", TC, ["--quick", "--objective", "cost:fp=-1"], "objective"),
    ("tuning-churn-budget-tiny", TC, ["--quick", "--budget", "5"], "smallest model"),
    ("tuning-churn-algorithm-unknown", TC, ["--algorithm", "grid"], "--algorithm"),
    ("tuning-churn-directory-is-file", TC, ["--quick", "--directory", "{a_file}"], "is a file"),
    ("tuning-churn-earlier-search", TC, ["--quick", "--directory", "{earlier_search}"], "--resume"),
    ("tuning-churn-resume-nothing", TC, ["--quick", "--resume", "--directory", "{empty_search_dir}"], "no search in"),
    (
        "tuning-churn-resume-and-overwrite",
        TC,
        ["--quick", "--resume", "--overwrite", "--directory", "{earlier_search}"],
        "give one",
    ),
    ("tuning-churn-seed-negative", TC, ["--seed", "-1"], "--seed"),
    ("tuning-churn-oracle-port", TC, ["--quick", "--distributed", "chief", "--oracle", "localhost:http"], "--oracle"),
    ("tuning-churn-cv-one-fold", TC, ["--quick", "--cv", "1"], "at least 2 folds"),
    ("tuning-churn-cv-more-folds-than-rows", TC, ["--quick", "--cv", "400"], "smallest class"),
    ("tuning-churn-cv-negative", TC, ["--quick", "--cv", "-2"], "--cv"),
    # tuning.architecture
    ("tuning-architecture-families-unknown", "tuning.architecture", ["--quick", "--families", "mlp,rnn"], "--families"),
    ("tuning-architecture-data-missing", "tuning.architecture", ["--quick", "--data", "missing.npz"], "not found"),
    (
        "tuning-architecture-data-corrupt",
        "tuning.architecture",
        ["--quick", "--data", "{corrupt_npz}"],
        "could not be read",
    ),
    (
        "tuning-architecture-budget-tiny",
        "tuning.architecture",
        ["--quick", "--data", "digits", "--budget", "5"],
        "every family",
    ),
    (
        "tuning-architecture-directory-is-file",
        "tuning.architecture",
        ["--quick", "--data", "digits", "--directory", "{a_file}"],
        "is a file",
    ),
    (
        "tuning-architecture-earlier-search",
        "tuning.architecture",
        ["--quick", "--data", "digits", "--directory", "{earlier_search}"],
        "--resume",
    ),
    (
        "tuning-architecture-resume-nothing",
        "tuning.architecture",
        ["--quick", "--data", "digits", "--resume", "--directory", "{empty_search_dir}"],
        "no search in",
    ),
    (
        "tuning-architecture-resume-and-overwrite",
        "tuning.architecture",
        ["--quick", "--resume", "--overwrite", "--directory", "{earlier_search}"],
        "give one",
    ),
    ("tuning-architecture-max-trials-0", "tuning.architecture", ["--max-trials", "0"], "--max-trials"),
    # tuning (the listing)
    ("tuning-search-as-argument", "tuning", ["churn"], "python -m tuning.churn"),
    ("tuning-unknown-argument", "tuning", ["--budget", "5"], "unrecognized arguments"),
    # benchmarks
    ("benchmarks-backends-unknown", "benchmarks", ["--quick", "--backends", "nope"], "--backends"),
    ("benchmarks-backends-empty", "benchmarks", ["--quick", "--backends", ","], "--backends"),
    ("benchmarks-cases-unknown", "benchmarks", ["--quick", "--cases", "nope"], "--cases"),
    ("benchmarks-render-missing", "benchmarks", ["--render", "missing.json"], "not found"),
    ("benchmarks-render-corrupt", "benchmarks", ["--render", "{corrupt_json}"], "results.json"),
    ("benchmarks-render-wrong-json", "benchmarks", ["--render", "{wrong_json}"], "other.json"),
    ("benchmarks-render-list", "benchmarks", ["--render", "{json_list}"], "list.json"),
    ("benchmarks-out-is-a-file", "benchmarks", ["--quick", "--out", "{a_file}"], "plain_file"),
    ("benchmarks-render-bad-results", "benchmarks", ["--render", "{bad_results}"], "not a benchmark results"),
    ("benchmarks-render-directory", "benchmarks", ["--render", "{a_directory}"], "a directory"),
    ("benchmarks-batch-size-0", "benchmarks", ["--batch-size", "0"], "--batch-size"),
    ("benchmarks-cifar-backends-unknown", "benchmarks.cifar", ["--quick", "--backends", "nope"], "--backends"),
]
