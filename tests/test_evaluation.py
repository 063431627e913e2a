"""Threshold objectives and the ThresholdTuner callback on hand-made scores with known answers."""

import numpy as np
import pytest

from keras_cases import UserError
from keras_cases.evaluation import binary_metrics, choose_threshold, confusion_at, parse_objective, summarize

# 5 positives, 5 negatives; the worked answers are in the comments of each case.
Y = np.array([0, 0, 0, 0, 1, 0, 1, 1, 1, 1])
P = np.array([0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.8, 0.9])

CASES = [
    # >= 4 of 5 positives caught: t=0.6 catches 4 with no false alarm (precision 1)
    ("recall>=0.8", 0.6, 1.0),
    # all 5 caught: the highest such threshold is 0.35 (6 flagged, 1 false): precision 5/6
    ("recall>=1", 0.35, 5 / 6),
    # F1 at 0.6 is 8/9, at 0.35 it is 10/11 (the best), at 0.4 it is 0.8
    ("f1", 0.35, 10 / 11),
    # precision >= 0.98 allows t=0.6 at most: recall 0.8
    ("precision>=0.98", 0.6, 0.8),
    # a missed churner costs 5, a false alarm 1: t=0.35 costs 1 in total (0.1 per example)
    ("cost:fp=1,fn=5", 0.35, 0.1),
    # the other way round: t=0.35 has one false alarm (cost 5), t=0.6 one miss (cost 1),
    # t=0.7 two misses (cost 2): 0.6 wins at 0.1 per example
    ("cost:fp=5,fn=1", 0.6, 0.1),
]


@pytest.mark.parametrize("objective,threshold,value", CASES)
def test_choose_threshold_known_answers(objective, threshold, value):
    t, v = choose_threshold(Y, P, objective)
    assert t == pytest.approx(threshold)
    assert v == pytest.approx(value)


@pytest.mark.parametrize("objective,threshold,value", CASES)
def test_threshold_tuner_callback_picks_the_same(objective, threshold, value):
    import keras

    from keras_cases.callbacks import ThresholdTuner

    # an identity model: its output is the hand-made score itself
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")(inputs))
    tuner = ThresholdTuner(P[:, None].astype("float32"), Y, objective)
    tuner.set_model(model)
    logs = {}
    tuner.on_epoch_end(0, logs)
    assert logs["val_threshold"] == pytest.approx(threshold, abs=1e-6)
    assert logs["val_objective"] == pytest.approx(value, abs=1e-6)
    tuner.on_train_end()
    assert tuner.threshold == pytest.approx(threshold, abs=1e-6)


def test_confusion_counts_match_a_direct_count():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 200), rng.random(200).round(2)  # rounded: many ties
    ts = np.linspace(0, 1, 23)
    tp, fp, fn, tn = confusion_at(y, p, ts)
    for k, t in enumerate(ts):
        pred = p >= t
        assert (tp[k], fp[k], fn[k], tn[k]) == (
            np.sum(pred & (y == 1)),
            np.sum(pred & (y == 0)),
            np.sum(~pred & (y == 1)),
            np.sum(~pred & (y == 0)),
        )


def test_binary_metrics_against_hand_counts():
    m = binary_metrics(Y, P, 0.6)
    assert m["precision"] == 1.0 and m["recall"] == 0.8 and m["accuracy"] == 0.9
    assert m["roc_auc"] == pytest.approx(24 / 25)  # one inverted pair (0.35 below 0.4)


@pytest.mark.parametrize("bad", ["recall>0.8", "recall>=1.5", "fbeta:0", "cost:fp=1", "auc"])
def test_bad_objectives_are_user_errors(bad):
    with pytest.raises(UserError):
        parse_objective(bad)


def test_summarize_mean_and_std_nested():
    mean, std = summarize([{"a": 1.0, "b": {"c": 2.0}}, {"a": 3.0, "b": {"c": 2.0}}])
    assert mean == {"a": 2.0, "b": {"c": 2.0}}
    assert std["a"] == pytest.approx(np.sqrt(2)) and std["b"]["c"] == 0.0
