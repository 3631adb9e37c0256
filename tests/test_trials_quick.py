"""The quick rounds of every reliability trial (`python -m trials` prints the same table; the
long rounds are `python -m trials --full`). A trial that misses its pass figure fails here."""

from __future__ import annotations

import pytest

from trials import Trial, all_trials
from trials.report import run_one

TRIALS = all_trials()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("trial", TRIALS, ids=[t.name for t in TRIALS])
def test_trial_meets_its_figure(trial: Trial) -> None:
    result = run_one(trial, full=False)
    assert result.passed, f"{trial.name}: {result.measured}\n" + "\n".join(result.details)
