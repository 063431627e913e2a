"""Studies (a) and (b) in NumPy: polynomial fits to seeded synthetic data (synthetic by
design: the truth must be known to measure bias and variance)."""

from __future__ import annotations

import warnings

import numpy as np

from keras_cases import plots

FIT_DEGREES = (1, 3, 15)


# --- (a) over- and underfitting ------------------------------------------------------
def truth_fit(x):
    return 1.5 * x**2 + 0.3 * np.sin(15 * x)


def fit_poly(x, y, degree: int):
    """Least-squares polynomial (numpy scales x to [-1, 1] inside, so high degrees stay
    well conditioned)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", getattr(getattr(np, "exceptions", np), "RankWarning", UserWarning))
        return np.polynomial.Polynomial.fit(x, y, degree)


def fit_data(seed: int, n_train=20, n_test=1000, noise=0.2):
    """Training inputs on a fixed grid over [-1, 1] (no extrapolation at test time), test
    inputs uniform on the same interval, Gaussian noise."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, n_train)
    xt = rng.uniform(-1, 1, n_test)
    return x, truth_fit(x) + noise * rng.normal(size=n_train), xt, truth_fit(xt) + noise * rng.normal(size=n_test)


def fit_errors(seeds, degrees=FIT_DEGREES) -> dict:
    """{degree: {train_mse, test_mse, max_abs_coef: [one per seed]}}."""
    per = {d: {"train_mse": [], "test_mse": [], "max_abs_coef": []} for d in degrees}
    for s in seeds:
        x, y, xt, yt = fit_data(s)
        for d in degrees:
            p = fit_poly(x, y, d)
            per[d]["train_mse"].append(float(np.mean((p(x) - y) ** 2)))
            per[d]["test_mse"].append(float(np.mean((p(xt) - yt) ** 2)))
            per[d]["max_abs_coef"].append(float(np.max(np.abs(p.convert().coef))))  # power basis in x
    return per


def plot_fit(seed, path, degrees=FIT_DEGREES):
    x, y, _, _ = fit_data(seed)
    grid = np.linspace(-1, 1, 400)
    fits = {f"degree {d}": fit_poly(x, y, d)(grid) for d in degrees}
    return plots.fitted_curves(
        grid, truth_fit(grid), x, y, fits, path, title="underfit (1), about right (3), overfit (15)"
    )


# --- (b) bias and variance ----------------------------------------------------------
def truth_biasvar(x):
    return np.sin(2 * np.pi * x) + 0.5 * np.cos(4 * np.pi * x)


def bias_variance(truth, degree: int, n_train: int, noise: float, n_sets: int, rng, x_test=None) -> dict:
    """Refit a degree-`degree` polynomial on `n_sets` independent training sets (x uniform
    on [0, 1], y = truth(x) + N(0, noise^2)) and decompose its error at fixed test inputs:

    bias^2   = mean over x of (mean prediction - truth)^2
    variance = mean over x of the variance of the predictions across training sets
    expected test error = mean of (prediction - fresh noisy target)^2, measured directly;
    in expectation it equals bias^2 + variance + noise^2."""
    x_test = np.linspace(0.02, 0.98, 200) if x_test is None else x_test
    preds = np.empty((n_sets, len(x_test)))
    for r in range(n_sets):
        x = (np.arange(n_train) + rng.uniform(size=n_train)) / n_train  # one point per 1/n bin
        preds[r] = fit_poly(x, truth(x) + noise * rng.normal(size=n_train), degree)(x_test)
    f = truth(x_test)
    y_new = f + noise * rng.normal(size=preds.shape)
    bias2 = float(np.mean((preds.mean(0) - f) ** 2))
    variance = float(np.mean(preds.var(0)))
    return {
        "bias2": bias2,
        "variance": variance,
        "noise": noise**2,
        "sum": bias2 + variance + noise**2,
        "test_error": float(np.mean((preds - y_new) ** 2)),
    }


def biasvar_errors(seeds, degrees=range(1, 21), n_train=30, noise=0.3, n_sets=200) -> dict:
    """{degree: {bias2, variance, noise, sum, test_error: [one per seed]}}."""
    out = {}
    for d in degrees:
        runs = [
            bias_variance(truth_biasvar, d, n_train, noise, n_sets, np.random.default_rng(1000 * s + d)) for s in seeds
        ]
        out[d] = {k: [r[k] for r in runs] for k in runs[0]}
    return out
