"""A miniature GPT on real text, against the two classic baselines, in bits per byte.

    python -m keras_cases.textgen                 # the SMS messages + UCI sentences
    python -m keras_cases.textgen --text my.txt   # your own UTF-8 text (blank lines between documents)
    python -m keras_cases.textgen --corpus imdb   # the 50,000 raw IMDB reviews (Stanford aclImdb)
    python -m keras_cases.textgen sample --run runs/textgen/<stamp> --prompt "Are you"

The documents are split by document (train / validation / test, 80 / 10 / 10, duplicates
merged first), so the test text is text the models never saw. Every model predicts each next
byte of the same test windows of `--context` bytes: an interpolated n-gram (Witten-Bell, its
order chosen on validation), a character LSTM and the transformer (both: AdamW with warm-up
and cosine decay, weight decay on the matrices, early stopping on validation loss with the
weights of the best validation epoch restored, `--seeds` repeats; both add hashed byte n-gram
embeddings to their byte embeddings, `--input-ngrams`, `--ngram-buckets`). The metric is bits
per byte (the text is almost all ASCII, so per character too); lower is better, and
log2(257) = 8.006 is a model that knows nothing.
"""

from __future__ import annotations

import math

import numpy as np

from keras_cases import UserError, cli
from keras_cases.evaluation import mean_std, pm
from keras_cases.runs import command
from keras_cases.textgen import corpus as C
from keras_cases.textgen.corpus import BUCKETS, MAX_BUCKETS
from keras_cases.textgen.sample import add_sampling_flags

CASE = "textgen"
NETWORKS = ("transformer", "lstm")
CORPORA = ("sms", "imdb")
SHOWN = {"lstm": "LSTM", "ngram": "n-gram"}
QUICK = {
    "epochs": lambda v: min(v, 1),
    "context": lambda v: min(v, 32),
    "width": lambda v: min(v, 32),
    "layers": lambda v: min(v, 1),
    "heads": lambda v: min(v, 2),
    "lstm_width": lambda v: min(v, 32),
    "max_train_bytes": 40_000,
    "batch_size": 64,
    "train_stride": lambda v: v or 32,
    "sample_length": 40,
}


def add_network_flags(p):
    """The two networks' shapes and their shared input tables and dropout."""
    g = p.add_argument_group("textgen: the networks")
    g.add_argument("--width", type=cli.positive_int, default=128, help="transformer width")
    g.add_argument("--layers", type=cli.positive_int, default=3, help="transformer blocks")
    g.add_argument("--heads", type=cli.positive_int, default=4, help="attention heads (must divide --width)")
    g.add_argument(
        "--local-mixing",
        type=cli.nonnegative_int,
        default=3,
        help="transformer: a causal depthwise convolution over this many bytes before each attention "
        "(Primer's; 0 or 1: off)",
    )
    g.add_argument(
        "--activation",
        choices=("gelu", "relu2"),
        default="relu2",
        help="transformer MLP: GELU or Primer's squared ReLU",
    )
    g.add_argument("--lstm-width", type=cli.positive_int, default=256, help="LSTM units")
    g.add_argument(
        "--input-ngrams",
        type=cli.nonnegative_int,
        default=3,
        help="add hashed embeddings of the 2..N-byte n-grams ending at each byte to its embedding, in both "
        "networks (0: plain byte embeddings)",
    )
    g.add_argument(
        "--ngram-buckets",
        type=cli.positive_int,
        default=BUCKETS,
        help=f"rows per n-gram length in the hashed tables (most of the parameters: (N - 1) x rows x width); "
        f"fewer share rows between rare n-grams (1 to {MAX_BUCKETS:,})",
    )
    g.add_argument("--dropout", type=cli.fraction, default=0.1, help="on the embeddings, attention and residuals")


def make_parser():
    p = cli.parser(f"keras_cases.{CASE}", __doc__.split("\n\n")[0], epochs=8, batch_size=32, quick=QUICK)
    g = p.add_argument_group("textgen")
    g.add_argument("--text", default=None, help="a UTF-8 text file of your own (documents separated by blank lines)")
    g.add_argument(
        "--corpus",
        choices=CORPORA,
        default="sms",
        help="sms: the SMS messages + UCI sentences (small, on disk); imdb: the 50,000 raw IMDB reviews "
        "(Stanford aclImdb, 84 MB download unless $KERAS_CASES_DATA_DIR/aclImdb exists)",
    )
    g.add_argument("--data-seed", type=cli.seed, default=0, help="seed of the split by document")
    g.add_argument("--models", default=",".join(NETWORKS), help=f"networks, comma-separated: {', '.join(NETWORKS)}")
    g.add_argument("--context", type=cli.positive_int, default=64, help="bytes of context (the window length)")
    add_network_flags(p)
    g.add_argument("--learning-rate", type=cli.positive_float, default=3e-3)
    g.add_argument(
        "--weight-decay",
        type=cli.nonnegative_float,
        default=0.1,
        help="AdamW's decoupled weight decay, on kernels and embedding tables only (not biases or norms)",
    )
    g.add_argument(
        "--patience",
        type=cli.positive_int,
        default=2,
        help="early stopping on validation loss; the weights of the best validation epoch are kept",
    )
    g.add_argument(
        "--train-stride",
        type=cli.nonnegative_int,
        default=0,
        help="bytes between the starts of training windows (0: half of --context); smaller gives "
        "more, overlapping windows and more steps per epoch",
    )
    g.add_argument(
        "--max-train-bytes", type=cli.nonnegative_int, default=0, help="use only this many training bytes (0: all)"
    )
    g.add_argument("--prompt", action="append", default=None, help="a prompt for the report's samples (repeatable)")
    g.add_argument("--sample-length", type=cli.positive_int, default=200, help="bytes per sample in the report")
    add_sampling_flags(g)
    return p


def check_args(args):
    if args.width % args.heads:
        raise UserError(f"--heads {args.heads} must divide --width {args.width}")
    if args.input_ngrams == 1 or args.input_ngrams > 8:
        raise UserError(f"--input-ngrams {args.input_ngrams}: use 0 (off) or 2 to 8 bytes")
    if not 2 <= args.context <= 2048:
        raise UserError(f"--context {args.context}: use 2 to 2048 bytes")
    if args.local_mixing > 64:
        raise UserError(f"--local-mixing {args.local_mixing}: use 0 (off) to 64 bytes")
    if args.ngram_buckets > MAX_BUCKETS:
        raise UserError(f"--ngram-buckets {args.ngram_buckets}: use 1 to {MAX_BUCKETS:,} rows")
    if args.weight_decay > 1:
        raise UserError(f"--weight-decay {args.weight_decay}: use 0 to 1 (it shrinks the matrices every step)")
    return cli.parse_list(args.models, "--models", NETWORKS, "model")


def load_corpus(args) -> C.Corpus:
    if args.text and args.corpus != "sms":
        raise UserError(f"--text and --corpus {args.corpus} both name the text: give one")
    if args.text:
        docs, name = C.read_documents(args.text)
    else:
        docs, name = C.imdb_documents() if args.corpus == "imdb" else C.default_documents()
    corpus = C.split(docs, name, args.data_seed, min_tokens=args.context + 2)
    if args.max_train_bytes:
        corpus.streams["train"] = corpus.streams["train"][: max(args.max_train_bytes, args.context + 2)]
    return corpus


def study_ngram(corpus, windows, metrics) -> str:
    from keras_cases.textgen.ngram import NGram

    model = NGram(corpus.streams["train"])
    order, val_scores = model.choose(*windows["val"])
    metrics["ngram_context"] = order
    metrics["ngram_val_bits"] = val_scores[order]
    metrics["ngram_test_bits"] = model.bits(*windows["test"], order)
    rows = " | ".join(f"{k}: {v:.3f}" for k, v in val_scores.items())
    return (
        f"Witten-Bell interpolation over 0 to {max(val_scores)} bytes of context; validation bits per byte by "
        f"context length: {rows}. Chosen: **{order} bytes**, test {metrics['ngram_test_bits']:.3f} bits per byte."
    )


def build_network(kind, args):
    from keras_cases.textgen import models

    shared = {"dropout": args.dropout, "input_ngrams": args.input_ngrams, "buckets": args.ngram_buckets}
    if kind == "transformer":
        return models.gpt(
            args.context,
            args.width,
            args.layers,
            args.heads,
            **shared,
            local=args.local_mixing,
            activation=args.activation,
        )
    return models.lstm(args.context, args.lstm_width, **shared)


def train_network(kind, args, windows, seed, steps_per_epoch):
    """The network trained with early stopping; it ends with the weights of its best validation
    epoch (restore_best_weights, also when no epoch stopped it). -> model, history, test bits, seconds."""
    import keras

    from keras_cases import runtime
    from keras_cases.callbacks import EpochClock, resumable, tensorboard
    from keras_cases.data import batches
    from keras_cases.textgen import models

    runtime.set_seed(seed)
    model = build_network(kind, args)
    steps = steps_per_epoch * args.epochs
    models.compile_model(model, args.learning_rate, steps, min(100, max(1, steps // 10)), args.weight_decay)
    x, y = windows["train"]
    data, name = batches(x, y, args.batch_size, seed), f"{kind}_seed{seed}"
    clock = EpochClock()
    stop = keras.callbacks.EarlyStopping(patience=args.patience, restore_best_weights=True)
    hist = model.fit(
        data,
        validation_data=windows["val"],
        epochs=args.epochs,
        verbose=args.verbose,
        callbacks=resumable(name, [stop, clock, *tensorboard(name)], data),
    )
    test_bits = model.evaluate(*windows["test"], batch_size=256, verbose=0) / math.log(2)
    return model, hist.history, float(test_bits), clock.total


def one_seed(kind, args, windows, seed, steps_per_epoch, history) -> tuple:
    """One network of one seed, its curves into `history`; -> model, its row of numbers."""
    model, h, bits, seconds = train_network(kind, args, windows, seed, steps_per_epoch)
    history[f"{kind}_seed{seed}"] = {
        **h,
        "bits per byte": [v / math.log(2) for v in h["loss"]],
        "val_bits per byte": [v / math.log(2) for v in h["val_loss"]],
    }
    row = {
        "test": bits,
        "val": min(h["val_loss"]) / math.log(2),
        "best_epoch": int(np.argmin(h["val_loss"])) + 1,
        "epochs": len(h["loss"]),
        "seconds": seconds,
    }
    print(
        f"{kind} seed {seed}: test {bits:.3f} bits per byte; validation {row['val']:.3f} at epoch "
        f"{row['best_epoch']} of {row['epochs']} (its weights kept); {seconds:.0f} s",
        flush=True,
    )
    return model, row


def study_networks(kinds, args, seeds, windows, metrics, history):
    steps_per_epoch = math.ceil(len(windows["train"][0]) / args.batch_size)
    kept, rows = {}, []
    for kind in kinds:
        results = []
        for seed in seeds:
            model, row = one_seed(kind, args, windows, seed, steps_per_epoch, history)
            kept.setdefault(kind, model)
            results.append(row)
        per = {k: [r[k] for r in results] for k in results[0]}
        mean, std = mean_std(per["test"])
        metrics.update(
            {f"{kind}_test_bits": mean, f"{kind}_test_bits_std": std, f"{kind}_params": kept[kind].count_params()}
        )
        metrics[f"{kind}_val_bits"] = float(np.mean(per["val"]))
        metrics.update({f"{kind}_{k}_per_seed": per[v] for k, v in (("test_bits", "test"), ("val_bits", "val"))})
        metrics[f"{kind}_best_epoch_per_seed"] = per["best_epoch"]
        rows.append(
            f"| {kind} | {kept[kind].count_params():,} | {pm(per['val'], '{:.3f}')} | {pm(per['test'], '{:.3f}')} | "
            f"{', '.join(map(str, per['best_epoch']))} of {args.epochs} | {np.mean(per['seconds']):.0f} |"
        )
    return kept, rows


def comparison(kinds, metrics, rows, args) -> str:
    tables = f"{args.ngram_buckets:,}-row hashed tables of the 2..{args.input_ngrams}-byte n-grams, "
    setup = (
        f"Both networks: {tables if args.input_ngrams else ''}dropout {args.dropout}, AdamW (learning rate "
        f"{args.learning_rate}, weight decay {args.weight_decay} on the matrices), at most {args.epochs} epoch(s), "
        f"early stopping (patience {args.patience}) on validation loss; each ends with the weights of its best "
        "validation epoch."
    )
    primer = [f"a causal depthwise convolution over {args.local_mixing} bytes before each attention"] * (
        args.local_mixing > 1
    ) + ["the squared ReLU in its MLPs"] * (args.activation == "relu2")
    if primer:
        setup += f" The transformer has Primer's {' and '.join(primer)} (So et al. 2021)."
    setup += "\n\n"
    head = setup + (
        "| model | parameters | validation bits per byte (best epoch) | test bits per byte (mean ± std over seeds) | "
        "best epoch (its weights kept) | seconds |\n|---|---|---|---|---|---|"
    )
    ngram = (
        f"| n-gram ({metrics['ngram_context']} bytes of context) | (counts) | {metrics['ngram_val_bits']:.3f} | "
        f"{metrics['ngram_test_bits']:.3f} | - | - |"
    )
    lines = [head, *rows, ngram]
    if "transformer" in kinds:
        t = metrics["transformer_test_bits"]
        for ref in [k for k in ("lstm", "ngram") if f"{k}_test_bits" in metrics]:
            gap = metrics[f"{ref}_test_bits"] - t
            verdict = "beats" if gap > 0 else "does not beat"
            lines.append(
                f"\nThe transformer {verdict} the {SHOWN[ref]}: {gap:+.3f} bits per byte (positive: transformer better)."
            )
    return "\n".join(lines) + "\n\n![bits per byte, training (solid) and validation (dashed)](learning_curves.png)"


def samples_section(model, corpus, args) -> str:
    from keras_cases.textgen.sample import generate

    prompts = args.prompt or ["I ", "The food was ", "Are you "]
    lines = [
        f"From the transformer (seed {args.seed}), temperature {args.temperature}, top-k {args.top_k or 'off'}, "
        f"top-p {args.top_p}; each continues the prompt (in bold) until it ends the document or reaches "
        f"{args.sample_length} bytes.\n"
    ]
    for i, prompt in enumerate(prompts):
        text = generate(
            model, prompt, args.sample_length, args.context, args.temperature, args.top_k, args.top_p, args.seed + i
        )
        lines.append(f"- **{prompt.strip()}** {text.strip()}".replace("\n", " "))
    return "\n".join(lines)


@command
def main(argv=None):
    import sys

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sample"]:
        from keras_cases.textgen.sample import sample_main

        return sample_main(argv[1:])
    args = make_parser().parse_args(argv)
    kinds = check_args(args)
    corpus = load_corpus(args)
    windows = {
        k: C.windows(s, args.context, (args.train_stride or max(1, args.context // 2)) if k == "train" else None)
        for k, s in corpus.streams.items()
    }
    run, _, seeds = cli.start(CASE, args, f"models {', '.join(kinds)} + n-gram on {corpus.name}")
    metrics = {
        "dataset": corpus.name,
        **{f"n_{k}": int(len(s)) for k, s in corpus.streams.items()},
        "documents": corpus.documents,
        "ascii_share": corpus.ascii_share,
        "seed": args.seed,
        "seeds": args.seeds,
        "quick": args.quick,
        "context": args.context,
    }
    sections = [("The n-gram baseline", study_ngram(corpus, windows, metrics))]
    history = {}
    kept, rows = study_networks(kinds, args, seeds, windows, metrics, history)
    sections.append(("Bits per byte on the test documents", comparison(kinds, metrics, rows, args)))
    from keras_cases import plots, runtime

    plots.learning_curves(history, run.path("learning_curves.png"), metrics=("bits per byte",))
    best = "transformer" if "transformer" in kept else kinds[0]
    runtime.save_model(kept[best], run.path("model.keras"))
    run.write_json("textgen.json", {"model": best, "context": args.context, "vocab": "bytes + boundary (257)"})
    sections.append(("Samples", samples_section(kept[best], corpus, args)))
    headline = {"bits_per_byte": metrics[f"{best}_test_bits"], "ngram_bits_per_byte": metrics["ngram_test_bits"]}
    notes = [
        f"split by document: {corpus.documents['train']:,} / {corpus.documents['val']:,} / {corpus.documents['test']:,} "
        f"documents (bytes above); {100 * corpus.ascii_share:.1f}% of the test bytes are ASCII",
        f"`model.keras`: the {best} of seed {seeds[0]}; sample with `python -m keras_cases.textgen sample --run {run.dir}`",
    ]
    run.finish(
        metrics, sections, title="Text generation: a miniature GPT", headline=headline, history=history, notes=notes
    )
    return 0
