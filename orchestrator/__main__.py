"""`python -m orchestrator` runs the imagebatch command line (and leaves at once when done)."""

from .cli.leave import entry

if __name__ == "__main__":
    entry()
