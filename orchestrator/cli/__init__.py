"""The `imagebatch` command line: parse, run the command on one event loop, map errors to codes.

```
parser    the arguments          running   run demo create estimate start resume retry watch
context   what commands share    reading   status list cancel clear-lock webhooks
live      following a job        display   the live rich display   report   what is printed
stats     the stats command      logs      -v and --log-file      detach    run/start --detach
```

`tui` opens the terminal UI (the top-level package `tui`), imported only for that command; it
runs on Textual's own event loop instead of `asyncio.run`.

Exit codes: 0 all completed, 2 bad input, 3 partial, 4 failed or cancelled, 5 key conflict,
6 the job's lock was taken over or cleared while it ran, 7 the workspace cannot be written,
129 stopped because its terminal closed (SIGHUP), 130 interrupted by Ctrl-C, 143 stopped by
SIGTERM (each way the job stays resumable).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, ImageBatchError, StorageError
from ..storage import Workspace
from .hints import describe
from .leave import EXIT_HUNG_UP, EXIT_TERMINATED, hung_up_stops, leave_terminal
from .parser import build_parser

if TYPE_CHECKING:
    from .context import Context

__all__ = ["build_parser", "main"]

EXIT_INTERRUPTED = 130
_STOPPED = {
    "SIGTERM": ("stopped by SIGTERM", EXIT_TERMINATED),
    "SIGHUP": ("stopped: its terminal closed (SIGHUP)", EXIT_HUNG_UP),
}
STALE_ENV = "IMAGEBATCH_STALE_AFTER_S"

Command = Callable[["Context", argparse.Namespace], Awaitable[int]]
COMMANDS: dict[str, str] = {
    "run": "running:cmd_run",
    "demo": "running:cmd_demo",
    "create": "running:cmd_create",
    "estimate": "running:cmd_estimate",
    "start": "running:cmd_start",
    "resume": "running:cmd_resume",
    "retry": "running:cmd_retry",
    "watch": "running:cmd_watch",
    "cancel": "reading:cmd_cancel",
    "stop": "reading:cmd_stop",
    "status": "reading:cmd_status",
    "list": "reading:cmd_list",
    "stats": "stats:cmd_stats",
    "clear-lock": "reading:cmd_clear_lock",
    "webhooks": "reading:cmd_webhooks",
}
"""Where each command's function lives, imported only for that command: `--help` loads none
of them, and no command loads a provider's SDK before it builds the provider."""


def command(name: str) -> Command:
    """The function of the command `name`, imported now."""
    module, _, function = COMMANDS[name].partition(":")
    found: Command = getattr(importlib.import_module(f".{module}", __name__), function)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "fake-server":
        from ..testing.fakeserver.cli import run_fake_server_command

        code: int = run_fake_server_command(args)
        return code
    if args.command == "tui":
        return _run_tui(args)  # Textual runs its own event loop
    from .context import Context
    from .logs import check_log_file, logging_to

    try:
        ctx = Context(
            workspace=Workspace.resolve(args.workspace, os.environ),
            env=os.environ,
            progress=False if args.no_progress or args.verbose else None,
            stale_after_s=_stale_after(args.stale_after, os.environ),
        )
        log_file = check_log_file(args.log_file) if args.log_file else None
    except ImageBatchError as error:
        print(f"imagebatch: error: {describe(error)}", file=sys.stderr)
        return error.exit_code
    with logging_to(args.verbose, log_file, sys.stderr):
        return _run(ctx, args)


def _run(ctx: Context, args: argparse.Namespace) -> int:
    import asyncio

    from .context import OutputLost

    try:
        code = asyncio.run(_dispatch(ctx, args))
        if ctx.winding_down and code == EXIT_INTERRUPTED:  # the calls under way were let finish
            return _say_stopped(ctx)  # (the code of what asked: Ctrl-C or SIGTERM)
        return code
    except ImageBatchError as error:
        said = describe(error)
        if isinstance(error, StorageError) and ctx.current_job:
            said += f", then `imagebatch resume {ctx.current_job}` continues the job"
        print(f"imagebatch: error: {said}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:
        # `imagebatch status | head`: the reader left; say nothing more, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OutputLost as lost:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # what is still buffered
        print(f"imagebatch: error: the output could not be written ({lost})", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        return _say_stopped(ctx)


def _say_stopped(ctx: Context) -> int:
    """Say how the command was stopped and how to go on; the exit code that means it."""
    where = f"; `imagebatch resume {ctx.current_job}` continues it" if ctx.current_job else ""
    what, code = _STOPPED.get(ctx.stopped_by or "", ("interrupted", EXIT_INTERRUPTED))
    if ctx.stopped_by == "SIGHUP":  # the terminal is gone: the log file is all that is read
        from ..eventlog import LOGGER

        LOGGER.warning("%s%s", what, where)
    print(f"imagebatch: {what}{where}", file=sys.stderr)
    return code


def _run_tui(args: argparse.Namespace) -> int:
    try:
        workspace = Workspace.resolve(args.workspace, os.environ)
        stale_after_s = _stale_after(args.stale_after, os.environ)
    except ImageBatchError as error:
        print(f"imagebatch: error: {describe(error)}", file=sys.stderr)
        return error.exit_code
    from tui import make_app  # only this command loads Textual

    spec = Path(args.spec) if args.spec else None
    app = make_app(workspace, spec, pictures=args.pictures, stale_after_s=stale_after_s)
    app.run()
    return app.return_code or 0


def _stale_after(flag: float | None, env: Mapping[str, str]) -> float:
    """`--stale-after`, else `$IMAGEBATCH_STALE_AFTER_S`, else 300 seconds."""
    where, value = ("--stale-after", flag) if flag is not None else (STALE_ENV, env.get(STALE_ENV))
    if value is None or value == "":
        return 300.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 1.0 <= seconds <= 86_400.0:
        raise ConfigError(f"{where}: {value!r} is not a number of seconds from 1 to 86400")
    return seconds


async def _dispatch(ctx: Context, args: argparse.Namespace) -> int:
    """Run the command. Ctrl-C or SIGTERM while jobs run here winds them down (`wind_down`);
    a second one, or one in any other command, stops it at once, and so does SIGHUP (its
    terminal closed: nobody is there to wait for): the job stays resumable, every image
    received kept."""
    import asyncio

    task = asyncio.current_task()
    assert task is not None

    def stop(signal_name: str | None) -> None:
        ctx.stopped_by = signal_name
        if signal_name == "SIGHUP":
            leave_terminal()
        task.cancel()

    def wind_down(signal_name: str | None) -> None:
        """The first Ctrl-C, or SIGTERM (`kill`, `timeout`, a service manager stopping the
        run), starts no new request and lets the ones under way finish: they may be billed,
        and their images are kept. The run then ends, resumable."""
        orchestrator = ctx.orchestrator
        calls = None if orchestrator is None or ctx.winding_down else orchestrator.wind_down()
        if calls is None:
            stop(signal_name)
            return
        ctx.winding_down, ctx.stopped_by = True, signal_name
        if calls:
            from ..wording import requests_under_way

            again = "SIGTERM or Ctrl-C again" if signal_name else "Ctrl-C again"
            by = f" ({signal_name})" if signal_name else ""
            ctx.note(
                f"stopping{by}: waiting for {requests_under_way(calls)} (they may be billed); "
                f"{again} stops at once"
            )

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, wind_down, None)
    loop.add_signal_handler(signal.SIGTERM, wind_down, "SIGTERM")
    if hung_up_stops():
        loop.add_signal_handler(signal.SIGHUP, stop, "SIGHUP")
    return await command(args.command)(ctx, args)
