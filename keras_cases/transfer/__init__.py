"""Transfer learning: a pretrained backbone, a new head, then its top blocks fine-tuned.

- `bases`     the backbones: keras.applications (ImageNet, a weights file or random) or the
              rotation-pretrained conv net (keras_cases.backbones); their blocks and stages
- `training`  the data, the model on raw pixels, both stages of one seed and their scores
- `report`    metrics over seeds, the per-class table, the figures and the report text
- `case`      the case study: `python -m keras_cases.transfer` (see its docstring)

Importing this package does not import Keras.
"""


def load_predictor(run_dir):
    """For `python -m keras_cases serve --run DIR` (see case.load_predictor)."""
    from keras_cases.transfer.case import load_predictor

    return load_predictor(run_dir)


def main(argv=None):
    """`python -m keras_cases.transfer` as a function (see case.main)."""
    from keras_cases.transfer.case import main

    return main(argv)
