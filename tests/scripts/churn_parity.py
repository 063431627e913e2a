"""Run in a subprocess by tests/test_churn.py (one backend per process)."""

import glob
import os
import sys

import keras
import numpy as np

from keras_cases import churn, runtime
from keras_cases.data.tabular import TabularPreprocessor

mode, out = sys.argv[1], sys.argv[2]
b = runtime.backend()
d = churn.load_data()
x = TabularPreprocessor.infer_and_fit(d.features).transform(d.features.iloc[:256])
y = d.y[:256].astype("float32")[:, None]
if mode == "compute":
    model = churn.build_model(x.shape[1])
    runtime.init_weights(model, 7)
    bce = keras.losses.BinaryCrossentropy()
    loss, grads = runtime.value_and_grad(lambda: bce(y, model(x, training=False)), model.trainable_variables)
    model.save(os.path.join(out, b + ".keras"))
    np.savez(
        os.path.join(out, b + ".npz"),
        p=model.predict(x, verbose=0),
        loss=loss,
        **{f"g{i}": g for i, g in enumerate(grads)},
    )
else:
    preds = {
        os.path.basename(f)[:-6]: keras.models.load_model(f, compile=False).predict(x, verbose=0)
        for f in sorted(glob.glob(os.path.join(out, "*.keras")))
    }
    np.savez(os.path.join(out, b + "_loaded.npz"), **preds)
