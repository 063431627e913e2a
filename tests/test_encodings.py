"""Numeric encodings for tabular MLPs (keras_cases.encodings): known answers, and every
encoding fit on the training rows only."""

import numpy as np
import pandas as pd
import pytest

from keras_cases import encodings as enc


def test_ple_known_answers():
    edges = np.array([0.0, 1.0, 2.0, 4.0])
    codes = enc.ple_encode([-1.0, 0.5, 1.5, 3.0, 6.0], edges)
    expect = [[-1, 0, 0], [0.5, 0, 0], [1, 0.5, 0], [1, 1, 0.5], [1, 1, 2]]
    np.testing.assert_allclose(codes, expect)


def frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n).astype(float),
            "charges": rng.lognormal(3, 1, n),
            "senior": rng.integers(0, 2, n),  # two values: left alone
            "signed": rng.normal(0, 1, n),  # negative values: log1p leaves it alone
            "contract": rng.choice(["month", "year"], n),
        }
    )


def test_columns_chosen_on_training_rows():
    f = frame()
    assert enc.continuous_columns(f, np.arange(300)) == ["tenure", "charges", "signed"]
    assert enc.continuous_columns(f, np.arange(300), nonnegative=True) == ["tenure", "charges"]
    out = enc.log1p(f, np.arange(300))
    np.testing.assert_allclose(out["charges"], np.log1p(f["charges"]))
    pd.testing.assert_series_equal(out["signed"], f["signed"])
    pd.testing.assert_series_equal(out["senior"], f["senior"])


@pytest.mark.parametrize("name", ["quantile", "ple"])
def test_fit_on_training_rows_only(name):
    """Changing the held-out rows does not change how the training rows are encoded."""
    f, train = frame(), np.arange(300)
    g = f.copy()
    g.loc[300:, ["tenure", "charges", "signed"]] *= 100.0
    a, b = enc.ENCODINGS[name](f, train), enc.ENCODINGS[name](g, train)
    assert list(a.columns) == list(b.columns)
    np.testing.assert_allclose(a.iloc[:300].select_dtypes("number"), b.iloc[:300].select_dtypes("number"))
    assert not np.allclose(a.iloc[300:].select_dtypes("number"), b.iloc[300:].select_dtypes("number"))


def test_quantile_makes_training_rows_standard_normal():
    f = frame(2000)
    out = enc.quantile(f, np.arange(1500))
    x = out["charges"].iloc[:1500]
    assert abs(x.mean()) < 0.05 and abs(x.std() - 1) < 0.1
    order = np.argsort(f["charges"].to_numpy())
    assert np.all(np.diff(out["charges"].to_numpy()[order]) >= 0)  # monotone


def test_ple_expands_each_continuous_column():
    f = frame()
    out = enc.ple(f, np.arange(300), n_bins=8)
    ple_cols = [c for c in out.columns if "_ple" in c]
    assert {c.split("_ple")[0] for c in ple_cols} == {"tenure", "charges", "signed"}
    assert sum(c.startswith("charges_ple") for c in ple_cols) == 8
    train = out.iloc[:300][[c for c in ple_cols if c.startswith("charges")]].to_numpy()
    assert train.min() >= 0 and train.max() <= 1  # training rows stay inside the edges
    # each row: a run of ones, one fraction, then zeros (monotone non-increasing)
    assert np.all(np.diff(train, axis=1) <= 1e-12)
    assert "contract" in out.columns and "senior" in out.columns
