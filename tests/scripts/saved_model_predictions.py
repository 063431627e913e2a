"""Load every run's model.keras on the active backend and predict on the same images.

    python saved_model_predictions.py X.npy RUNS_JSON OUT.npz

RUNS_JSON is {name: run directory}; OUT.npz gets one array of predictions per name."""

import json
import sys

import keras
import numpy as np

x = np.load(sys.argv[1])
runs = json.loads(sys.argv[2])
out = {b: keras.models.load_model(d + "/model.keras", compile=False).predict(x, verbose=0) for b, d in runs.items()}
np.savez(sys.argv[3], **out)
