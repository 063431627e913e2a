"""Run in a subprocess by tests/test_churn.py (one backend per process)."""

import keras
import numpy as np

from keras_cases import churn, runtime
from keras_cases.data import batches

rng = np.random.default_rng(0)
x = rng.normal(size=(600, 12)).astype("float32")
y = (x[:, 0] + 0.5 * rng.normal(size=600) > 0).astype("float32")
weights = {}
for spe in (1, None):  # None: the case's measured default
    keras.utils.set_random_seed(5)  # the same dropout masks in both runs
    model = churn.compile_model(churn.build_model(12))
    if spe == 1:
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", steps_per_execution=1)
    runtime.init_weights(model, 3)
    model.fit(batches(x, y, 64, seed=1), epochs=3, verbose=0)  # 10 batches: the last one partial
    weights[spe] = [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]
    print(spe, model.steps_per_execution)
for a, b in zip(weights[1], weights[None]):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
print("default", runtime.steps_per_execution("dense"))
