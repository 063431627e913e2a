"""Architecture under a parameter budget: depth, shape, optimizer x activation, families.

- `sizes`        parameter counts in closed form and the widest network of each family
                 within a budget (`Spec`, `mlp_widths`, `count_params`, ...; no Keras import)
- `models`       the functional models, their training, `Study` (each cell trained once)
- `experiments`  linear, budgets, shape, optact, families: the cells each one asks for
- `report`       the plots and the report sections
- `case`         the case study: `python -m keras_cases.architecture` (see its docstring)

Importing this package does not import Keras: the names other code takes from
`keras_cases.architecture` (`Spec`, `build_model`, `mlp_params`, `main`, ...) load their
module on first use.
"""

import importlib

_WHERE = {  # name -> the submodule that defines it
    **dict.fromkeys(
        (
            "DEPTHS",
            "SHAPES",
            "Spec",
            "largest_root",
            "shape_ratios",
            "mlp_params",
            "mlp_widths",
            "cnn_layout",
            "cnn_params",
            "cnn_channels",
            "as_sequence",
            "gru_params",
            "gru_units",
            "count_params",
            "for_budget",
        ),
        "sizes",
    ),
    **dict.fromkeys(("OPTIMIZERS", "build_model", "compile_model", "train", "Study"), "models"),
    **dict.fromkeys(
        ("EXPERIMENTS", "TITLES", "ACTIVATIONS", "BUDGETS", "RUNNERS", "best_of", "make_plan", "check_plan"),
        "experiments",
    ),
    **dict.fromkeys(("plot_experiment", "table", "cnn_vs_mlp", "report_sections"), "report"),
    **dict.fromkeys(("CASE", "QUICK", "QUICK_TRAIN_ROWS", "MAX_BUDGET", "main", "make_parser", "int_list"), "case"),
}


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"keras_cases.architecture.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'keras_cases.architecture' has no attribute {name!r}")
