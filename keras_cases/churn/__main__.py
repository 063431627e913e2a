"""`python -m keras_cases.churn`: see keras_cases/churn/case.py."""

from keras_cases import cli
from keras_cases.churn.case import main

raise SystemExit(cli.run(main))
