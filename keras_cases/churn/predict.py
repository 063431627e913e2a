"""Predicting with a saved churn run: `Predictor` (used by `predict` and by keras_cases.serve)
and the `predict` subcommand:

    python -m keras_cases.churn predict --run runs/churn/<stamp> --csv new_customers.csv [--explain]

`Predictor.explain` (serve's /explain) and `--explain`: integrated gradients per raw column
from a typical customer (keras_cases.churn.reasons).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from keras_cases import UserError
from keras_cases.churn import reasons
from keras_cases.churn.data import CASE, METRICS, telco_columns
from keras_cases.data.tabular import TabularPreprocessor, is_id_column, read_csv
from keras_cases.runs import atomic, load_model, load_run, output_file, read_json, run_case


class Predictor:
    """A saved churn run, ready to score raw rows (used by `predict` and by `serve`)."""

    case = CASE

    def __init__(self, run_dir):
        self.dir = load_run(run_dir, ("model.keras", "preprocessing.json", "decision.json"))
        if (self.dir / "run.json").exists() and run_case(self.dir) != CASE:
            raise UserError(f"{self.dir} is a {run_case(self.dir)} run, not a {CASE} run")
        self.pre, self.meta = TabularPreprocessor.load(self.dir / "preprocessing.json")
        self.threshold = read_json(self.dir / "decision.json").get("threshold")
        if not (
            isinstance(self.threshold, (int, float))
            and not isinstance(self.threshold, bool)
            and 0 <= self.threshold <= 1
        ):
            raise UserError(f'{self.dir / "decision.json"} has no "threshold" between 0 and 1')
        self.model = load_model(self.dir / "model.keras")
        width = len(self.pre.feature_names)
        if tuple(self.model.input_shape) != (None, width):
            raise UserError(
                f"{self.dir / 'model.keras'} does not take the {width} features of "
                f"{self.dir / 'preprocessing.json'} (input {self.model.input_shape})"
            )

    def fields(self) -> list[dict]:
        """The raw input columns: name, kind (number / choice) and a typical value."""
        examples = self.meta.get("examples")
        examples = examples if isinstance(examples, dict) else {}
        out = []
        for c, s in self.pre.numeric.items():
            v = examples.get(c)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
            out.append({"name": c, "kind": "number", "example": v if ok else s["median"]})
        out += [
            {
                "name": c,
                "kind": "choice",
                "choices": cats,
                "example": examples[c] if examples.get(c) in cats else cats[0],
            }
            for c, cats in self.pre.categorical.items()
        ]
        return out

    def outputs(self) -> dict:
        """What `predict` returns per instance, for the API schema (see serve.output_model)."""
        return {"churn_probability": float, "churn_predicted": bool}

    def predict_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        if len(df) == 0:
            raise UserError("no rows to score")
        x = self.pre.transform(df)
        bad = ~np.isfinite(x).all(axis=0)
        if bad.any():
            name = self.pre.feature_names[int(np.flatnonzero(bad)[0])]
            raise UserError(f"column {name!r} holds an infinite or too large number")
        # a request's few rows: one direct batch call (no predict loop: ~10x less latency)
        prob = np.asarray(
            self.model.predict_on_batch(x) if len(x) <= 1024 else self.model.predict(x, verbose=0)
        ).ravel()
        if not np.isfinite(prob).all():
            raise UserError("the model gave no finite score for some rows (values far outside the training range?)")
        ids = [c for c in df.columns if c in self.pre.dropped or is_id_column(c, df[c])]
        out = pd.DataFrame({c: df[c].to_numpy() for c in ids})  # carried through, to join on
        out["churn_probability"] = prob.astype("float64")
        out["churn_predicted"] = (prob >= self.threshold).astype(int)
        return out

    def frame(self, instances: list[dict]) -> pd.DataFrame:
        """API instances as the raw columns `predict_frame` reads."""
        df = pd.DataFrame(instances)
        for c in self.pre.numeric:  # a column of nulls only is a missing number, not text
            if c in df.columns and df[c].isna().all():
                df[c] = np.nan
        return telco_columns(df)

    def predict(self, instances: list[dict]) -> list[dict]:
        out = self.predict_frame(self.frame(instances))
        return [
            {"churn_probability": float(p), "churn_predicted": bool(d)}
            for p, d in zip(out["churn_probability"], out["churn_predicted"])
        ]

    # -- explanations (keras_cases.churn.reasons) --------------------------------------
    def baseline(self) -> np.ndarray:
        """The encoded baseline customer: training medians / modes (preprocessing.json's `examples`)."""
        examples = self.meta.get("examples")
        return reasons.baseline_row(self.pre, examples if isinstance(examples, dict) else {})

    def explain_frame(self, df: pd.DataFrame, steps: int = reasons.IG_STEPS) -> tuple[np.ndarray, float]:
        """(attributions (rows, raw columns) to the churn probability, the baseline's
        probability); each row's attributions add up to its probability minus the baseline's."""
        self.predict_frame(df)  # the same checks (and errors) as predict
        return reasons.column_attributions(self.model, self.pre, self.pre.transform(df), self.baseline(), steps)

    def explain(self, instances: list[dict], steps: int = reasons.IG_STEPS) -> list[dict]:
        df = self.frame(instances)
        prediction = self.predict(instances)
        attr, p0 = self.explain_frame(df, steps)
        method = (
            f"integrated gradients ({steps} steps, baseline: training medians / modes, churn probability "
            f"{p0:.4f} there); attributions in churn probability, one-hot columns summed to their column"
        )
        names = self.pre.columns
        return [
            {
                "prediction": pred,
                "explanation": {
                    "method": method,
                    "target": "churn",
                    "items": [
                        {"name": names[j], "attribution": float(row[j])}
                        for j in np.argsort(-np.abs(row), kind="stable")
                    ],
                    "heatmap": [],
                },
            }
            for pred, row in zip(prediction, attr)
        ]

    def top_reasons(self, df: pd.DataFrame, k: int = 3) -> pd.DataFrame:
        """The k raw columns that moved each row's churn probability most from the baseline
        customer's: reason_1..reason_k as `column=value (+0.123)`."""
        return reasons.top_reasons(self.explain_frame(df)[0], df, self.pre.columns, k)

    def info(self) -> dict:
        m = read_json(self.dir / "metrics.json")
        return {
            "case": CASE,
            "model": self.model.name,
            "params": self.model.count_params(),
            "threshold": self.threshold,
            "objective": m.get("objective"),
            "target": self.meta.get("target"),
            "dataset": m.get("dataset"),
            "trained_on_backend": m.get("backend"),
            "metrics": {k: m[k] for k in METRICS if k in m},
        }


def load_predictor(run_dir) -> Predictor:
    return Predictor(run_dir)


def main(argv):
    p = argparse.ArgumentParser(
        prog="python -m keras_cases.churn predict", description="Score new customers with a saved churn run."
    )
    p.add_argument("--run", required=True, help="a run directory written by the churn case")
    p.add_argument("--csv", required=True, help="CSV of customers with the training columns")
    p.add_argument("--output", default=None, help="where to write (default <run>/predictions.csv)")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    p.add_argument(
        "--explain",
        action="store_true",
        help="add the three columns that moved each customer's churn probability most from a typical "
        "(training median / mode) customer's: reason_1..reason_3 as `column=value (+0.123)`, integrated gradients",
    )
    args = p.parse_args(argv)
    predictor = Predictor(args.run)
    path = output_file(args.output or predictor.dir / "predictions.csv", args.overwrite)
    rows = telco_columns(read_csv(args.csv))
    out = predictor.predict_frame(rows)
    if args.explain:
        out = pd.concat([out, predictor.top_reasons(rows).set_axis(out.index)], axis=1)
    with atomic(path) as tmp:
        out.to_csv(tmp, index=False)
    print(
        f"{len(out)} rows scored, {int(out['churn_predicted'].sum())} predicted to churn "
        f"(threshold {predictor.threshold:.3f}); wrote {path}"
    )
    return 0
