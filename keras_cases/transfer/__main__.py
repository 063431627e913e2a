"""`python -m keras_cases.transfer`: see keras_cases/transfer/case.py."""

from keras_cases import cli
from keras_cases.transfer.case import main

raise SystemExit(cli.run(main))
