"""Compress a run on the active backend, load the result the way `serve` does, and print
what tests/test_compress.py checks, as one JSON line.

    python compress_check.py TEACHER OUT METHOD [compress flags...]
"""

import json
import sys

import numpy as np

from keras_cases import cli
from keras_cases.compress import compress_main
from keras_cases.compress.cases import SpamCase
from keras_cases.runs import read_json
from keras_cases.serve import load_predictor

teacher, out, method, *flags = sys.argv[1:]
assert cli.run(compress_main, ["--run", teacher, "--method", method, "--out", out, "-v", "0", *flags]) == 0
pred = load_predictor(out)  # the compressed run, as serve loads it
metrics, config, record = (read_json(f"{out}/{n}.json") for n in ("metrics", "config", "run"))
found = {
    "case": record["case"],
    "config_teacher": config["teacher_run"],
    "config_method": config["method"],
    "params": pred.model.count_params(),
    "teacher_params": metrics["compress"]["original"]["parameters"],
    "pr_auc": metrics["pr_auc"],
    "agreement": metrics["compress"]["agreement"],
    "predicted": [p["label"] for p in pred.predict([{"text": "Free entry! Text WIN to 80086"}, {"text": "see you"}])],
    "labels": [pred.negative, pred.positive],
}
if method == "int8":
    found["kernel_dtypes"] = {
        w.path: str(w.dtype)
        for lay in pred.model.layers
        for w in lay.weights
        if w.path.endswith(("kernel", "embeddings"))
    }
    # the float teacher and the quantized run on the same test texts, outside compress
    case = SpamCase(__import__("pathlib").Path(teacher))
    x = case.x[2]
    p_float = case.model.predict(x, batch_size=256, verbose=0).ravel()
    p_int8 = pred.model.predict(x, batch_size=256, verbose=0).ravel()
    found["max_abs_diff"] = float(np.max(np.abs(p_float - p_int8)))
    found["same_label"] = float(np.mean((p_float >= pred.threshold) == (p_int8 >= pred.threshold)))
if method == "prune":
    found["zero_fraction"] = {
        w.path: float(np.mean(np.asarray(w.numpy()) == 0)) for w in pred.model.trainable_weights if len(w.shape) >= 2
    }
print("RESULT " + json.dumps(found))
