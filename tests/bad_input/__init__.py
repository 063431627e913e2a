"""Rows of the bad-input table (tests/test_bad_input.py), one module per area.

Each module defines ROWS, a list of (id, command, argv, expect):
- command: the module run as `python -m <command>` (its `main(argv)` is called in-process)
- argv: the command line; "{name}" is replaced by the path BUILDERS[name](ctx) returns
- expect: a lower-case fragment the one error line must contain (it names the problem)
and BUILDERS, {name: function(ctx) -> path}, that make the bad inputs (ctx: tests/test_bad_input.Context).
"""
