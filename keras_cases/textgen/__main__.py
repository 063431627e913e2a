"""`python -m keras_cases.textgen` (train) or `python -m keras_cases.textgen sample --run DIR`."""

from keras_cases import cli
from keras_cases.textgen.case import main

raise SystemExit(cli.run(main))
