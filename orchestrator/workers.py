"""Worker processes for storing and post-processing: started from a fork server, gone with
their parent.

`start_worker_processes` starts a pool whose workers exit soon after the process that started
them is gone, even killed with SIGKILL, and remove the folder multiprocessing kept for it.
`start_serving_processes` starts such workers each on a pipe of its own, taking one call at
a time (`worker_side.serve`; the store's, see `store_pipes`). If no worker process can start,
they say why in the log and return None: the caller works in threads, slower for large images
but with the same results. `WorkerPool` is one such pool as a stage holds it: started once,
replaced when it breaks.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.process
import multiprocessing.util
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from typing import Generic, TypeVar

from .worker_side import leave_with, serve

__all__ = [
    "Served",
    "WorkerPool",
    "before_exit",
    "start_serving_processes",
    "start_worker_processes",
]

PRELOAD = ("orchestrator.store_work", "orchestrator.journal.fence")
"""What the fork server imports once, as it starts, so that each worker forked from it has it
already: what storing and post-processing run in a worker, and the lease check a store worker
is sent. These import little (Pillow, the workspace's files, SQLite), so the fork server is up
sooner and the workers with it."""
SOCKET_PATH_MAX = 104 if os.uname().sysname in {"Darwin", "FreeBSD"} else 108
"""The longest path of a UNIX socket, with its final NUL (sockaddr_un's sun_path)."""
_SOCKET_TAIL = len("/pymp-12345678/listener-12345678") + 1
_SHORT_BASES = ("/tmp", "/var/tmp")

_log = logging.getLogger(__name__)
Pool = TypeVar("Pool")
Served = tuple[BaseProcess, Connection]
"""A worker process that `serve`s, and this process's end of its pipe."""


class WorkerPool(Generic[Pool]):
    """A stage's worker processes: started on first use, replaced when one dies; none once the
    system refused to start them (or with `processes=False`), and the stage works in threads."""

    def __init__(
        self,
        workers: int,
        start: Callable[[int], Pool | None],
        stop: Callable[[Pool], None],
        *,
        processes: bool = True,
    ) -> None:
        self.workers = workers
        self.processes = processes
        """Worker processes are asked for and, as far as is known, can start."""
        self._start, self._stop = start, stop
        self._pool: Pool | None = None
        self._changed = threading.Condition()
        """Held for a moment at a time, also by the loop (`discard`, `close`); never while a
        pool starts, which takes a few hundred ms."""
        self._starting = False
        self._closes = 0
        """How many times the pool was closed: a start that a close overtook stops its pool."""

    @property
    def started(self) -> Pool | None:
        """The pool if it has started, without starting it."""
        return self._pool

    def start(self) -> Pool | None:
        """The pool, started if need be (blocking: call it from a thread; another caller waits
        for a start under way); None for threads."""
        with self._changed:
            self._changed.wait_for(lambda: not self._starting)
            if self._pool is not None or not self.processes:
                return self._pool
            self._starting, closes = True, self._closes
        try:
            pool = self._start(self.workers)
        except BaseException:
            self._started(None, closes, failed=True)
            raise
        if self._started(pool, closes) or pool is None:
            return pool
        self._stop(pool)  # closed as it started: nobody is to use it
        return None

    def _started(self, pool: Pool | None, closes: int, *, failed: bool = False) -> bool:
        """Record the outcome of a start begun after `closes` closes; False if a close came
        meanwhile (the pool is not kept)."""
        with self._changed:
            self._starting = False
            kept = self._closes == closes
            if kept and not failed:
                self._pool, self.processes = pool, pool is not None
            self._changed.notify_all()
        return kept

    def discard(self, pool: Pool) -> None:
        """Shut a broken pool down, unless a new one has taken its place already (two callers
        that saw it break must not shut the fresh one); the next call starts another."""
        with self._changed:
            if self._pool is pool:
                self._pool = None
        self._stop(pool)

    def close(self) -> None:
        """Shut the pool down; one that is starting is shut down as soon as it is up."""
        with self._changed:
            pool, self._pool = self._pool, None
            self._closes += 1
        if pool is not None:
            self._stop(pool)


def process_pool(workers: int, *, processes: bool = True) -> WorkerPool[ProcessPoolExecutor]:
    """A `WorkerPool` of `start_worker_processes`."""
    return WorkerPool(workers, start_worker_processes, _shut, processes=processes)


def _shut(pool: ProcessPoolExecutor) -> None:
    pool.shutdown(wait=False, cancel_futures=True)


def start_worker_processes(workers: int) -> ProcessPoolExecutor | None:
    """A started pool of `workers` processes (the fork server and a first worker are up), or
    None, logged, if the system refuses to start them. Blocks for a few hundred ms."""
    if not _may_start():
        return None
    pool = None
    try:
        context = _context()
        with _deaf_to_ctrl_c():
            pool = ProcessPoolExecutor(
                workers,
                mp_context=context,
                initializer=leave_with,
                initargs=(os.getpid(), _socket_folder()),
            )
            pool.submit(os.getpid).result()
    except BaseException as error:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        _refused(error, BrokenProcessPool)
        return None
    return pool


def start_serving_processes(workers: int) -> list[Served] | None:
    """`workers` processes that `serve`, each on a pipe of its own, all up and answering; or
    None, logged, if the system refuses to start them. Blocks for a few hundred ms."""
    if not _may_start():
        return None
    served: list[Served] = []
    try:
        context = _context()
        with _deaf_to_ctrl_c():
            for _ in range(workers):
                mine, theirs = context.Pipe()
                args = (theirs, os.getpid(), _socket_folder())
                process = context.Process(target=serve, args=args, name="store", daemon=True)
                process.start()
                theirs.close()  # the worker has it now: its end closes when it dies
                served.append((process, mine))
        for _, connection in served:  # each one answers once before it is used
            connection.send_bytes(pickle.dumps((os.getpid, ())))
            connection.recv_bytes()
    except BaseException as error:
        for _, connection in served:
            connection.close()  # a worker that started leaves as it sees its pipe closed
        _refused(error, EOFError)
        return None
    return served


def _may_start() -> bool:
    if multiprocessing.current_process().daemon:  # a pool's worker itself: it may not
        _log.warning("working in threads: a daemonic process cannot start worker processes")
        return False
    return True


def _context() -> ForkServerContext:
    """The fork server's context, with what its workers run preloaded (`PRELOAD`)."""
    _start_quiet_resource_tracker()  # it unblocks SIGINT in this thread once started
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def _refused(error: BaseException, died: type[BaseException]) -> None:
    """Said once, in the log, when the system refuses worker processes, or one dies as it
    starts (`died`: the main module cannot be imported again, as with a script read from
    stdin); anything else is raised."""
    if not isinstance(error, OSError | died):
        raise error
    _log.warning("working in threads: no worker process could start (%r)", error)


@contextlib.contextmanager
def _deaf_to_ctrl_c() -> Iterator[None]:
    """SIGINT blocked in this thread while it starts the fork server, which every worker is
    forked from: they inherit the mask, so Ctrl-C (sent by the terminal to the whole process
    group) never reaches them, not even while Python starts up in them, before a handler can
    be set (it printed a `KeyboardInterrupt` traceback there). Ctrl-C is for this process,
    which stops its workers itself. (multiprocessing starts its resource tracker the same
    way.)"""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if signal.SIGINT not in before:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _start_quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (unless it runs) with its leak warning off.

    The tracker is a process of its own. When this process dies without unlinking the pools'
    named semaphores (killed with SIGKILL), it unlinks them, which is right, and prints
    "UserWarning: resource_tracker: There appear to be 5 leaked semaphore objects" on the
    user's terminal, which only alarms: nothing is lost and nothing is left. The tracker takes
    its warning filters from `sys.warnoptions` as it starts, so one is added for that moment."""
    before = list(sys.warnoptions)
    sys.warnoptions.append("ignore:resource_tracker:UserWarning")
    try:
        resource_tracker.ensure_running()
    finally:
        sys.warnoptions[:] = before


def _socket_folder() -> str:
    """The folder multiprocessing keeps the fork server's socket in (made if need be).

    It is made in the temporary folder, as multiprocessing does, unless the socket's path would
    be too long there (a deep `TMPDIR`): then the fork server cannot listen ("AF_UNIX path too
    long") and no image over the thread limit could be post-processed. Then it is made in /tmp
    or /var/tmp instead, as newer Pythons' multiprocessing does (CPython gh-132124); it keeps
    the folder it uses in the process's private config, which `get_temp_dir` reads."""
    config = multiprocessing.process.current_process()._config  # type: ignore[attr-defined]
    if config.get("tempdir") is None and _too_long(tempfile.gettempdir()):
        base = next((b for b in _SHORT_BASES if os.access(b, os.W_OK | os.X_OK)), None)
        if base is not None:
            folder = tempfile.mkdtemp(prefix="pymp-", dir=base)
            multiprocessing.util.Finalize(
                None, shutil.rmtree, args=(folder, True), exitpriority=-100
            )
            config["tempdir"] = folder
    return multiprocessing.util.get_temp_dir()


def before_exit() -> None:
    """For a process about to end with `os._exit` (the `imagebatch` program), which skips
    multiprocessing's clean-up at exit, the two parts of it that leave something behind:

    - the named semaphores of the pools' queues are unlinked, as at a normal exit
      (multiprocessing's finalizers of priority 0 and up; the ones that join threads are
      below). Else the resource tracker unlinks them, and warns on the terminal;
    - the folder multiprocessing made is removed: before, every run that post-processed in
      worker processes left one in the temporary folder. The fork server that listens there
      is not needed any more."""
    multiprocessing.util._run_finalizers(0)  # type: ignore[attr-defined]
    config = multiprocessing.process.current_process()._config  # type: ignore[attr-defined]
    folder = config.get("tempdir")
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def _too_long(base: str) -> bool:
    return len(os.fsencode(base)) + _SOCKET_TAIL > SOCKET_PATH_MAX
