"""`python -m keras_cases` lists the case studies."""

import importlib.util
import sys

CASES = [
    ("churn", "tabular customer churn: class weights, threshold tuned for recall, vs logistic regression"),
    ("scratch", "NumPy from-scratch networks, optimizers and RNN/BPTT, checked against Keras autodiff"),
    ("spam", "SMS spam: LSTM / GRU / BiLSTM / Conv1D / Transformer vs TF-IDF + logistic regression"),
    ("sentiment", "sentence sentiment (IMDB when online, UCI sentences offline) with the same text models"),
    ("architecture", "MLP vs CNN vs GRU under parameter budgets, optimizers x activations"),
    ("representation", "autoencoders vs PCA, encoder reuse, self-supervised pretext tasks"),
    ("transfer", "transfer learning with keras.applications: frozen vs fine-tuned"),
    ("cifar", "the strongest CIFAR-10 recipe for the hardware, inside a wall-clock budget, with an ablation"),
    ("sequences", "change-point detection and summarise-and-query memory"),
    ("rnn", "vanishing gradients and RNN vs LSTM vs GRU"),
    ("forecast", "electricity demand forecasting vs seasonal-naive and linear baselines"),
    ("regularization", "over/underfitting, dropout, L2, early stopping, bias-variance"),
    ("generative", "a convolutional VAE and a DCGAN on MNIST / digits / CIFAR-10, on every backend"),
    ("textgen", "a miniature GPT on real text vs an n-gram and a character LSTM, in bits per byte; sampling"),
]


def available():
    return [(n, d) for n, d in CASES if importlib.util.find_spec(f"keras_cases.{n}") is not None]


COMMANDS = {
    "serve": ("keras_cases.serve", "serve_main", "serve a saved run over HTTP (API + web page)"),
    "runs": ("keras_cases.dashboard", "runs_main", "dashboard of every run under runs/"),
    "export": ("keras_cases.export", "export_main", "export a saved run to SavedModel or ONNX"),
    "compress": ("keras_cases.compress", "compress_main", "int8-quantize, prune or distill a saved run"),
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        import importlib

        from keras_cases import cli

        module, func, _ = COMMANDS[argv[0]]
        return cli.run(getattr(importlib.import_module(module), func), argv[1:])
    if argv and argv[0] not in ("-h", "--help"):
        print(
            f"error: unknown command {argv[0]!r}: use a case module (python -m keras_cases.<case>) "
            f"or one of {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    cases = available()
    print("keras-cases: run one with  python -m keras_cases.<case> [--quick] [--help]\n")
    width = max(len(n) for n, _ in cases)
    for name, desc in cases:
        print(f"  {name:<{width}}  {desc}")
    print("\ncommands: python -m keras_cases <command> --help")
    for name, (_, _, desc) in COMMANDS.items():
        print(f"  {name:<{width}}  {desc}")
    print("\nbackend: KERAS_BACKEND=jax|tensorflow|torch (or --backend); results in runs/<case>/")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `python -m keras_cases | head`: the reader left, not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
