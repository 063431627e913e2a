"""`python -m keras_cases.generative`: see keras_cases/generative/case.py."""

from keras_cases import cli
from keras_cases.generative.case import main

raise SystemExit(cli.run(main))
