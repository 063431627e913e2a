"""What compression needs from the case that wrote a run: its data (the same split, rebuilt
from the run's config.json), its test metric, its training loss and optimizer for
fine-tuning, a smaller network of the same family (a distillation student), and the
files beside model.keras that make the result a servable run of that case.

Two cases: `cifar` (image classifier, logits out, accuracy with the run's test-time
augmentation) and `spam` (text scorer, a probability out, PR-AUC and F1 at a threshold
chosen on validation for the run's objective).
"""

from __future__ import annotations

import argparse
import shutil

import numpy as np

from keras_cases import UserError
from keras_cases.runs import load_model, read_json


def case_config(d) -> dict:
    """The flags of the case run behind `d` (a compressed run keeps its teacher's)."""
    cfg = read_json(d / "config.json") if (d / "config.json").is_file() else {}
    while isinstance(cfg.get("teacher_config"), dict):
        cfg = cfg["teacher_config"]
    return cfg


class CifarCase:
    name = "cifar"
    metric = "accuracy"  # the headline test metric (higher is better)

    def __init__(self, d):
        from keras_cases import cifar

        self.dir, self.metrics, self.config = d, read_json(d / "metrics.json"), case_config(d)
        self.tta = bool(self.metrics.get("recipe_tta", True))
        self.model = load_model(d / "model.keras")
        try:  # the channels of each block, read off the network (a student's are its own)
            b = range(1, 1 + sum(lay.name.endswith("_conv1") for lay in self.model.layers))
            self.widths = tuple(self.model.get_layer(f"block{i}_conv1").filters for i in b)
        except ValueError:
            self.widths = ()  # not the CNN (a ViT): int8 and prune still apply, distill does not
        c = self.config
        ns = argparse.Namespace(
            images=c.get("images"),
            data=c.get("data", "cifar10"),
            image_size=c.get("image_size", 32),
            quick=bool(c.get("quick", False)),
        )
        self.data = cifar.load_data(ns)
        if tuple(self.model.input_shape[1:]) != self.data.x_train.shape[1:]:
            raise UserError(f"{d / 'model.keras'} does not take the run's images ({self.model.input_shape})")

    def evaluate(self, model) -> dict:
        from keras_cases.cifar import predict_logits

        logits = predict_logits(model, self.data.x_test, self.tta)
        return {"accuracy": float(np.mean(logits.argmax(1) == self.data.y_test)), "_pred": logits.argmax(1)}

    def latency_input(self, n):
        return np.resize(self.data.x_test, (n, *self.data.x_test.shape[1:]))

    def hard_targets(self):
        from keras_cases.cifar import one_hot

        return one_hot(self.data.y_train, self.data.n_classes)

    def teacher_logits(self):
        from keras_cases.cifar import predict_logits

        return np.asarray(predict_logits(self.model, self.data.x_train, self.tta), "float32")

    def train_batches(self, targets, batch_size, seed):
        from keras_cases.data import images

        return images.augmented_batches(self.data.x_train, targets, batch_size, seed)

    def loss(self):
        ls = float(self.metrics.get("recipe_label_smoothing", 0.2))
        import keras

        return keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=ls)

    def optimizer(self, lr, steps, fine_tune=False):
        import keras

        lr = lr or float(self.metrics.get("recipe_lr", 0.2)) / (10 if fine_tune else 1)
        warm = max(1, int(0.15 * steps))
        sched = keras.optimizers.schedules.CosineDecay(0.0, max(1, steps - warm), warmup_target=lr, warmup_steps=warm)
        wd = float(self.metrics.get("recipe_weight_decay", 5e-4)) or None
        return keras.optimizers.SGD(sched, momentum=0.9, nesterov=True, weight_decay=wd)

    def student(self, factor: float, seed: int, init: bool = True):
        from keras_cases.cifar import Recipe, build_model, initialise

        if not self.widths:
            raise UserError(f"{self.dir / 'model.keras'} is not the recipe's CNN: distill makes students of the CNN")
        r = Recipe(widths=tuple(max(1, round(w * factor)) for w in self.widths))
        x = self.data.x_train
        model = build_model(r, x.shape[1:], self.data.n_classes)
        if init:
            initialise(model, r, seed, x)
        return model, {"widths": list(r.widths)}

    def run_metrics(self, result: dict) -> dict:
        keep = ("dataset", "n_train", "n_val", "n_test", "class_names", "quick", "seed")
        out = {k: v for k, v in self.metrics.items() if k in keep or k.startswith("recipe_")}
        return {**out, "recipe_tta": self.tta, "test_accuracy": result["accuracy"]}

    def save_extras(self, run, result) -> None:
        pass  # model.keras and metrics.json's class names are all ImagePredictor reads


class SpamCase:
    name = "spam"
    metric = "pr_auc"

    def __init__(self, d):
        from keras_cases import spam
        from keras_cases.data.text import Vocabulary, split_unique
        from keras_cases.text_models import SPLIT_SEED
        from keras_cases.text_models.predict import Predictor

        self.dir, self.metrics, self.config = d, read_json(d / "metrics.json"), case_config(d)
        p = Predictor(d, "spam")
        self.model, self.kind, self.vocab, self.objective = p.model, p.name, p.vocab, p.objective
        self.labels = [p.negative, p.positive]
        c = self.config
        data = spam.load_data(
            c.get("data"), c.get("csv"), c.get("text_column"), c.get("label_column"), c.get("positive")
        )
        tr, va, te, _ = split_unique(data.texts, data.y, SPLIT_SEED)
        self.vocab = Vocabulary.load(d / "vocab.json")
        self.x = [self.vocab.encode([data.texts[i] for i in idx]) for idx in (tr, va, te)]
        self.y = [data.y[idx].astype("float32") for idx in (tr, va, te)]
        self.stacked = bool(c.get("stacked", False))

    def evaluate(self, model) -> dict:
        from keras_cases.evaluation import binary_metrics, choose_threshold
        from keras_cases.text_models.training import score

        p_val, p_test = score(model, self.x[1]), score(model, self.x[2])
        t, _ = choose_threshold(self.y[1], p_val, self.objective or "f1")
        m = binary_metrics(self.y[2], p_test, t)
        return {"pr_auc": m["pr_auc"], "f1": m["f1"], "_all": m, "_pred": (p_test >= t).astype(int)}

    def latency_input(self, n):
        return np.resize(self.x[2], (n, self.x[2].shape[1]))

    def hard_targets(self):
        return self.y[0][:, None]

    def teacher_logits(self):
        from keras_cases.text_models.training import score

        p = np.clip(score(self.model, self.x[0]), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p)).astype("float32")[:, None]

    def train_batches(self, targets, batch_size, seed):
        from keras_cases.data import batches
        from keras_cases.evaluation import class_weights

        return batches(self.x[0], targets, batch_size, seed, class_weights(self.y[0]))

    def loss(self):
        return "binary_crossentropy"

    def optimizer(self, lr, steps, fine_tune=False):
        import keras

        return keras.optimizers.Adam(lr or (3e-4 if fine_tune else 1e-3))

    def student(self, factor: float, seed: int, init: bool = True):
        from keras_cases import runtime
        from keras_cases.text_models import models

        v, f = len(self.vocab), factor
        size = lambda n, k=1: max(k, k * round(n * f / k))  # noqa: E731
        hp = {
            "lstm": lambda: models.build_lstm(v, self.stacked, embed_dim=size(64), units=size(64)),
            "gru": lambda: models.build_gru(v, self.stacked, embed_dim=size(64), units=size(64)),
            "bilstm": lambda: models.build_bilstm(v, self.stacked, embed_dim=size(64), units=size(32)),
            "conv1d": lambda: models.build_conv1d(v, self.stacked, embed_dim=size(64), filters=size(128)),
            "transformer": lambda: models.build_transformer(
                v, self.vocab.max_len, self.stacked, embed_dim=size(64, 4), ff_dim=size(128)
            ),
            "fasttext": lambda: models.build_fasttext(  # the teacher's bigram table (fit on its training texts)
                v, self.stacked, bigrams=self.model.get_layer("embedding").bigrams, embed_dim=size(64)
            ),
        }
        with runtime.without_tensorflow():
            model = hp[self.kind]()
        if init:
            runtime.init_weights(model, seed)
        return model, {"family": self.kind, "width_factor": f}

    def run_metrics(self, result: dict) -> dict:
        from keras_cases.text_models import REPORTED

        keep = ("dataset", "labels", "n_train", "n_val", "n_test", "vocab_size", "max_len", "objective", "seed")
        out = {k: self.metrics[k] for k in keep if k in self.metrics}
        m = result["_all"]
        return {**out, **{k: m[k] for k in REPORTED}, "best_model": self.kind, "models": {self.kind: m}}

    def save_extras(self, run, result) -> None:
        """vocab.json (the teacher's) and decision.json (the threshold chosen on validation
        for this model): what the spam Predictor reads."""
        shutil.copyfile(self.dir / "vocab.json", run.path("vocab.json"))
        t = result["_all"]["threshold"]
        run.write_json(
            "decision.json",
            {
                "model": self.kind,
                "threshold": t,
                "objective": self.objective,
                "labels": self.labels,
                "thresholds": {self.kind: t},
            },
        )


CASES = {"cifar": CifarCase, "spam": SpamCase}
