"""Bad input rows: images (see __init__.py)."""

ROWS = []
BUILDERS = {}
