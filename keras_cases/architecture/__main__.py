"""`python -m keras_cases.architecture`: see keras_cases/architecture/case.py."""

from keras_cases import cli
from keras_cases.architecture.case import main

raise SystemExit(cli.run(main))
