"""Run in a subprocess by tests/test_churn.py (one backend per process): the residual network
started at a fitted logistic regression predicts exactly what it does, and training from
there (early stopping on validation ROC-AUC) keeps a validation score the regression reached."""

import types

import numpy as np
from sklearn.metrics import roc_auc_score

from keras_cases import runtime
from keras_cases.churn import models
from keras_cases.churn.data import Split, load_data
from keras_cases.evaluation import parse_objective

s = Split.of(load_data())
(x_tr, x_val, x_te), (y_tr, y_val, _) = s.xs, [y.astype("float32") for y in s.ys]
lr = models.fit_logistic_regression(x_tr, y_tr)
model = models.residual(x_tr.shape[1])
runtime.init_weights(model, 0)
unstarted = model.predict(x_te, verbose=0).ravel()
models.start_at_linear(lr)(model)
started = model.predict(x_te, verbose=0).ravel()
want = lr.predict_proba(x_te)[:, 1]
print("start gap", np.abs(started - want).max(), "unstarted gap", np.abs(unstarted - want).max())
assert np.abs(started - want).max() < 1e-5
assert np.abs(unstarted - want).max() > 0.05  # the start, not the initialisation, made it the regression
args = types.SimpleNamespace(epochs=4, batch_size=256, verbose=0, patience=2)
start = models.start_at_linear(lr)
models.fit_improved(model, (x_tr, x_val), (y_tr, y_val), args, parse_objective("recall>=0.8"), 0, start)
val_lr = roc_auc_score(y_val, lr.predict_proba(x_val)[:, 1])
val_net = roc_auc_score(y_val, model.predict(x_val, verbose=0).ravel())
print("validation ROC-AUC: regression", val_lr, "trained residual network", val_net)
assert val_net > val_lr - 0.002  # it starts at the regression and keeps its best validation epoch
