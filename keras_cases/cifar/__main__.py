"""`python -m keras_cases.cifar`: see keras_cases/cifar/case.py."""

from keras_cases import cli
from keras_cases.cifar.case import main

raise SystemExit(cli.run(main))
