"""Run in a subprocess by tests/test_churn.py on JAX: importing the churn package imports no
Keras, and a short churn run imports neither TensorFlow nor PyTorch. Usage: churn_jax_only.py OUT_DIR"""

import sys

from keras_cases import churn, cli

assert "keras" not in sys.modules  # the package's names load on first use
assert cli.run(churn.main, ["--quick", "--epochs", "2", "-v", "0", "--out", sys.argv[1]]) == 0
bad = [m for m in ("tensorflow", "torch") if m in sys.modules]
assert not bad, bad
