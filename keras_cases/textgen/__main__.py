"""`python -m keras_cases.textgen` (train) or `python -m keras_cases.textgen sample --run DIR`."""

import sys

from keras_cases import cli

if sys.argv[1:2] == ["sample"]:
    from keras_cases.textgen.sample import sample_main

    raise SystemExit(cli.run(sample_main, sys.argv[2:]))
from keras_cases.textgen.case import main

raise SystemExit(cli.run(main))
