"""Sample quality: the Frechet distance between Gaussians fitted to features of real test
images and of samples, in the penultimate layer of a small classifier trained here on the
same training split (FID's recipe with a project-trained network instead of Inception, so
it is computable offline). The real-vs-real distance (test vs validation images) is the
floor beside it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from keras_cases import runtime
from keras_cases.callbacks import resumable
from keras_cases.data import batches
from keras_cases.evaluation import frechet_distance


def feature_extractor(d, x_tr, x_val, args):
    """A small CNN classifier trained on the same split; its penultimate layer is the
    feature space of the Frechet distance."""
    inputs = keras.Input(x_tr.shape[1:])
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    feats = layers.Dense(64, name="features")(x)  # pre-activation: no dead, constant dims
    clf = keras.Model(inputs, layers.Dense(d.n_classes, activation="softmax")(layers.ReLU()(feats)))
    runtime.init_weights(clf, args.seed + 7)
    clf.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    data = batches(x_tr, d.y_train, 128, args.seed)
    clf.fit(
        data,
        validation_data=(x_val, d.y_val),
        epochs=2 if args.quick else 8,
        verbose=0,
        callbacks=resumable(f"feature_classifier_seed{args.seed}", [], data),
    )
    acc = float(clf.evaluate(x_val, d.y_val, verbose=0)[1])
    extractor = keras.Model(inputs, feats)
    f_tr = extractor.predict(x_tr, verbose=0)
    mu, sd = f_tr.mean(0), f_tr.std(0) + 1e-6

    def features(x):  # standardised with training-image statistics: distances are scale-free
        return (extractor.predict(x, verbose=0) - mu) / sd

    return features, acc


@dataclass
class Quality:
    """The yardstick every model's samples are measured with: `n` test images' features."""

    features: Callable
    f_test: np.ndarray
    n: int
    floor: float  # real test vs real validation images
    classifier_accuracy: float

    def distance(self, samples) -> float:
        return frechet_distance(self.f_test, self.features(samples))


def sample_quality(images, args) -> Quality:
    n = min(len(images.test), len(images.val), 1000)
    features, acc = feature_extractor(images.d, images.train, images.val, args)
    f_test = features(images.test[:n])
    return Quality(features, f_test, n, frechet_distance(f_test, features(images.val[:n])), acc)
