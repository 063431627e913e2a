"""`python -m keras_cases.representation`: see keras_cases/representation/case.py."""

from keras_cases import cli
from keras_cases.representation.case import main

raise SystemExit(cli.run(main))
