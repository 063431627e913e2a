"""Run in a subprocess by tests/test_churn.py: a saved churn run's explanations on one backend
(KERAS_BACKEND). Prints one JSON line of measurements.

argv[1]: the run directory. Test customers of the case's own split are explained through
`Predictor.explain` (what serve's /explain returns), then the model is made blind to one
column (its first-layer weights zeroed) and explained again."""

import json
import sys

import numpy as np

from keras_cases import explain
from keras_cases.churn.data import Split, load_data
from keras_cases.churn.predict import Predictor

pred = Predictor(sys.argv[1])
data = load_data()
rows = data.features.iloc[Split.of(data).rows[2][:64]]
instances = json.loads(rows.to_json(orient="records"))
out = pred.explain(instances)
prob = np.array([o["prediction"]["churn_probability"] for o in out])
p0 = float(explain.scores(pred.model, pred.baseline()[None])[0])  # the baseline customer's p(churn)
sums = np.array([sum(i["attribution"] for i in o["explanation"]["items"]) for o in out])
gap = prob - p0
items = [o["explanation"]["items"] for o in out]
res = {
    "same_predictions": [o["prediction"] for o in out] == pred.predict(instances),
    "completeness_abs": float(np.abs(sums - gap).max()),
    "completeness_rel": float(np.abs(sums - gap).max() / np.abs(gap).max()),
    "max_gap": float(np.abs(gap).max()),
    "names": sorted({tuple(sorted(i["name"] for i in it)) for it in items}),
    "columns": sorted(pred.pre.columns),
    "sorted": all(all(abs(a["attribution"]) >= abs(b["attribution"]) for a, b in zip(it, it[1:])) for it in items),
    "finite": bool(all(np.isfinite(i["attribution"]) for it in items for i in it)),
    "targets": sorted({o["explanation"]["target"] for o in out}),
}

# blind the model to `contract` (its one-hot rows of every kernel that reads the features set
# to 0: the residual network's linear part and its MLP's first layer): the column it leaned on
# most now gets nothing, and the others still get something
blind = "contract"
cols = [j for j, n in enumerate(pred.pre.feature_names) if n.split("=")[0] == blind]
contract_before = max(abs(i["attribution"]) for it in items for i in it if i["name"] == blind)
n_features = len(pred.pre.feature_names)
readers = [la for la in pred.model.layers if la.get_weights() and la.get_weights()[0].shape[:1] == (n_features,)]
assert readers, "no kernel reads the features"
for dense in readers:
    w = dense.get_weights()
    w[0][cols] = 0.0
    dense.set_weights(w)
after = pred.explain(instances)
res["blind_before"] = contract_before
res["blind_after"] = max(abs(i["attribution"]) for o in after for i in o["explanation"]["items"] if i["name"] == blind)
res["others_after"] = max(abs(i["attribution"]) for o in after for i in o["explanation"]["items"] if i["name"] != blind)
print(json.dumps(res))
