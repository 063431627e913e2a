"""`python -m keras_cases.regularization`: see keras_cases/regularization/case.py."""

from keras_cases import cli
from keras_cases.regularization.case import main

raise SystemExit(cli.run(main))
