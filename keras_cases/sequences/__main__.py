"""`python -m keras_cases.sequences`: see keras_cases/sequences/case.py."""

from keras_cases import cli
from keras_cases.sequences.case import main

raise SystemExit(cli.run(main))
