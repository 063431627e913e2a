"""Run in a subprocess by tests/test_generative.py (one backend per process): the U-Net's
noise predictions from fixed weights (<out>.npy, compared across backends), and the same
seed twice: one short `fit` on digits, then DDIM samples, each done twice from scratch
(<out>.json: whether weights and samples came out identical)."""

import json
import sys
import types

import numpy as np

from keras_cases import runtime
from keras_cases.generative import diffusion

out = sys.argv[1]
rng = np.random.default_rng(0)
shape = (8, 8, 1)
unet = diffusion.build_unet(shape)
runtime.init_weights(unet, 3)
x_t = rng.normal(size=(4, *shape)).astype("float32")
t = np.array([[0], [10], [500], [999]], "float32")
np.save(out + ".npy", np.asarray(unet.predict_on_batch([x_t, t])))

from sklearn.datasets import load_digits  # noqa: E402

x = (load_digits().images[:, :, :, None] / 16.0).astype("float32")
args = types.SimpleNamespace(seed=5, diffusion_batch_size=64, diffusion_epochs=1, verbose=0)
alpha_bar = diffusion.noise_schedule(100)
runs = []
for _ in range(2):
    runtime.set_seed(args.seed)  # as cli.start does: Keras draws the order of batches from it
    model, _, _ = diffusion.train_diffusion(x[:256], x[256:320], args, alpha_bar)
    samples, _ = diffusion.sample(model, np.random.default_rng(11), 8, alpha_bar, 5)
    again, _ = diffusion.sample(model, np.random.default_rng(11), 8, alpha_bar, 5)
    runs.append((model.get_weights(), samples, again))
(w0, s0, a0), (w1, s1, _) = runs
with open(out + ".json", "w") as f:
    json.dump(
        {
            "same_weights": all(np.array_equal(a, b) for a, b in zip(w0, w1)),
            "same_samples_same_model": bool(np.array_equal(s0, a0)),
            "same_samples_retrained": bool(np.array_equal(s0, s1)),
            "samples_vary": float(s0.std()),
        },
        f,
    )
