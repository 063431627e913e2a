"""Run in a subprocess by tests/test_text.py (one backend per process)."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from keras_cases import cli, runtime, spam
from keras_cases.data.text import Vocabulary
from keras_cases.text_models import NEURAL
from keras_cases.text_models.models import build_model, compile_model
from keras_cases.text_models.predict import Predictor
from keras_cases.text_models.training import score, train

run, fit = Path(sys.argv[1]), sys.argv[2] == "train"
runtime.set_threads(1)  # as the cases do: small models, busy CPU
res = {"backend": runtime.backend(), "trained": {}, "masked": {}, "loaded": {}}
probe = ["Free entry! Text WIN to 80086 now!!", "ok see you at 7", "", "zebra"]


def masking(model, vocab):  # scores of the probe, padded; and of probe[0] with no padding
    alone = np.array([vocab.ids(probe[0])], "int32")
    assert 0 < alone.shape[1] < vocab.max_len
    return {
        "padded": score(model, vocab.encode(probe)).tolist(),
        "unpadded": float(model.predict(alone, verbose=0)[0, 0]),
    }


# the quick run's models (saved on SOURCE) load here, score its test set the same, and
# padding does not change their answers
scores = pd.read_csv(run / "test_scores.csv", keep_default_na=False).head(256)
for k in NEURAL:
    pred = Predictor(run, "spam", k)
    res["loaded"][k] = {
        "diff": float(np.abs(pred.scores(scores["text"].tolist()) - scores[k]).max()),
        **masking(pred.model, pred.vocab),
    }

# every family trains one epoch on a small slice here (on SOURCE the quick run just did);
# the stacked variants are built and masked
d = spam.load_data()
idx = np.r_[np.flatnonzero(d.y == 1)[:24], np.flatnonzero(d.y == 0)[:72]]
texts, y = [d.texts[i] for i in idx], d.y[idx].astype("float32")
vocab = Vocabulary.fit(texts, min_count=1, max_len=24)
x = vocab.encode(texts)
for kind in NEURAL:
    if fit:
        m = compile_model(build_model(kind, len(vocab), vocab.max_len))
        res["trained"][kind] = train(
            m, x[::2], y[::2], x[1::2], y[1::2], epochs=1, batch_size=16, seed=0, verbose=0, objective="f1"
        )[0]["loss"]
    m = build_model(kind, len(vocab), vocab.max_len, stacked=True)
    runtime.init_weights(m, 1)
    res["masked"][kind + "_stacked"] = masking(m, vocab)

# and the predict command reads raw text
res["predict_rc"] = cli.run(
    spam.main, ["predict", "--run", str(run), "Free entry! Text WIN to 80086", "Are we still on for lunch?"]
)
res["modules"] = sorted(m for m in ("tensorflow", "torch", "jax") if m in sys.modules)
print("RESULT" + json.dumps(res))
