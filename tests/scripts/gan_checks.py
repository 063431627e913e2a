"""Run in a subprocess by tests/test_generative.py (one backend per process): one GAN step
of each kind on fixed weights, and which weights each moved; writes <out>.npy (samples of
the initial generator) and <out>.json."""

import json
import sys

import numpy as np

from keras_cases import runtime
from keras_cases.generative import gan

out = sys.argv[1]
shape, latent = (8, 8, 1), 16
G, D, S = gan.build_gan(shape, latent)
runtime.init_weights(G, 3)
runtime.init_weights(D, 4)
z = np.random.default_rng(0).normal(size=(6, latent)).astype("float32")
samples = G.predict(z, verbose=0)


def snap(m):
    return [np.array(w) for w in m.get_weights()]


def moved(a, b):
    return [bool(np.any(x != y)) for x, y in zip(a, b)]


rng = np.random.default_rng(1)
real = rng.random((16, *shape)).astype("float32")
g0, d0 = snap(G), snap(D)
gan.discriminator_step(G, D, real, rng, latent)
g1, d1 = snap(G), snap(D)
gan.generator_step(D, S, 16, rng, latent)
g2, d2 = snap(G), snap(D)
np.save(out + ".npy", samples)
with open(out + ".json", "w") as f:
    json.dump(
        {
            "d_step_moves_d": moved(d0, d1),
            "d_step_moves_g": moved(g0, g1),
            "g_step_moves_g": moved(g1, g2),
            "g_step_moves_d": moved(d1, d2),
            "n_trainable_g": len(G.trainable_weights),
            "n_trainable_d": len(D.trainable_weights),
        },
        f,
    )
