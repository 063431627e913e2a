"""Bad input rows: tabular (see __init__.py)."""

ROWS = []
BUILDERS = {}
