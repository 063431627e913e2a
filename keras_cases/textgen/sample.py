"""Sampling from a trained byte model: temperature, top-k and nucleus (top-p) filtering.

`filter_logits` is NumPy and model-free (tested on its own); `generate` feeds the model a
fixed-length window (the prompt and what was generated so far, right-padded), so one compiled
function serves every step: with a causal model the padding after position n - 1 cannot
change the logits at n - 1. Past `context` bytes the window slides.
"""

from __future__ import annotations

import argparse

import numpy as np

from keras_cases import UserError, cli
from keras_cases.textgen.corpus import BOUNDARY, decode, encode


def filter_logits(logits, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> np.ndarray:
    """Next-token probabilities from `logits` (..., vocab): scaled by 1/temperature, then only
    the `top_k` most likely (0: all), then the smallest set whose mass reaches `top_p`.
    Temperature 0 is greedy (all mass on the argmax)."""
    z = np.asarray(logits, "float64")
    if temperature == 0:
        p = np.zeros_like(z)
        np.put_along_axis(p, z.argmax(-1)[..., None], 1.0, axis=-1)
        return p
    z = z / temperature
    if top_k:
        kth = np.sort(z, axis=-1)[..., -min(top_k, z.shape[-1])][..., None]
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    if top_p < 1.0:
        order = np.argsort(-p, axis=-1)
        sorted_p = np.take_along_axis(p, order, -1)
        keep_sorted = np.cumsum(sorted_p, -1) - sorted_p < top_p  # always keeps the most likely
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, -1)
        p = np.where(keep, p, 0.0)
        p /= p.sum(-1, keepdims=True)
    return p


def generate(model, prompt: str, length: int, context: int, temperature=0.8, top_k=0, top_p=1.0, seed=0, stop=True):
    """`prompt` continued by up to `length` bytes (stops at a document boundary if `stop`)."""
    rng = np.random.default_rng(seed)
    tokens = [BOUNDARY, *encode(prompt).tolist()]  # a document starts after a boundary
    out = []
    for _ in range(length):
        window = tokens[-context:]
        x = np.zeros((1, context), "int32")
        x[0, : len(window)] = window
        logits = np.asarray(model.predict_on_batch(x))[0, len(window) - 1]
        t = int(rng.choice(len(logits), p=filter_logits(logits, temperature, top_k, top_p)))
        if stop and t == BOUNDARY:
            break
        tokens.append(t)
        out.append(t)
    return decode(out)


def add_sampling_flags(p) -> None:
    p.add_argument("--temperature", type=cli.nonnegative_float, default=0.8, help="0: greedy")
    p.add_argument("--top-k", type=cli.nonnegative_int, default=0, help="keep the k most likely bytes (0: all)")
    p.add_argument("--top-p", type=_top_p, default=0.95, help="nucleus sampling: the smallest set with this mass")


def _top_p(text: str) -> float:
    return cli._number(text, float, lambda v: 0 < v <= 1, "must be above 0 and at most 1")


def sample_main(argv=None) -> int:
    """`python -m keras_cases.textgen sample --run DIR --prompt "..."`."""
    from keras_cases.runs import load_run, run_case

    p = argparse.ArgumentParser(prog="keras_cases.textgen sample", description="continue a prompt with a trained run")
    p.add_argument("--run", required=True, help="a textgen run directory")
    p.add_argument("--prompt", default="", help="text to continue")
    p.add_argument("--length", type=cli.positive_int, default=200, help="bytes to generate at most")
    p.add_argument("--samples", type=cli.positive_int, default=3, help="how many continuations")
    p.add_argument("--seed", type=cli.seed, default=0)
    add_sampling_flags(p)
    args = p.parse_args(argv)
    if args.length > 10_000:
        raise UserError(f"--length {args.length}: at most 10000 bytes")
    d = load_run(args.run, ())
    if run_case(d) != "textgen":
        raise UserError(f"--run {d} is a run of the {run_case(d)!r} case, not of textgen")
    gen = Generator(d)
    for i in range(args.samples):
        text = gen.generate(args.prompt, args.length, args.temperature, args.top_k, args.top_p, args.seed + i)
        print(f"--- sample {i + 1}\n{args.prompt}{text}")
    return 0


MAX_PROMPT = 2000  # characters a served prompt may have
MAX_GENERATE = 256  # bytes a served request may ask for


class Generator:
    """A trained textgen run for `python -m keras_cases serve`: /predict continues each
    instance's prompt with the default sampling settings; /generate takes the settings."""

    case = "textgen"
    max_instances = 8  # each instance is up to PREDICT_LENGTH model calls: a request stays cheap
    PREDICT_LENGTH = 60

    def __init__(self, run_dir):
        import keras_cases.layers  # noqa: F401  (registers PositionEmbedding for loading)
        import keras_cases.textgen.models  # noqa: F401  (registers HashedNGramEmbedding)
        from keras_cases.runs import load_model, load_run, read_json

        self.dir = load_run(run_dir, ("model.keras", "textgen.json"))
        meta = read_json(self.dir / "textgen.json")
        if not isinstance(meta.get("context"), int) or meta["context"] < 1:
            raise UserError(f"{self.dir / 'textgen.json'} does not give the model's context length")
        self.context, self.name = meta["context"], str(meta.get("model", "transformer"))
        self.model = load_model(self.dir / "model.keras")
        self.metrics = read_json(self.dir / "metrics.json")

    def fields(self) -> list[dict]:
        return [{"name": "prompt", "kind": "text", "example": "Are you free "}]

    def outputs(self) -> dict:
        return {"text": str}

    def generate(self, prompt: str, length=100, temperature=0.8, top_k=0, top_p=0.95, seed=0) -> str:
        return generate(self.model, prompt, length, self.context, temperature, top_k, top_p, seed)

    def predict(self, instances: list[dict]) -> list[dict]:
        return [
            {"text": self.generate(i["prompt"][:MAX_PROMPT], self.PREDICT_LENGTH, seed=n)}
            for n, i in enumerate(instances)
        ]

    def info(self) -> dict:
        head = self.metrics.get("headline") if isinstance(self.metrics.get("headline"), dict) else {}
        return {
            "case": self.case,
            "model": self.name,
            "params": self.model.count_params(),
            "context": self.context,
            "dataset": self.metrics.get("dataset"),
            "metrics": {k: v for k, v in head.items() if isinstance(v, (int, float))},
        }
