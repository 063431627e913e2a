"""Bad input rows: services (see __init__.py)."""

ROWS = []
BUILDERS = {}
