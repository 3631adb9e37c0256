"""`-v/--verbose` and `--log-file`: where the `imagebatch` logger's lines go for one command.

The lines themselves come from `orchestrator.eventlog` (one per job event and attempt). `-v`
sends them to stderr, `-vv` adds attempt starts, `--log-file PATH` appends them to PATH (with
or without `-v`). Without `-v`, warnings (a workspace on a network file system, say) still go
to stderr, as `imagebatch: warning: ...`. The handlers are removed when the command ends, so a
program that calls `main()` twice gets no line twice.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from ..errors import ConfigError
from ..eventlog import LOGGER

__all__ = ["FORMAT", "check_log_file", "logging_through", "logging_to"]

FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


def check_log_file(path: str) -> Path:
    """The log file's path, if a line could be appended there; else a `ConfigError` (before
    anything is written: the file is only made when the first line comes)."""
    target = Path(path).expanduser()
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise ConfigError(f"--log-file: {path} is a folder; name a file in it")
    if not folder.is_dir():
        raise ConfigError(f"--log-file: the folder {folder} does not exist; create it first")
    writable = os.access(target, os.W_OK) if target.exists() else os.access(folder, os.W_OK)
    if not writable:
        raise ConfigError(f"--log-file: {path} cannot be written; choose another path")
    return target


@contextlib.contextmanager
def logging_to(verbose: int, log_file: Path | None, err: TextIO) -> Iterator[None]:
    """Send the `imagebatch` logger's lines where the flags say, for the `with` block."""
    stderr = logging.StreamHandler(err)
    if verbose:
        stderr.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    else:  # the warnings only
        stderr.setLevel(logging.WARNING)
        stderr.setFormatter(logging.Formatter("imagebatch: warning: %(message)s"))
    handlers: list[logging.Handler] = [stderr]
    if log_file is not None:
        handlers.append(_LogFile(log_file, err))
        handlers[-1].setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    for handler in handlers:
        LOGGER.addHandler(handler)
    level, propagate = LOGGER.level, LOGGER.propagate
    LOGGER.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    LOGGER.propagate = False  # our lines once, not again through a root handler
    try:
        yield
    finally:
        for handler in handlers:
            LOGGER.removeHandler(handler)
            with contextlib.suppress(OSError):  # a log file that cannot be written said so
                handler.close()
        LOGGER.setLevel(level)
        LOGGER.propagate = propagate


@contextlib.contextmanager
def logging_through(err: TextIO, write_line: Callable[[str], None]) -> Iterator[None]:
    """For the `with` block, the lines the logger sends to `err` go to `write_line` instead:
    a live display draws them above itself (written past it, they break its redrawing)."""
    lines = _Lines(write_line)
    handlers = [
        handler
        for handler in LOGGER.handlers
        if type(handler) is logging.StreamHandler and handler.stream is err
    ]
    for handler in handlers:
        handler.setStream(lines)
    try:
        yield
    finally:
        for handler in handlers:
            handler.setStream(err)


class _Lines(io.TextIOBase):
    """A text stream that hands on each whole line it is written."""

    def __init__(self, write_line: Callable[[str], None]) -> None:
        self._write_line = write_line
        self._pending = ""

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._write_line(line)
        return len(text)


class _LogFile(logging.FileHandler):
    """The `--log-file` handler. When the file cannot be written (its disk full, say), it says
    so once on stderr and writes nothing more, where logging's own handler would print a
    traceback for every line: the command goes on, and so does the run."""

    def __init__(self, path: Path, err: TextIO) -> None:
        super().__init__(path, encoding="utf-8", delay=True)
        self._err = err
        self._broken = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self._broken:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if self._broken:
            return
        self._broken = True
        error = sys.exc_info()[1]
        said = getattr(error, "strerror", None) or error
        with contextlib.suppress(OSError, ValueError):
            print(
                f"imagebatch: warning: the log file {self.baseFilename} cannot be written "
                f"({said}); no more lines go to it",
                file=self._err,
                flush=True,
            )
