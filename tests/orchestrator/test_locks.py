"""Per-key locks in the journal's store, with real processes as owners, and `keep_alive`."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import JournalError, KeyConflictError, LeaseLostError
from orchestrator.journal.store import Store
from orchestrator.locks import KeyLocks, LockOwner, keep_alive, pid_alive
from orchestrator.testing.clock import FakeClock

KEY = "story-1"
HOST = socket.gethostname()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "journal")
    yield opened
    opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def locks(store: Store, clock: FakeClock) -> KeyLocks:
    return KeyLocks(store, stale_after_s=300.0, clock=clock)


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of another process that stays alive for the whole test."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _plant(
    store: Store, clock: FakeClock, *, pid: int, host: str = HOST, job: str = "job-a"
) -> LockOwner:
    """Write a lock as another process would have."""
    owner = LockOwner(
        key=KEY,
        job_id=job,
        pid=pid,
        host=host,
        started_at=clock.time(),
        heartbeat_at=clock.time(),
        token="f" * 32,
    )
    store.put_json(f"lock/{KEY}", owner.model_dump())
    return owner


# -- acquire --------------------------------------------------------------------------------------


def test_a_free_key_is_taken(locks: KeyLocks, clock: FakeClock) -> None:
    owner = locks.acquire(KEY, "job-a")
    assert (owner.key, owner.job_id, owner.pid, owner.host) == (KEY, "job-a", os.getpid(), HOST)
    assert owner.started_at == owner.heartbeat_at == clock.time()
    assert len(owner.token) == 32
    assert locks.holder(KEY) == owner
    assert locks.holder("other-key") is None


def test_a_live_holder_conflicts_and_names_the_job(
    store: Store, locks: KeyLocks, clock: FakeClock, live_pid: int
) -> None:
    _plant(store, clock, pid=live_pid)
    clock.advance(42.0)
    with pytest.raises(KeyConflictError) as caught:
        locks.acquire(KEY, "job-b")
    error = caught.value
    assert (error.exit_code, error.key, error.job_id, error.live) == (5, KEY, "job-a", True)
    message = str(error)
    assert f"held by job job-a (pid {live_pid} on {HOST}, heartbeat 42s ago)" in message
    # How to free the key, in the user's terms (the CLI adds the commands to type).
    assert "cancel that job" in message and "clear the key's lock" in message
    held = locks.holder(KEY)
    assert held is not None and held.job_id == "job-a"


def test_another_job_in_this_process_conflicts(locks: KeyLocks) -> None:
    locks.acquire(KEY, "job-a")
    with pytest.raises(KeyConflictError):
        locks.acquire(KEY, "job-b")


def test_the_same_job_twice_in_one_process_conflicts(locks: KeyLocks) -> None:
    # A notebook cell run twice must not start a second runner that pays again.
    first = locks.acquire(KEY, "job-a")
    with pytest.raises(KeyConflictError):
        locks.acquire(KEY, "job-a")
    assert locks.holder(KEY) == first


def test_the_same_job_id_in_another_live_process_conflicts(
    store: Store, locks: KeyLocks, clock: FakeClock, live_pid: int
) -> None:
    _plant(store, clock, pid=live_pid, job="job-a")
    with pytest.raises(KeyConflictError):
        locks.acquire(KEY, "job-a")


def test_a_stale_heartbeat_is_taken_over(
    store: Store, locks: KeyLocks, clock: FakeClock, live_pid: int
) -> None:
    _plant(store, clock, pid=live_pid)
    clock.advance(299.0)
    with pytest.raises(KeyConflictError):
        locks.acquire(KEY, "job-b")
    clock.advance(2.0)
    owner = locks.acquire(KEY, "job-b")
    assert locks.holder(KEY) == owner


def test_a_dead_pid_on_this_host_is_taken_over_at_once(
    store: Store, locks: KeyLocks, clock: FakeClock, dead_pid: int
) -> None:
    _plant(store, clock, pid=dead_pid)
    assert not pid_alive(dead_pid)
    owner = locks.acquire(KEY, "job-b")
    assert owner.job_id == "job-b"


def test_a_pid_on_another_host_is_not_checked(
    store: Store, locks: KeyLocks, clock: FakeClock, dead_pid: int
) -> None:
    _plant(store, clock, pid=dead_pid, host="some-other-host")
    with pytest.raises(KeyConflictError):
        locks.acquire(KEY, "job-b")
    clock.advance(301.0)
    assert locks.acquire(KEY, "job-b").job_id == "job-b"


def test_is_live(locks: KeyLocks, clock: FakeClock, live_pid: int, dead_pid: int) -> None:
    def owner(pid: int, host: str = HOST) -> LockOwner:
        now = clock.time()
        return LockOwner(
            key=KEY, job_id="j", pid=pid, host=host, started_at=now, heartbeat_at=now, token="t"
        )

    assert locks.is_live(owner(live_pid))
    assert not locks.is_live(owner(dead_pid))
    assert locks.is_live(owner(dead_pid, host="elsewhere"))
    fresh = owner(live_pid)
    clock.advance(301.0)
    assert not locks.is_live(fresh)


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(0)
    assert not pid_alive(-1)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see a zombie")
def test_a_holder_killed_but_not_yet_reaped_is_not_alive() -> None:
    """A runner killed with SIGKILL whose parent has not waited for it yet is a zombie: its
    pid still exists, but it holds nothing. Before, its lock counted as live until the
    heartbeat went stale (minutes), and `watch` followed it that long."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(child.pid)
        child.kill()
        stat = Path(f"/proc/{child.pid}/stat")
        for _ in range(500):  # until the kernel has ended it (not reaped: no wait yet)
            if stat.read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z":
                break
            time.sleep(0.01)
        assert not pid_alive(child.pid)
    finally:
        child.kill()
        child.wait(timeout=30)


def test_an_unreadable_lock_is_reported_and_can_be_cleared(store: Store, locks: KeyLocks) -> None:
    store.put_json(f"lock/{KEY}", {"job_id": "half a record"})
    with pytest.raises(JournalError, match=r"unreadable.*clear the key.s lock") as caught:
        locks.acquire(KEY, "job-b")
    assert caught.value.option == "clear_lock"
    assert locks.clear(KEY) is None
    assert locks.acquire(KEY, "job-b").job_id == "job-b"


# -- heartbeat, release, clear ----------------------------------------------------------------


def test_heartbeat_refreshes(locks: KeyLocks, clock: FakeClock) -> None:
    owner = locks.acquire(KEY, "job-a")
    clock.advance(200.0)
    assert locks.heartbeat(owner)
    held = locks.holder(KEY)
    assert held is not None and held.heartbeat_at == clock.time()
    clock.advance(200.0)  # 400 s after taking it, but only 200 s after the heartbeat
    assert locks.is_live(held)


def test_heartbeat_after_a_takeover_is_false(
    store: Store, clock: FakeClock, locks: KeyLocks
) -> None:
    old = locks.acquire(KEY, "job-a")
    clock.advance(301.0)
    new = locks.acquire(KEY, "job-b")  # stale, so taken over even within this process
    assert not locks.heartbeat(old)
    assert locks.holder(KEY) == new


def test_release_with_a_stale_token_keeps_the_new_holder(clock: FakeClock, locks: KeyLocks) -> None:
    old = locks.acquire(KEY, "job-a")
    clock.advance(301.0)
    new = locks.acquire(KEY, "job-b")
    locks.release(old)
    assert locks.holder(KEY) == new
    locks.release(new)
    assert locks.holder(KEY) is None
    locks.release(new)  # releasing a free key is harmless


def test_clear_removes_whoever_holds_it(locks: KeyLocks) -> None:
    owner = locks.acquire(KEY, "job-a")
    assert locks.clear(KEY) == owner
    assert locks.holder(KEY) is None
    assert locks.clear(KEY) is None
    assert not locks.heartbeat(owner)
    assert locks.acquire(KEY, "job-b").job_id == "job-b"


def test_keys_are_independent(locks: KeyLocks) -> None:
    a = locks.acquire("a", "job-a")
    b = locks.acquire("b", "job-b")
    assert (locks.holder("a"), locks.holder("b")) == (a, b)


# -- keep_alive -------------------------------------------------------------------------------


class AsyncLocks:
    """`KeyLocks` behind the async calls `keep_alive` makes (the journal offers the same two)."""

    def __init__(self, locks: KeyLocks) -> None:
        self.locks = locks
        self.heartbeats = 0

    async def heartbeat(self, owner: LockOwner) -> bool:
        self.heartbeats += 1
        return self.locks.heartbeat(owner)

    async def holder(self, key: str) -> LockOwner | None:
        return self.locks.holder(key)


async def _wait_for_sleeps(clock: FakeClock, count: int) -> None:
    for _ in range(200):
        if len(clock.sleeps) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"keep_alive slept {len(clock.sleeps)} times, expected {count}")


async def test_keep_alive_heartbeats_until_cancelled(locks: KeyLocks, clock: FakeClock) -> None:
    owner = locks.acquire(KEY, "job-a")
    beats = AsyncLocks(locks)
    task = asyncio.create_task(keep_alive(beats, owner, 60.0, clock))
    await _wait_for_sleeps(clock, 4)
    held = locks.holder(KEY)
    assert held is not None and held.heartbeat_at >= owner.heartbeat_at + 180.0
    assert clock.sleeps[:4] == [60.0] * 4
    assert beats.heartbeats >= 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_keep_alive_stops_when_the_lock_is_taken_over(
    store: Store, clock: FakeClock, locks: KeyLocks
) -> None:
    owner = locks.acquire(KEY, "job-a")
    other = KeyLocks(store, stale_after_s=300.0, clock=clock)
    clock.advance(301.0)
    other.acquire(KEY, "job-b")
    beats = AsyncLocks(locks)
    with pytest.raises(LeaseLostError, match=r"taken over by job job-b \(pid \d+ on ") as caught:
        async with asyncio.timeout(5.0):
            await keep_alive(beats, owner, 10.0, clock)
    assert caught.value.exit_code == 6
    assert beats.heartbeats == 1  # it stops at the first heartbeat that finds the lock gone
    held = locks.holder(KEY)
    assert held is not None and held.job_id == "job-b"  # and leaves the new holder alone


async def test_keep_alive_stops_when_the_lock_is_cleared(clock: FakeClock, locks: KeyLocks) -> None:
    owner = locks.acquire(KEY, "job-a")
    locks.clear(KEY)
    with pytest.raises(LeaseLostError, match="was cleared"):
        async with asyncio.timeout(5.0):
            await keep_alive(AsyncLocks(locks), owner, 10.0, clock)
    assert locks.holder(KEY) is None  # a lost heartbeat does not take the lock back


# -- across processes -------------------------------------------------------------------------

RACER = """
import pathlib, sys, time
from orchestrator.errors import KeyConflictError
from orchestrator.journal.store import Store
from orchestrator.locks import KeyLocks

directory, go, job_id = sys.argv[1:4]
locks = KeyLocks(Store(pathlib.Path(directory)))
print("ready", flush=True)
while not pathlib.Path(go).exists():
    time.sleep(0.001)
try:
    locks.acquire("story-1", job_id)
    print("won", flush=True)
except KeyConflictError:
    print("lost", flush=True)
sys.stdin.readline()  # stay alive (and holding) until the parent has every answer
"""


def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def test_processes_racing_for_one_key_exactly_one_wins(tmp_path: Path, store: Store) -> None:
    script, go = tmp_path / "racer.py", tmp_path / "go"
    script.write_text(RACER)
    racers = [
        subprocess.Popen(
            [sys.executable, str(script), str(store.directory), str(go), f"job-{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(6)
    ]
    try:
        assert [_line(p) for p in racers] == ["ready"] * 6
        go.touch()
        answers = [_line(p) for p in racers]
    finally:
        for p in racers:
            p.communicate("\n", timeout=30)
    assert sorted(answers) == ["lost"] * 5 + ["won"]
    winner = KeyLocks(store).holder(KEY)
    assert winner is not None
    assert winner.job_id == f"job-{answers.index('won')}"
    assert winner.pid == racers[answers.index("won")].pid
