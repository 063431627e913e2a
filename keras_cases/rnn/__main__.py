"""`python -m keras_cases.rnn`: see keras_cases/rnn/case.py."""

from keras_cases import cli
from keras_cases.rnn.case import main

raise SystemExit(cli.run(main))
