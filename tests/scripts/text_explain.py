"""Run in a subprocess by tests/test_text.py: token attributions of a saved spam run on one
backend (KERAS_BACKEND). Prints one JSON line of measurements.

argv[1]: the run directory. The transformer (padding masked by ids it reads itself) and the
conv1d network (mask_zero on the embedding) explain six test texts: integrated gradients over
the embedding output add up to f(text) - f(zero embeddings), padding gets nothing, and
`Predictor.explain` (serve's /explain) gives one item per token of the raw text. The
transformer is explained in logit space (explain.logits, what Predictor.explain does)."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from keras_cases import explain, runtime
from keras_cases.text_models.predict import Predictor, surface_tokens

runtime.set_threads(1)
run = Path(sys.argv[1])
scores = pd.read_csv(run / "test_scores.csv", keep_default_na=False)
spam = scores[scores["label"] == "spam"]["text"].tolist()[:3]
texts = [*spam, *scores[scores["label"] == "ham"]["text"].tolist()[:2], "Call 08712460324 NOW to claim your £1000"]
res = {}
for kind in ("transformer", "conv1d"):  # the transformer's logit (as explain() does), conv1d's probability
    pred = Predictor(run, "spam", kind)
    ids = pred.vocab.encode(texts)
    model = explain.logits(pred.model) if kind == "transformer" else pred.model
    attr, s, s0 = explain.token_attributions(model, ids, steps=64, batch_size=64 * 8)
    gap = s - s0
    p = 1 / (1 + np.exp(-s)) if kind == "transformer" else s
    res[kind] = {
        "scores_match": float(np.abs(p - pred.scores(texts)).max()),
        "completeness_rel": float(np.abs(attr.sum(1) - gap).max() / np.abs(gap).max()),
        "max_gap": float(np.abs(gap).max()),
        "padding": float(np.abs(attr[ids == 0]).max()),
        "real": float(np.abs(attr[ids != 0]).max()),
    }
pred = Predictor(run, "spam", "conv1d")
out = pred.explain([{"text": t} for t in texts[-2:]], steps=16)
res["names"] = [[i["name"] for i in o["explanation"]["items"]] for o in out]
res["surface"] = [surface_tokens(t) for t in texts[-2:]]
res["same_predictions"] = [o["prediction"] for o in out] == pred.predict([{"text": t} for t in texts[-2:]])
res["target"] = out[0]["explanation"]["target"]
res["heatmap"] = out[0]["explanation"]["heatmap"]
print(json.dumps(res))
