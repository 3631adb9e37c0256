"""Reliability and security trials (issue 12): each trial runs a job the way a user would, under a
fault, a crash or hostile input, and reports the figure the issue sets as its pass mark.

`python -m trials` runs the quick rounds and prints a markdown table; `python -m trials --full`
runs the long ones (200 kills, 200 races, ...). The test suite runs the quick rounds
(`tests/test_trials_quick.py`) and fails when a trial misses its figure.

A trial is a function registered with `@trial(name, figure)` in a module of this package. It gets
a `Rounds` (how many rounds to run, and a temporary folder) and returns a `Result`: the measured
figure in words and whether it meets the pass figure. Modules are found by name, so adding a
trial means adding a module (or a function to one), nothing else.
"""

from .registry import Result, Rounds, Trial, all_trials, trial

__all__ = ["Result", "Rounds", "Trial", "all_trials", "trial"]
