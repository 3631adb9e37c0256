"""Performance harness for the orchestrator: run `python -m benchmarks --help`."""
