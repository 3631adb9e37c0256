"""`python -m trials [--full] [--only NAME,...] [--write PATH]`: run the trials, print the table.

Exits 0 when every trial met its figure, 1 otherwise."""

from __future__ import annotations

import argparse
import sys

from .report import run_trials


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trials", description=__doc__)
    parser.add_argument("--full", action="store_true", help="the long rounds (about an hour)")
    parser.add_argument("--only", default="", help="comma-separated trial names (or parts)")
    parser.add_argument("--write", default=None, help="append the table to this markdown file")
    args = parser.parse_args(argv)
    only = [part.strip() for part in args.only.split(",") if part.strip()]
    return 0 if run_trials(full=args.full, only=only, write=args.write) else 1


if __name__ == "__main__":
    sys.exit(main())
