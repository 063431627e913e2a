"""One backend's share of _image_runs.run_everywhere: run a case (the test's `body`), then
predict with every model it saved, and with the models the backends before it saved.

    python image_predict.py OUT BACKEND EARLIER SAVED_JSON EXTRA BODY

OUT/BACKEND/ is this backend's run (`here`); EARLIER the comma-separated backends already
done (their runs are OUT/<b>/); SAVED_JSON {saved model file: shape of the uint8 batch it
predicts on}; EXTRA "extra" on the backend that also runs the test's extra checks, else "-";
BODY the test's code, the indented body of a function that may use `here`, `out`, `extra`,
`np`, `keras`, `json`, `Path` and `sys` (and `return` early). Writes OUT/BACKEND/own.npz and
OUT/BACKEND/from_<b>.npz for every earlier b."""

import json
import sys
from pathlib import Path

import keras
import numpy as np

out, me, earlier, saved, extra, body = (
    Path(sys.argv[1]),
    sys.argv[2],
    [b for b in sys.argv[3].split(",") if b],
    json.loads(sys.argv[4]),
    sys.argv[5],
    sys.argv[6],
)
here = out / me


def run_case():
    scope = {"json": json, "sys": sys, "Path": Path, "np": np, "keras": keras, "out": out, "here": here}
    scope.update(me=me, earlier=earlier, saved=saved, extra=extra)
    exec(compile(f"def case():\n{body}\n", "<test body>", "exec"), scope)
    scope["case"]()


def predictions(root):
    res = {}
    for name, shape in saved.items():
        x = np.random.default_rng(len(name)).integers(0, 256, shape).astype("uint8")
        model = keras.saving.load_model(root / name, compile=False)
        res[name.replace("/", "|")] = np.asarray(keras.ops.convert_to_numpy(model.predict(x, verbose=0)))
    return res


run_case()
np.savez(here / "own.npz", **predictions(here))
for b in earlier:
    np.savez(here / f"from_{b}.npz", **predictions(out / b))
