"""The churn models: a baseline MLP, the improved MLP and the residual network (functional
Keras), their training, and the scikit-learn references the networks are measured against."""

from __future__ import annotations

import keras

from keras_cases import runtime
from keras_cases.callbacks import ThresholdTuner, resumable, tensorboard
from keras_cases.data import batches
from keras_cases.evaluation import binary_metrics, choose_threshold, class_weights


# --- networks -----------------------------------------------------------------------
def build_baseline(n_features: int) -> keras.Model:
    inputs = keras.Input((n_features,), name="features")
    x = keras.layers.Dense(32, activation="relu")(inputs)
    x = keras.layers.Dense(16, activation="relu")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="churn")(x)
    return keras.Model(inputs, outputs, name="baseline_mlp")


def build_model(n_features: int, width: int = 64, dropout: float = 0.3) -> keras.Model:
    inputs = keras.Input((n_features,), name="features")
    x = keras.layers.Dense(width, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(width // 2, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="churn")(x)
    return keras.Model(inputs, outputs, name="improved_mlp")


def build_residual(n_features: int, width: int = 64, dropout: float = 0.3) -> keras.Model:
    """The improved MLP as a residual on a linear model (the combined actuarial neural
    network of Wuthrich & Merz 2019): logit = linear(x) + MLP(x). `start_at_linear` sets the
    linear part to a fitted logistic regression and the MLP's output to zero, so training
    starts from the reference and early stopping on validation keeps only what the MLP adds."""
    inputs = keras.Input((n_features,), name="features")
    linear = keras.layers.Dense(1, name="linear")(inputs)
    x = keras.layers.Dense(width, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(width // 2, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    residual = keras.layers.Dense(1, name="residual")(x)
    logit = keras.layers.Add(name="logit")([linear, residual])
    outputs = keras.layers.Activation("sigmoid", name="churn")(logit)
    return keras.Model(inputs, outputs, name="residual_mlp")


def start_at_linear(lr):
    """For `train(start=...)`: the residual network's linear part := the fitted scikit-learn
    logistic regression `lr`, its MLP's output kernel := 0 (the network starts as `lr`)."""

    def start(model):
        model.get_layer("linear").set_weights([lr.coef_.T.astype("float32"), lr.intercept_.astype("float32")])
        kernel, bias = model.get_layer("residual").get_weights()
        model.get_layer("residual").set_weights([0 * kernel, 0 * bias])

    return start


def compile_model(model, learning_rate=1e-3):
    """Adam, binary cross-entropy, ROC-AUC; 32 steps per compiled call on JAX and TensorFlow
    (measured: `runtime.STEPS_PER_EXECUTION`), one on PyTorch."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
        steps_per_execution=runtime.steps_per_execution("dense"),
    )
    return model


# --- training -----------------------------------------------------------------------
def train(
    model,
    x_tr,
    y_tr,
    x_val,
    y_val,
    *,
    epochs,
    batch_size,
    seed,
    verbose,
    objective=None,
    weighted=False,
    patience=10,
    extra_callbacks=(),
    start=None,
):
    """Fit with NumPy-shuffled batches; returns (history dict, ThresholdTuner or None).
    `extra_callbacks` run after the case's own (e.g. the benchmark's time-to-quality watch);
    `start(model)`, when given, sets weights after the seeded initialisation."""
    runtime.init_weights(model, seed)
    if start is not None:
        start(model)
    data = batches(x_tr, y_tr, batch_size, seed, class_weights(y_tr) if weighted else None)
    callbacks, tuner = [], None
    if objective is not None:
        callbacks += [
            keras.callbacks.EarlyStopping("val_auc", mode="max", patience=patience, restore_best_weights=True),
            keras.callbacks.ReduceLROnPlateau(
                "val_auc", mode="max", factor=0.5, patience=max(patience // 3, 1), min_lr=1e-5
            ),
        ]
        tuner = ThresholdTuner(x_val, y_val, objective)
        callbacks.append(tuner)  # after EarlyStopping: it re-chooses on the restored weights
    callbacks += [*extra_callbacks, *tensorboard(f"{model.name}_seed{seed}")]
    hist = model.fit(
        data,
        validation_data=(x_val, y_val),
        epochs=epochs,
        verbose=verbose,
        callbacks=resumable(f"{model.name}_seed{seed}", callbacks, data),
    )
    return hist.history, tuner


def improved(n_features: int) -> keras.Model:
    """The improved MLP, compiled with its learning rate."""
    return compile_model(build_model(n_features), learning_rate=3e-3)


def residual(n_features: int) -> keras.Model:
    """The residual network, compiled like the improved MLP."""
    return compile_model(build_residual(n_features), learning_rate=3e-3)


NAMES = {"mlp": "improved MLP", "residual": "residual network"}  # the reports' names


def network(kind: str, x_tr, y_tr):
    """(compiled network, its `start` for `train`): the improved MLP ("mlp", start None) or
    the residual network ("residual") started at the logistic regression fit on (x_tr, y_tr)."""
    if kind == "residual":
        return residual(x_tr.shape[1]), start_at_linear(fit_logistic_regression(x_tr, y_tr))
    return improved(x_tr.shape[1]), None


def fit_improved(model, xs, ys, args, objective, seed, start=None):
    """Train the improved MLP (or the residual network, with its `start`) on (train,
    validation, ...) parts: class weights, early stopping on validation ROC-AUC and the
    threshold chosen on validation. Returns (history, threshold)."""
    fit = dict(epochs=args.epochs, batch_size=args.batch_size, seed=seed, verbose=args.verbose, start=start)
    hist, tuner = train(
        model, xs[0], ys[0], xs[1], ys[1], objective=objective, weighted=True, patience=args.patience, **fit
    )
    return hist, tuner.threshold


def run_seed(seed, xs, ys, args, objective, kind="residual"):
    """Train the baseline MLP and the network `kind` ("residual" or "mlp", see `network`) for
    one seed; returns everything the report needs."""
    (x_tr, x_val, x_te), (y_tr, y_val, y_te) = xs, ys
    runtime.set_seed(seed)
    fit = dict(epochs=args.epochs, batch_size=args.batch_size, seed=seed, verbose=args.verbose)
    base = compile_model(build_baseline(x_tr.shape[1]))
    print(f"[seed {seed}] baseline MLP ({base.count_params()} parameters)")
    base_hist, _ = train(base, x_tr, y_tr, x_val, y_val, **fit)
    model, start = network(kind, x_tr, y_tr)
    print(f"[seed {seed}] {NAMES[kind]} ({model.count_params()} parameters), objective {objective}")
    hist, threshold = fit_improved(model, xs, ys, args, objective, seed, start)
    p_base = base.predict(x_te, verbose=0).ravel()
    p = model.predict(x_te, verbose=0).ravel()
    return {
        "metrics": {**binary_metrics(y_te, p, threshold), "baseline": binary_metrics(y_te, p_base, 0.5)},
        "model": model,
        "name": NAMES[kind],
        "history": {"baseline": base_hist, kind: hist},
        "p_test": p,
        "p_test_baseline": p_base,
        "p_val": model.predict(x_val, verbose=0).ravel(),
        "threshold": threshold,
        "epochs_trained": len(hist["loss"]),
    }


# --- the scikit-learn references ----------------------------------------------------
def fit_logistic_regression(x_tr, y_tr):
    """The reference model itself: class-balanced logistic regression on the encoded features."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, class_weight="balanced").fit(x_tr, y_tr)


def logistic_regression(x_tr, y_tr, x_val, y_val, x_te, objective):
    """The scikit-learn reference on the same features, threshold chosen the same way."""
    lr = fit_logistic_regression(x_tr, y_tr)
    t, _ = choose_threshold(y_val, lr.predict_proba(x_val)[:, 1], objective)
    return lr.predict_proba(x_te)[:, 1], t


def hist_gradient_boosting(x_tr, y_tr, x_val, y_val, x_te, objective, seed):
    """The tree-ensemble reference: HistGradientBoosting with early stopping on its own
    internal split of the training fold, threshold chosen on validation like the others."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    hgb = HistGradientBoostingClassifier(learning_rate=0.05, max_iter=500, early_stopping=True, random_state=seed).fit(
        x_tr, y_tr
    )
    t, _ = choose_threshold(y_val, hgb.predict_proba(x_val)[:, 1], objective)
    return hgb.predict_proba(x_te)[:, 1], t
