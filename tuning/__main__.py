"""`python -m tuning` lists the searches."""

import argparse

from tuning import SEARCHES


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tuning", description="List the KerasTuner searches.")
    p.add_argument("search", nargs="?", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.search in SEARCHES:  # `python -m tuning churn`: say how a search is run
        p.error(f"run the search as: python -m tuning.{args.search}")
    if args.search:
        p.error(f"unknown search {args.search!r}: choose from {', '.join(SEARCHES)}")
    print("KerasTuner searches: python -m tuning.<search> [--help]\n")
    for name, what in SEARCHES.items():
        print(f"  {name:<13} {what}")
    return 0


if __name__ == "__main__":
    from keras_cases import cli

    raise SystemExit(cli.run(main))
