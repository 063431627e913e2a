"""`python -m keras_cases.scratch`: see keras_cases/scratch/case.py."""

from keras_cases import cli
from keras_cases.scratch.case import main

raise SystemExit(cli.run(main))
