"""`python -m keras_cases.forecast`: see keras_cases/forecast/case.py."""

from keras_cases import cli
from keras_cases.forecast.case import main

raise SystemExit(cli.run(main))
