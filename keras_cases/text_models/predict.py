"""Scoring raw text with a saved run: `Predictor` (behind `predict` and `serve`) loads
model.keras plus vocab.json plus decision.json; `predict_main` is the `predict` command."""

from __future__ import annotations

import argparse
import sys
import unicodedata

import numpy as np
from keras import layers

from keras_cases import UserError, runtime
from keras_cases.data.text import _TOKEN, Vocabulary, tokenize  # _TOKEN: the tokenizer's pattern
from keras_cases.runs import atomic, load_model, load_run, output_file, read_json, run_case
from keras_cases.text_models import NEURAL, REPORTED
from keras_cases.text_models import models as _models  # noqa: F401  (registers the masking layers for loading)
from keras_cases.text_models.training import score

IG_STEPS = 128  # Gauss-Legendre nodes; a quick spam run's bilstm misses completeness by 0.02% (64: 0.7%)
IG_TEXTS = 8  # texts per gradient call (IG_STEPS * IG_TEXTS embedded texts at once)


class Predictor:
    """A saved text run, ready to score raw texts (used by `predict` and by `serve`)."""

    def __init__(self, run_dir, case: str, model: str | None = None):
        self.case = case
        self.dir = load_run(run_dir, ("model.keras", "vocab.json", "decision.json"))
        if (self.dir / "run.json").exists() and run_case(self.dir) != case:
            raise UserError(f"{self.dir} is a {run_case(self.dir)} run, not a {case} run")
        self.vocab = Vocabulary.load(self.dir / "vocab.json")
        decision = _decision(self.dir / "decision.json")
        self.name = model or decision["model"]
        path = self.dir / "model.keras" if model is None else self.dir / "models" / f"{model}.keras"
        if not path.is_file() or self.name not in decision["thresholds"]:
            raise UserError(
                f"{self.dir} has no saved model {self.name!r}; saved: {', '.join(sorted(decision['thresholds']))}"
            )
        self.threshold = float(decision["thresholds"][self.name])
        self.objective = decision.get("objective")
        self.negative, self.positive = decision["labels"]
        # compile=False: scoring needs no optimizer, and the saved training config says
        # jit_compile=True when saved on JAX, which on torch means torch.compile (minutes)
        with runtime.without_tensorflow():  # a Bidirectional layer would import it
            self.model = load_model(path)
        self._check_fits(path)
        self._logits = None  # the model without its sigmoid, built on the first explain()

    def _check_fits(self, path):
        """The vocabulary is the one this model was trained with (ids and length fit it)."""
        shape = self.model.input_shape
        if not (isinstance(shape, tuple) and len(shape) == 2 and shape[1] in (None, self.vocab.max_len)):
            raise UserError(
                f"{path} does not take the token ids of {self.dir / 'vocab.json'} "
                f"(input {shape}, vocabulary length {self.vocab.max_len})"
            )
        embed = next((lay for lay in self.model.layers if isinstance(lay, layers.Embedding)), None)
        if embed is not None and embed.input_dim < len(self.vocab):
            raise UserError(
                f"{self.dir / 'vocab.json'} has {len(self.vocab)} tokens but {path} "
                f"knows {embed.input_dim}: they are not from the same run"
            )

    def scores(self, texts) -> np.ndarray:
        if len(texts) == 0:
            raise UserError("no texts to score")
        return score(self.model, self.vocab.encode([str(t) for t in texts]))

    def labels(self, scores) -> list[str]:
        return [self.positive if s >= self.threshold else self.negative for s in scores]

    def fields(self) -> list[dict]:
        example = self.vocab.meta.get("example")
        if not isinstance(example, str) or not example.strip():
            example = "Free entry! Text WIN to 80086"
        return [{"name": "text", "kind": "text", "example": example}]

    def outputs(self) -> dict:
        """What `predict` returns per instance, for the API schema (see serve.output_model)."""
        return {"label": (self.negative, self.positive), f"{self.positive}_probability": float}

    def predict(self, instances: list[dict]) -> list[dict]:
        s = self.scores([i["text"] for i in instances])
        if not np.isfinite(s).all():
            raise UserError("the model gave no finite score for some texts")
        s = np.clip(s, 0.0, 1.0)
        return [{"label": lab, f"{self.positive}_probability": float(v)} for v, lab in zip(s, self.labels(s))]

    def explain(self, instances: list[dict], steps: int = IG_STEPS) -> list[dict]:
        """predict() plus, per text, integrated gradients of the logit of the positive class's
        probability over the token embeddings (keras_cases.explain.token_attributions): one item
        per token of the raw text, in order, as written there; tokens past the model's length get 0."""
        from keras_cases import explain

        prediction = self.predict(instances)
        texts = [str(i["text"]) for i in instances]
        if self._logits is None:
            self._logits = explain.logits(self.model)
        ids = self.vocab.encode(texts)
        attr, _, _ = explain.token_attributions(
            self._logits, ids, self._embedding(), steps=steps, batch_size=steps * IG_TEXTS
        )
        method = (
            f"integrated gradients over the token embeddings ({steps} steps, baseline: all-zero embedding "
            f"vectors), logit of the {self.positive} probability, summed over the embedding dimension per token"
        )
        return [
            {
                "prediction": pred,
                "explanation": {
                    "method": method,
                    "target": self.positive,
                    "items": token_items(text, row),
                    "heatmap": [],
                },
            }
            for pred, text, row in zip(prediction, texts, attr)
        ]

    def _embedding(self) -> str:
        embed = next((lay for lay in self.model.layers if isinstance(lay, layers.Embedding)), None)
        if embed is None:
            raise UserError(f"{self.name} has no embedding layer to explain its tokens at")
        return embed.name

    def info(self) -> dict:
        m = read_json(self.dir / "metrics.json") if (self.dir / "metrics.json").exists() else {}
        models = m.get("models")
        per = models.get(self.name) if isinstance(models, dict) else None
        per = per if isinstance(per, dict) else {}
        return {
            "case": self.case,
            "model": self.name,
            "params": self.model.count_params(),
            "threshold": self.threshold,
            "objective": self.objective,
            "labels": [self.negative, self.positive],
            "dataset": m.get("dataset"),
            "trained_on_backend": m.get("backend"),
            "metrics": {k: per[k] for k in REPORTED if k in per},
        }


def surface_tokens(text: str) -> list[str]:
    """The tokens of `text` as written there (case kept; `tokenize` lower-cases them and
    writes long numbers as their digit shape), one per token of `tokenize(text)`."""
    found = _TOKEN.findall(unicodedata.normalize("NFKC", str(text)))
    return found if len(found) == len(tokenize(text)) else tokenize(text)


def token_items(text: str, attributions) -> list[dict]:
    """One {"name", "attribution"} per token of the raw text, in order; the model reads the
    first len(attributions) tokens, the rest get 0."""
    words = surface_tokens(text)
    a = np.asarray(attributions, "float64")[: len(words)]
    return [{"name": w, "attribution": float(a[k]) if k < len(a) else 0.0} for k, w in enumerate(words)]


def _decision(path) -> dict:
    """decision.json of a text run: the chosen model, its threshold per saved model, the labels."""
    d = read_json(path)
    thresholds, labels = d.get("thresholds"), d.get("labels")
    if not isinstance(d.get("model"), str):
        problem = 'no "model" name'
    elif not isinstance(thresholds, dict) or not all(_probability(v) for v in thresholds.values()):
        problem = 'no "thresholds" table of numbers between 0 and 1'
    elif not (isinstance(labels, list) and len(labels) == 2 and all(isinstance(x, str) for x in labels)):
        problem = 'no "labels" pair of names'
    else:
        return d
    raise UserError(f"{path} is not a text run's decision file: {problem}")


def _probability(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1


def _utf8_lines(path) -> list[str]:
    """The non-empty lines of a UTF-8 text file (--file); anything else is a UserError."""
    from pathlib import Path

    p = Path(path).expanduser()
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read --file {p}: {e.strerror or e}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"--file {p} is not UTF-8 text (byte {e.start} is {raw[e.start]:#04x}): save it as UTF-8")
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def predict_main(case: str, argv) -> int:
    p = argparse.ArgumentParser(
        prog=f"python -m keras_cases.{case} predict",
        description="Score raw texts with a saved run; prints label<TAB>score<TAB>text per line.",
    )
    p.add_argument("texts", nargs="*", help="texts to score (quote each one)")
    p.add_argument("--run", required=True, help=f"a run directory written by the {case} case")
    p.add_argument("--file", default=None, help="a UTF-8 file with one text per line")
    p.add_argument(
        "--model", default=None, choices=NEURAL, help="which saved network (default: the one chosen on validation)"
    )
    p.add_argument("--output", default=None, help="also write the scores to this CSV")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    args = p.parse_args(argv)
    output = output_file(args.output, args.overwrite) if args.output else None
    texts = list(args.texts)
    if args.file:
        texts += _utf8_lines(args.file)
    if not texts:
        raise UserError("nothing to score: give texts as arguments or --file PATH")
    pred = Predictor(args.run, case, args.model)
    prob = pred.scores(texts)
    labels = pred.labels(prob)
    for t, s, lab in zip(texts, prob, labels):
        print(f"{lab}\t{s:.4f}\t{t}")
    if output:
        import pandas as pd

        with atomic(output) as tmp:
            pd.DataFrame({"text": texts, "score": prob, "predicted": labels}).to_csv(tmp, index=False)
    print(
        f"{len(texts)} text(s) scored with {pred.name} (threshold {pred.threshold:.3f} for {pred.objective})",
        file=sys.stderr,
    )
    return 0
