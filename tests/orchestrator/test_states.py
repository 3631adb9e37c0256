"""The pure state machine: every item transition, allowed or refused, and the job status."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.errors import JournalError, TransitionError
from orchestrator.states import (
    ITEM_ACTIVE,
    ITEM_TERMINAL,
    ITEM_TRANSITIONS,
    JOB_TERMINAL,
    ItemStatus,
    JobStatus,
    check_transition,
    derive_job_status,
)

P, R, C, F, X = (
    ItemStatus.PENDING,
    ItemStatus.RUNNING,
    ItemStatus.COMPLETED,
    ItemStatus.FAILED,
    ItemStatus.CANCELLED,
)

# The contract of DESIGN.md, written out by hand rather than read from the table under test.
ALLOWED = {
    (P, R),  # an attempt starts
    (P, X),  # cancelled before it ran
    (P, F),  # a dependency failed, or the provider refused the job before any call
    (R, P),  # an attempt failed and another is allowed, or the process stopped
    (R, C),
    (R, F),
    (R, X),
    (F, P),  # explicit retry
    (X, P),  # explicit retry
}
ALL_PAIRS = list(itertools.product(ItemStatus, repeat=2))
REFUSED = [pair for pair in ALL_PAIRS if pair not in ALLOWED]


def test_the_table_covers_every_status() -> None:
    assert set(ITEM_TRANSITIONS) == set(ItemStatus)


def test_the_table_is_exactly_the_designed_one() -> None:
    table = {(a, b) for a, targets in ITEM_TRANSITIONS.items() for b in targets}
    assert table == ALLOWED


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_transition_passes(current: ItemStatus, target: ItemStatus) -> None:
    check_transition(current, target)  # no exception


@pytest.mark.parametrize(("current", "target"), REFUSED)
def test_refused_transition_raises(current: ItemStatus, target: ItemStatus) -> None:
    with pytest.raises(TransitionError) as caught:
        check_transition(current, target)
    assert str(current) in str(caught.value)
    assert str(target) in str(caught.value)


def test_transition_error_is_a_journal_error() -> None:
    with pytest.raises(JournalError):
        check_transition(C, P)


def test_completed_is_final() -> None:
    for target in ItemStatus:
        with pytest.raises(TransitionError):
            check_transition(C, target)


def test_named_sets() -> None:
    assert ITEM_ACTIVE == {P, R}
    assert ITEM_TERMINAL == {C, F, X}
    assert ITEM_ACTIVE.isdisjoint(ITEM_TERMINAL)
    assert ITEM_ACTIVE | ITEM_TERMINAL == set(ItemStatus)
    assert JOB_TERMINAL == {
        JobStatus.COMPLETED,
        JobStatus.PARTIAL,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
    }


def test_statuses_are_plain_strings() -> None:
    assert ItemStatus("pending") is P
    assert f"{JobStatus.PARTIAL}" == "partial"


# ------------------------------------------------------------- derive_job_status


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({C: 3}, JobStatus.COMPLETED),
        ({C: 2, F: 1}, JobStatus.PARTIAL),
        ({C: 2, X: 1}, JobStatus.PARTIAL),
        ({C: 1, F: 1, X: 1}, JobStatus.PARTIAL),
        ({F: 3}, JobStatus.FAILED),
        ({F: 2, X: 1}, JobStatus.CANCELLED),
        ({X: 3}, JobStatus.CANCELLED),
        ({C: 3, F: 0, X: 0}, JobStatus.COMPLETED),  # zero counts do not count
    ],
)
@pytest.mark.parametrize("active", [False, True])
def test_finished_jobs(counts: dict[ItemStatus, int], expected: JobStatus, active: bool) -> None:
    assert derive_job_status(counts, active=active) is expected


@pytest.mark.parametrize(
    "counts",
    [{P: 3}, {P: 1, C: 2}, {P: 1, F: 1}, {P: 2, X: 1}],
)
def test_unfinished_job_without_a_runner_is_pending(counts: dict[ItemStatus, int]) -> None:
    assert derive_job_status(counts, active=False) is JobStatus.PENDING


@pytest.mark.parametrize(
    "counts",
    [{P: 3}, {P: 1, C: 2}, {R: 1, P: 2}, {R: 1, C: 1, F: 1}],
)
def test_unfinished_job_with_a_runner_is_running(counts: dict[ItemStatus, int]) -> None:
    assert derive_job_status(counts, active=True) is JobStatus.RUNNING


def test_a_running_item_makes_the_job_running_even_without_the_flag() -> None:
    assert derive_job_status({R: 1, C: 1}, active=False) is JobStatus.RUNNING


def test_a_single_unfinished_item_keeps_the_job_open() -> None:
    counts = {C: 99, P: 1}
    assert derive_job_status(counts, active=False) not in JOB_TERMINAL
    assert derive_job_status(counts, active=True) not in JOB_TERMINAL


def test_empty_job_has_nothing_left_to_do() -> None:
    assert derive_job_status({}, active=False) is JobStatus.COMPLETED
