"""Text classifiers shared by the spam and sentiment cases, and the experiment they run.

Every model reads int32 token ids, 0-padded at the end (keras_cases.data.text), of any
length, and padding never decides the output:

- recurrent models use `Embedding(mask_zero=True)`; LSTM/GRU/Bidirectional skip the masked
  steps, so the final state is the state after the last real token;
- the Conv1D model zeroes padded steps before each convolution ("same" padding then sees
  the same zeros an unpadded text gets at its edge) and max-pools over real steps only;
- the Transformer encoder masks padded keys in attention and mean-pools real steps only.

Builders (Keras functional API, keras.layers / keras.ops only, so every backend runs them):
`build_lstm`, `build_gru`, `build_bilstm`, `build_conv1d`, `build_transformer`; each takes
`stacked=True` for a two-layer (two-block) variant. `build_tfidf` is the scikit-learn
TF-IDF + logistic regression reference. `run_experiment` trains the chosen models over
seeds and writes the run directory; `Predictor` (behind `predict` and `serve`) scores raw
text with a saved run: model.keras plus vocab.json plus decision.json.

On JAX every new input shape is a new XLA compile, so training batches, validation and
prediction each keep one shape (`pad_rows`, `score`, `ValidationScorer`).
"""

from __future__ import annotations

import argparse
import sys
import time

import keras
import numpy as np
from keras import layers, ops

from keras_cases import UserError, cli, plots, runtime
from keras_cases.callbacks import ThresholdTuner, resumable, tensorboard
from keras_cases.data import batches
from keras_cases.data.text import TextData, Vocabulary, split_unique, tokenize
from keras_cases.evaluation import (
    binary_metrics,
    choose_threshold,
    class_weights,
    confusion,
    parse_objective,
    summarize,
)
from keras_cases.layers import PositionEmbedding
from keras_cases.runs import Run, atomic, load_model, load_run, markdown_table, output_file, read_json, run_case

NEURAL = ("lstm", "gru", "bilstm", "conv1d", "transformer")
TFIDF = "tfidf_logreg"
REPORTED = ("accuracy", "precision", "recall", "f1", "pr_auc", "roc_auc", "threshold")
SPLIT_SEED = 2024  # the split is fixed; --seed varies weights, batches and dropout


# --- layers that keep padding out of the answer ------------------------------------
@keras.saving.register_keras_serializable("keras_cases")
class MaskedConv1D(layers.Conv1D):
    """Conv1D with "same" padding that zeroes masked (padded) steps of its input first and
    passes the mask on."""

    def __init__(self, filters, kernel_size, **kwargs):
        kwargs["padding"] = "same"
        super().__init__(filters, kernel_size, **kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is not None:
            inputs = inputs * ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        return super().call(inputs)

    def compute_mask(self, inputs, mask=None):
        return mask


@keras.saving.register_keras_serializable("keras_cases")
class MaskedGlobalPooling1D(layers.Layer):
    """Max or mean over the real (unmasked) steps; a text with no tokens pools to zeros."""

    def __init__(self, mode="max", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("max", "mean"):
            raise ValueError(f"mode must be 'max' or 'mean', not {mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        m = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        count = ops.sum(m, axis=1)
        if self.mode == "mean":
            return ops.sum(inputs * m, axis=1) / ops.maximum(count, 1.0)
        low = ops.min(inputs) - 1.0
        pooled = ops.max(ops.where(m > 0, inputs, low), axis=1)
        return ops.where(count > 0, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable("keras_cases")
class PaddingMask(layers.Layer):
    """Token ids -> True at real tokens, False at padding (id 0): shape (batch, steps), or
    (batch, 1, steps) with keys=True, the attention mask that hides padded keys."""

    def __init__(self, keys=False, **kwargs):
        super().__init__(**kwargs)
        self.keys = bool(keys)

    def call(self, ids):
        real = ops.not_equal(ids, 0)
        return ops.expand_dims(real, 1) if self.keys else real

    def compute_output_spec(self, ids):
        shape = (ids.shape[0], 1, ids.shape[1]) if self.keys else tuple(ids.shape)
        return keras.KerasTensor(shape, dtype="bool")

    def get_config(self):
        return {**super().get_config(), "keys": self.keys}


# --- model builders -----------------------------------------------------------------
def _ids_input():
    return keras.Input((None,), dtype="int32", name="token_ids")


def _head(x, inputs, dropout, name):
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid", name="score")(x)
    return keras.Model(inputs, outputs, name=name)


def _recurrent(cell, vocab_size, bidirectional=False, stacked=False, embed_dim=64, units=64, dropout=0.3, name=None):
    inputs = _ids_input()
    x = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")(inputs)
    rnn = layers.LSTM if cell == "lstm" else layers.GRU
    for i in range(2 if stacked else 1):
        layer = rnn(units, return_sequences=stacked and i == 0, name=f"{cell}_{i + 1}")
        x = layers.Bidirectional(layer, name=f"bi{cell}_{i + 1}")(x) if bidirectional else layer(x)
    return _head(x, inputs, dropout, name)


def build_lstm(vocab_size, stacked=False, **hp) -> keras.Model:
    """Embedding -> LSTM (x2 when stacked) -> final state -> dropout -> sigmoid."""
    return _recurrent("lstm", vocab_size, stacked=stacked, name="lstm", **hp)


def build_gru(vocab_size, stacked=False, **hp) -> keras.Model:
    """Embedding -> GRU (x2 when stacked) -> final state -> dropout -> sigmoid."""
    return _recurrent("gru", vocab_size, stacked=stacked, name="gru", **hp)


def build_bilstm(vocab_size, stacked=False, units=32, **hp) -> keras.Model:
    """Embedding -> bidirectional LSTM (both final states concatenated) -> sigmoid."""
    return _recurrent("lstm", vocab_size, bidirectional=True, stacked=stacked, units=units, name="bilstm", **hp)


def build_conv1d(vocab_size, stacked=False, embed_dim=64, filters=128, kernel_size=5, dropout=0.3) -> keras.Model:
    """Embedding -> Conv1D(relu) (x2 when stacked) -> max over real steps -> sigmoid."""
    inputs = _ids_input()
    x = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")(inputs)
    for i in range(2 if stacked else 1):
        x = MaskedConv1D(filters, kernel_size, activation="relu", name=f"conv_{i + 1}")(x)
    x = MaskedGlobalPooling1D("max", name="max_pool")(x)
    return _head(x, inputs, dropout, "conv1d")


def encoder_block(x, keys, dim, heads, ff_dim, dropout, name):
    """Post-norm Transformer encoder block: self-attention and a feed-forward layer, each
    with a residual connection, dropout and layer normalisation. `keys` (batch, 1, steps)
    says which steps may be attended to, so padded steps never are."""
    attn = layers.MultiHeadAttention(heads, dim // heads, name=f"{name}_attention")(x, x, attention_mask=keys)
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(layers.Add()([x, layers.Dropout(dropout)(attn)]))
    f = layers.Dense(ff_dim, activation="relu", name=f"{name}_ff1")(x)
    f = layers.Dense(dim, name=f"{name}_ff2")(f)
    return layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(layers.Add()([x, layers.Dropout(dropout)(f)]))


def build_transformer(
    vocab_size, max_len, stacked=False, embed_dim=64, heads=4, ff_dim=128, dropout=0.1
) -> keras.Model:
    """Token + position embeddings -> encoder block (x2 when stacked) -> mean over real
    steps -> sigmoid. `max_len` bounds the input length (position table size).

    The padding mask is explicit here (MultiHeadAttention takes it as `attention_mask`,
    the pooling as `mask`): Keras' implicit mask does not survive a residual around
    self-attention, because MultiHeadAttention detaches it from its query tensor.
    """
    inputs = _ids_input()
    real = PaddingMask(name="real_steps")(inputs)
    keys = PaddingMask(keys=True, name="attend_to")(inputs)
    x = layers.Embedding(vocab_size, embed_dim, name="embedding")(inputs)
    x = PositionEmbedding(max_len, name="position_embedding")(x)
    for i in range(2 if stacked else 1):
        x = encoder_block(x, keys, embed_dim, heads, ff_dim, dropout, f"block_{i + 1}")
    x = MaskedGlobalPooling1D("mean", name="mean_pool")(x, mask=real)
    return _head(x, inputs, dropout, "transformer")


def build_model(kind: str, vocab_size: int, max_len: int, stacked: bool = False) -> keras.Model:
    builders = {
        "lstm": build_lstm,
        "gru": build_gru,
        "bilstm": build_bilstm,
        "conv1d": build_conv1d,
        "transformer": lambda v, stacked: build_transformer(v, max_len, stacked=stacked),
    }
    if kind not in builders:
        raise UserError(f"unknown model {kind!r}: choose one of {', '.join(NEURAL)} or all")
    with runtime.without_tensorflow():  # Bidirectional would import it, on any backend
        return builders[kind](vocab_size, stacked=stacked)


def compile_model(model, learning_rate=1e-3):
    """Adam, binary cross-entropy, PR-AUC; steps per compiled call as measured for text
    networks on the active backend (`runtime.STEPS_PER_EXECUTION`: 32 on TensorFlow)."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(curve="PR", name="pr_auc")],
        steps_per_execution=runtime.steps_per_execution("text"),
    )
    return model


def build_tfidf(C=10.0):
    """Word 1-2 gram TF-IDF (same tokenizer) + class-balanced logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(
            tokenizer=tokenize, lowercase=False, token_pattern=None, ngram_range=(1, 2), min_df=1, sublinear_tf=True
        ),
        LogisticRegression(C=C, class_weight="balanced", max_iter=2000),
    )


# --- training -----------------------------------------------------------------------
EVAL_BATCH = 256


def pad_rows(x, multiple: int) -> np.ndarray:
    """Append all-padding rows (empty texts) up to a multiple of `multiple` rows."""
    extra = -len(x) % multiple
    return np.concatenate([x, np.zeros((extra, *x.shape[1:]), x.dtype)]) if extra else x


def score(model, x) -> np.ndarray:
    """Model scores, predicted in batches of one fixed shape (the last one padded with
    empty texts and cut off again): on JAX every new input shape is a new XLA compile."""
    p = model.predict(pad_rows(x, EVAL_BATCH), batch_size=EVAL_BATCH, verbose=0)
    return np.asarray(p, dtype="float64").ravel()[: len(x)]


class ValidationScorer(ThresholdTuner):
    """The ThresholdTuner, also the validation pass: once per epoch it scores the validation
    texts (`score`, one input shape) and logs `val_loss`, `val_pr_auc` (scikit-learn's
    average precision, the number models are compared by), `val_threshold` and
    `val_objective`. Put EarlyStopping after it; `train` re-chooses the threshold once the
    best weights are restored. (Keras' own validation pass would score the same texts a
    second time, and cost one more XLA compile on JAX.)"""

    def _choose(self):
        p = score(self.model, self.x_val)
        self.threshold, self.value = choose_threshold(self.y_val, p, self.objective)
        return p

    def on_epoch_end(self, epoch, logs=None):
        from sklearn.metrics import average_precision_score

        p = self._choose()
        if logs is not None:
            q = np.clip(p, 1e-7, 1 - 1e-7)
            logs["val_loss"] = float(-np.mean(self.y_val * np.log(q) + (1 - self.y_val) * np.log(1 - q)))
            logs["val_pr_auc"] = float(average_precision_score(self.y_val, p))
            logs["val_threshold"] = self.threshold
            logs["val_objective"] = self.value

    def on_train_end(self, logs=None):
        pass  # EarlyStopping restores the best weights after this; `train` re-chooses then


def train(
    model,
    x_tr,
    y_tr,
    x_val,
    y_val,
    *,
    epochs,
    batch_size,
    seed,
    verbose,
    objective,
    patience=3,
    weighted=True,
    extra_callbacks=(),
):
    """Seeded NumPy weights and batches, class weights, early stopping on validation PR-AUC
    (best weights restored), then the decision threshold chosen on validation.
    Returns (history dict, threshold, seconds). Call `runtime.set_seed(seed)` before
    building the model too: its Dropout layers draw their seeds when they are created.

    The training set is topped up to whole batches with empty texts of weight 0, so every
    step has one batch shape (one XLA compile on JAX, not two).
    """
    runtime.set_seed(seed)
    runtime.init_weights(model, seed)
    w = class_weights(y_tr) if weighted else np.ones(len(y_tr), "float32")
    x_tr, y_tr, w = (pad_rows(a, batch_size) for a in (x_tr, y_tr, w))
    scorer = ValidationScorer(x_val, y_val, objective)
    stop = keras.callbacks.EarlyStopping("val_pr_auc", mode="max", patience=patience, restore_best_weights=True)
    t0 = time.time()
    data, name = batches(x_tr, y_tr, batch_size, seed, w), f"{model.name}_seed{seed}"
    hist = model.fit(
        data,
        epochs=epochs,
        verbose=verbose,
        callbacks=resumable(name, [scorer, stop, *extra_callbacks, *tensorboard(name)], data),
    )
    scorer._choose()  # on the restored best weights
    return hist.history, scorer.threshold, time.time() - t0


def evaluate(y_val, p_val, y_test, p_test, threshold) -> dict:
    """Test metrics at the validation-chosen threshold, plus validation PR-AUC (the
    number the best model is chosen by)."""
    from sklearn.metrics import average_precision_score

    return {**binary_metrics(y_test, p_test, threshold), "val_pr_auc": float(average_precision_score(y_val, p_val))}


# --- the experiment -----------------------------------------------------------------
def add_text_flags(p, default_objective, default_model="all"):
    g = p.add_argument_group("models and decisions")
    g.add_argument(
        "--model",
        default=default_model,
        choices=[*NEURAL, "all"],
        help="which network(s) to train; the TF-IDF + logistic regression reference always runs",
    )
    g.add_argument(
        "--stacked", action="store_true", help="two recurrent layers / conv layers / encoder blocks instead of one"
    )
    g.add_argument(
        "--objective",
        default=default_objective,
        help="decision-threshold objective chosen on validation: precision>=P, "
        "recall>=R, f1, fbeta:B or cost:fp=A,fn=B",
    )
    g.add_argument(
        "--patience", type=cli.positive_int, default=3, help="early stopping: epochs without a better validation PR-AUC"
    )
    g.add_argument(
        "--max-tokens",
        type=cli.positive_int,
        default=20000,
        help="vocabulary size (most frequent training tokens, seen at least twice)",
    )
    g.add_argument(
        "--max-len",
        type=cli.positive_int,
        default=None,
        help="tokens kept per text (default: 95th percentile of training lengths, rounded up to a multiple of 8)",
    )
    return p


def run_experiment(case: str, title: str, data: TextData, args, blurb: str = "") -> dict:
    """Split, fit the vocabulary on train, train the chosen models for each seed, touch the
    test set once per model, and write the run directory. Returns metrics.json's dict."""
    t0 = time.time()
    runtime.set_threads(args.threads)
    objective = parse_objective(args.objective)
    kinds = list(NEURAL) if args.model == "all" else [args.model]
    texts, y = data.texts, data.y
    if len(texts) < 30 or min(np.bincount(y, minlength=2)) < 5:
        raise UserError(
            f"{data.dataset}: too few texts ({len(texts)}) or too few of one class "
            "to split into train, validation and test"
        )
    tr, va, te, n_dupes = split_unique(texts, y, SPLIT_SEED)
    pick = lambda idx: [texts[i] for i in idx]  # noqa: E731
    t_tr, t_va, t_te = pick(tr), pick(va), pick(te)
    ys_tr = y[tr]
    vocab = Vocabulary.fit(
        t_tr,
        max_tokens=args.max_tokens,
        max_len=args.max_len,
        labels=list(data.labels),
        dataset=data.dataset,
        case=case,
        example=next(t for t, v in zip(t_tr, ys_tr) if v == 1),
    )
    xs = [vocab.encode(t) for t in (t_tr, t_va, t_te)]
    ys = [y[i].astype("float32") for i in (tr, va, te)]
    run = Run(case, args.out, tensorboard=args.tensorboard, overwrite=args.overwrite)
    info = runtime.backend_report()
    print(
        f"{data.dataset}: {len(texts)} texts, {y.mean():.1%} {data.labels[1]}, "
        f"{len(tr)}/{len(va)}/{len(te)} train/val/test ({n_dupes} repeated texts kept in one "
        f"split); vocabulary {len(vocab)} tokens, max_len {vocab.max_len}; backend "
        f"{info['backend']}; writing {run.dir}"
    )

    # the scikit-learn reference: deterministic, fit once
    t1 = time.time()
    ref = build_tfidf().fit(t_tr, ys[0])
    ref_val, ref_test = ref.predict_proba(t_va)[:, 1], ref.predict_proba(t_te)[:, 1]
    ref_t, _ = choose_threshold(ys[1], ref_val, objective)
    ref_metrics = {
        **evaluate(ys[1], ref_val, ys[2], ref_test, ref_t),
        "params": int(ref[-1].coef_.size + 1),
        "train_seconds": time.time() - t1,
        "epochs_trained": 0,
    }

    seeds = list(range(args.seed, args.seed + args.seeds))
    per_seed, first = [], {}
    for s in seeds:
        row = {}
        for kind in kinds:
            runtime.set_seed(s)  # before building: Dropout layers draw their seeds at creation
            model = compile_model(build_model(kind, len(vocab), vocab.max_len, args.stacked))
            print(f"[seed {s}] {kind} ({model.count_params():,} parameters)")
            hist, t, secs = train(
                model,
                xs[0],
                ys[0],
                xs[1],
                ys[1],
                epochs=args.epochs,
                batch_size=args.batch_size,
                seed=s,
                verbose=args.verbose,
                objective=objective,
                patience=args.patience,
            )
            p_val, p_test = score(model, xs[1]), score(model, xs[2])
            row[kind] = {
                **evaluate(ys[1], p_val, ys[2], p_test, t),
                "params": model.count_params(),
                "train_seconds": secs,
                "epochs_trained": len(hist["loss"]),
            }
            print(
                f"[seed {s}] {kind}: test F1 {row[kind]['f1']:.4f}, accuracy "
                f"{row[kind]['accuracy']:.4f}, PR-AUC {row[kind]['pr_auc']:.4f} "
                f"(threshold {t:.3f}; {secs:.1f} s)"
            )
            if s == seeds[0]:
                first[kind] = {"model": model, "history": hist, "p_test": p_test, "threshold": t}
        row[TFIDF] = ref_metrics
        per_seed.append(row)

    mean, std = summarize(per_seed)
    for k in mean:
        mean[k]["std"] = {m: std[k][m] for m in REPORTED}
    best = max(kinds, key=lambda k: mean[k]["val_pr_auc"])  # chosen on validation only
    metrics = {
        **{m: mean[best][m] for m in REPORTED},
        "best_model": best,
        "std": mean[best]["std"],
        "models": mean,
        "per_seed": [
            {"seed": s, **{k: {m: r[k][m] for m in (*REPORTED, "val_pr_auc")} for k in kinds}}
            for s, r in zip(seeds, per_seed)
        ],
        "objective": str(objective),
        **info,
        "dataset": data.dataset,
        "labels": list(data.labels),
        "n_train": len(tr),
        "n_val": len(va),
        "n_test": len(te),
        "n_repeated_texts": n_dupes,
        "vocab_size": len(vocab),
        "max_len": vocab.max_len,
        "oov_rate_test": round(1 - vocab.coverage(t_te), 4),
        "seed": args.seed,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "stacked": args.stacked,
        "quick": args.quick,
    }
    mis = write_artifacts(run, metrics, vocab, first, best, ys, t_te, ref_test, ref_t, args)
    metrics["seconds"] = round(time.time() - t0, 2)
    run.write_json("metrics.json", metrics)
    run.write_text("report.md", report(title, blurb, metrics, kinds, mis))
    print(summary_line(metrics))
    print(f"wrote {run.dir}/ (metrics.json, report.md, model.keras, vocab.json, plots)")
    return metrics


def write_artifacts(run, metrics, vocab, first, best, ys, t_te, ref_test, ref_t, args):
    import pandas as pd

    neg, pos = metrics["labels"]
    (run.dir / "models").mkdir(exist_ok=True)
    for kind, f in first.items():
        runtime.save_model(f["model"], run.path(f"models/{kind}.keras"))
    runtime.save_model(first[best]["model"], run.path("model.keras"))
    vocab.save(run.path("vocab.json"))
    run.write_json(
        "decision.json",
        {
            "model": best,
            "threshold": first[best]["threshold"],
            "objective": metrics["objective"],
            "labels": [neg, pos],
            "thresholds": {k: f["threshold"] for k, f in first.items()},
        },
    )
    run.write_json("config.json", vars(args))
    run.write_history({k: f["history"] for k, f in first.items()})
    y_te = ys[2]
    scores = pd.DataFrame({"text": t_te, "label": np.where(y_te == 1, pos, neg)})
    for kind, f in first.items():
        scores[kind] = np.round(f["p_test"], 7)
    scores[TFIDF] = np.round(ref_test, 7)
    scores.to_csv(run.path("test_scores.csv"), index=False)
    p, t = first[best]["p_test"], first[best]["threshold"]
    wrong = np.flatnonzero((p >= t) != (y_te == 1))
    wrong = wrong[np.argsort(-np.abs(p[wrong] - t), kind="stable")]
    mis = pd.DataFrame(
        {
            "true": np.where(y_te[wrong] == 1, pos, neg),
            "predicted": np.where(y_te[wrong] == 1, neg, pos),
            "score": np.round(p[wrong], 4),
            "text": [t_te[i] for i in wrong],
        }
    )
    mis.to_csv(run.path("misclassified.csv"), index=False)
    plots.learning_curves(
        {k: f["history"] for k, f in first.items()}, run.path("learning_curves.png"), metrics=("loss", "pr_auc")
    )
    curves = {k: (y_te, f["p_test"], f["threshold"]) for k, f in first.items()}
    curves["TF-IDF + LR"] = (y_te, ref_test, ref_t)
    plots.roc_pr(curves, run.path("roc_pr.png"), "(test)")
    cms = {f"{k} @{f['threshold']:.2f}": confusion(y_te, f["p_test"], f["threshold"]) for k, f in first.items()}
    cms[f"TF-IDF + LR @{ref_t:.2f}"] = confusion(y_te, ref_test, ref_t)
    plots.confusion_matrices(cms, run.path("confusion_matrices.png"), labels=(neg, pos))
    return mis.head(25).to_dict("records")


def _pm(m, key, seeds):
    return f"{m[key]:.4f}" + (f" ± {m['std'][key]:.4f}" if seeds > 1 else "")


def summary_line(m) -> str:
    b, r = m["best_model"], m["models"][TFIDF]
    return (
        f"best on validation: {b}: test F1 {_pm(m, 'f1', m['seeds'])}, accuracy "
        f"{_pm(m, 'accuracy', m['seeds'])}, PR-AUC {m['pr_auc']:.4f} | TF-IDF + LR: F1 "
        f"{r['f1']:.4f}, accuracy {r['accuracy']:.4f}, PR-AUC {r['pr_auc']:.4f}"
    )


def report(title, blurb, m, kinds, misclassified) -> str:
    seeds = m["seeds"]
    rows = []
    for k in [*kinds, TFIDF]:
        r = m["models"][k]
        rows.append(
            {
                "model": k + (" (best on val)" if k == m["best_model"] else ""),
                **{
                    c: _pm(r, c, seeds if k != TFIDF else 1)
                    for c in ("accuracy", "precision", "recall", "f1", "pr_auc")
                },
                "threshold": r["threshold"],
                "val PR-AUC": r["val_pr_auc"],
                "params": f"{int(r['params']):,}",
                "train s": f"{r['train_seconds']:.1f}",
                "epochs": f"{r['epochs_trained']:.1f}",
            }
        )
    cols = [
        "model",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "pr_auc",
        "threshold",
        "val PR-AUC",
        "params",
        "train s",
        "epochs",
    ]
    best, ref = m["models"][m["best_model"]], m["models"][TFIDF]
    nets = [k for k in kinds if m["models"][k]["f1"] > ref["f1"]]
    verdict = (
        f"TF-IDF + logistic regression beats the network chosen on validation ({m['best_model']}) on test F1"
        if ref["f1"] > best["f1"]
        else f"The network chosen on validation ({m['best_model']}) beats TF-IDF + logistic regression on test F1"
    )
    verdict += f" ({ref['f1']:.4f} vs {best['f1']:.4f}); networks above TF-IDF on test F1: {', '.join(nets) or 'none'}."
    neg, pos = m["labels"]
    mis = [
        {
            "true": r["true"],
            "score": f"{r['score']:.3f}",
            "text": str(r["text"]).replace("|", "\\|").replace("\n", " ")[:160],
        }
        for r in misclassified
    ]
    spread, per_seed = "", ""
    if seeds > 1:
        spread = (
            f"Mean ± std over {seeds} seeds ({m['seed']}..{m['seed'] + seeds - 1}; the split "
            "is fixed, the seed sets weights, batch order and dropout); threshold, validation "
            "PR-AUC, train seconds and epochs are means. "
        )
        per_seed = "\n\nTest F1 per seed:\n\n" + markdown_table(
            [{"seed": r["seed"], **{k: r[k]["f1"] for k in kinds}} for r in m["per_seed"]], ["seed", *kinds]
        )
    return f"""# {title}

{blurb}

- data: {m["dataset"]}; {m["n_train"]} train / {m["n_val"]} validation / {m["n_test"]} test texts
  (stratified, split seed {SPLIT_SEED}; {m["n_repeated_texts"]} repeated texts kept in the split
  of their first copy); labels {neg} / {pos}
- text pipeline (outside the model, fit on train only, saved as vocab.json): {m["vocab_size"]}
  tokens incl. padding and OOV, {m["max_len"]} tokens per text; {m["oov_rate_test"]:.1%} of test
  tokens are out of vocabulary
- backend: {m["backend"]} (Keras {m["keras_version"]}, {m["framework_version"]}), devices {", ".join(m["devices"])}
- up to {m["epochs"]} epochs, batch {m["batch_size"]}, class-weighted loss, early stopping on
  validation PR-AUC (best weights restored){", stacked variants" if m["stacked"] else ""}
- decision threshold per model chosen on validation only for `{m["objective"]}`; the best
  model is chosen by validation PR-AUC: **{m["best_model"]}**
- wall time: {m.get("seconds", 0)} s

## Test-set results

{spread}{verdict}

{markdown_table(rows, cols)}{per_seed}

![ROC and PR curves](roc_pr.png)

## Confusion matrices (test, first seed)

![confusion matrices](confusion_matrices.png)

## Misclassified test texts ({m["best_model"]}, first seed; worst first, all in misclassified.csv)

{markdown_table(mis, ["true", "score", "text"]) if mis else "none"}

## Learning curves (first seed)

Training loss is class-weighted, validation loss is not; validation PR-AUC is scikit-learn's
average precision on the validation texts (what early stopping watched).

![learning curves](learning_curves.png)

Per-model test scores are in test_scores.csv; every network is saved under models/.
"""


# --- predicting with a saved run ----------------------------------------------------
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
