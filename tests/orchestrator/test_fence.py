"""`LeaseCheck`: what a worker process reads to know its run still holds the job's key."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

import pytest

from orchestrator.journal import LeaseCheck, LeaseNotHeld


def _journal(folder: Path, token: str) -> Path:
    database = folder / "journal.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        connection.execute("INSERT INTO meta VALUES ('lock/k', ?)", (f'{{"token": "{token}"}}',))
    return database


def test_a_lease_check_reads_the_lock_as_it_stands(tmp_path: Path) -> None:
    folder = tmp_path / "a workspace #1?"  # a path that must be quoted in an SQLite URI
    folder.mkdir()
    database = _journal(folder, "t1")
    check = pickle.loads(pickle.dumps(LeaseCheck(database, "lock/k", "t1")))  # as sent
    assert check.held()
    check.require()
    with sqlite3.connect(database) as connection:  # taken over
        connection.execute('UPDATE meta SET value = \'{"token": "t2"}\'')
    assert not check.held()
    with pytest.raises(LeaseNotHeld):
        check.require()
    assert not LeaseCheck(database, "lock/other", "t1").held()


def test_a_lease_check_never_makes_a_journal(tmp_path: Path) -> None:
    missing = tmp_path / "journal.sqlite3"
    with pytest.raises(sqlite3.OperationalError):
        LeaseCheck(missing, "lock/k", "t1").held()
    assert not missing.exists()


def test_a_lock_carries_a_token_as_written_and_not_when_another_value_holds_its_text() -> None:
    import json

    from orchestrator.journal.fence import carries_token

    token = "0123abcd" * 4
    lock = {"key": "k", "job_id": "j", "pid": 1, "host": "h", "token": token}
    compact = json.dumps(lock, separators=(",", ":"))
    assert carries_token(compact, token)
    assert carries_token(json.dumps(lock), token)  # spaced: read by parsing it
    assert not carries_token(compact, "f" * 32)
    assert not carries_token(None, token)
    planted = {**lock, "key": f'"token":"{"f" * 32}"', "token": token}  # a key naming a token
    assert not carries_token(json.dumps(planted, separators=(",", ":")), "f" * 32)
    assert carries_token(json.dumps(planted, separators=(",", ":")), token)
