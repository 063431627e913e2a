"""CIFAR-10: the strongest recipe we can make for the hardware at hand.

- `airbench94` airbench94's network, dirac init, BN-bias learning rate, lookahead SGD
- `model`     the recipe (`Recipe`), the airbench-style network with its fixed whitening
              layer, the optimizer and schedule, test-time augmentation, mixed precision
- `training`  the augmented batches, the epoch planner for a wall-clock budget, `train`
- `recipe`    the recipe study: train, test once, plots and the report section
- `ablation`  the ablation study: each ingredient removed in turn
- `case`      the case study: `python -m keras_cases.cifar` (see its docstring)

Importing this package does not import Keras: the names other code takes from
`keras_cases.cifar` (`Recipe`, `build_model`, `train`, `main`, ...) load their module on
first use.
"""

import importlib

_WHERE = {  # name -> the submodule that defines it
    **dict.fromkeys(
        (
            "Recipe",
            "whitening_filters",
            "build_model",
            "min_image_size",
            "initialise",
            "compile_model",
            "predict_logits",
            "accuracy",
            "set_precision",
        ),
        "model",
    ),
    **dict.fromkeys(("one_hot", "training_data", "plan_epochs", "train", "time_to"), "training"),
    **dict.fromkeys(("INGREDIENTS", "ablation"), "ablation"),
    **dict.fromkeys(
        ("CASE", "QUICK", "main", "make_parser", "parse_widths", "check_input", "recipe_from", "load_data"), "case"
    ),
}


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"keras_cases.cifar.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'keras_cases.cifar' has no attribute {name!r}")


def load_predictor(run_dir):
    """A saved run, for `python -m keras_cases serve --run DIR` (image upload)."""
    import keras_cases.cifar.airbench94  # noqa: F401  (registers airbench94's ScaledBias, optimizer)
    import keras_cases.layers  # noqa: F401  (registers the ViT's PositionEmbedding for loading)
    from keras_cases.data import images

    return images.ImagePredictor(run_dir, "cifar")
