"""The representation quick run of one backend, for tests/test_representation.py: loaded by
_image_runs.run_everywhere's body (tests/scripts/image_predict.py) and called with `here`."""

from keras_cases.representation.case import main


def run(here, out, extra):
    assert main(["--quick", "--out", str(here), "-v", "0"]) == 0
