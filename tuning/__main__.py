"""`python -m tuning` lists the searches."""

from tuning import SEARCHES


def main():
    print("KerasTuner searches: python -m tuning.<search> [--help]\n")
    for name, what in SEARCHES.items():
        print(f"  {name:<13} {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
