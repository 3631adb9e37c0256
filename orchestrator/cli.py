"""The `imagebatch` command line: parse, run the command on one event loop, map errors to codes.

Exit codes: 0 all completed, 2 bad input, 3 partial, 4 failed (or cancelled), 5 key conflict,
130 interrupted by Ctrl-C, 143 stopped by SIGTERM (either way the job stays resumable).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .commands import COMMANDS, Context
from .errors import ImageBatchError
from .storage import Workspace

__all__ = ["build_parser", "main"]

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line, with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("override the spec")
    group.add_argument("--provider", help="provider name: mock, openai, gemini or a plugin's")
    group.add_argument("--model", help="provider model")
    group.add_argument("--concurrency", type=int, help="attempts in flight at once (default 5)")
    group.add_argument("--rate", type=float, help="attempt starts per minute, spaced evenly")
    group.add_argument("--timeout", type=float, help="seconds one attempt may take (default 120)")
    group.add_argument("--max-attempts", type=int, help="attempts per item (default 3)")
    group.add_argument("--key", help="job key: one active job per key")
    group.add_argument("--name", help="a human name for the job")
    group.add_argument(
        "--allow-unknown-model",
        action="store_true",
        default=None,
        help="send a model name the provider does not list (a new model, a plugin's)",
    )


def _add_json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def _common(default: Any) -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--workspace",
        default=default,
        help="workspace folder (default $IMAGEBATCH_WORKSPACE or ./.imagebatch)",
    )
    common.add_argument(
        "--no-progress",
        action="store_true",
        default=default,
        help="log one line per image instead of a bar",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="imagebatch",
        description="Generate batches of images against slow, rate-limited, flaky image APIs.",
        parents=[_common(argparse.SUPPRESS)],
    )
    parser.set_defaults(workspace=None, no_progress=False)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, text: str, json_what: str = "the result") -> argparse.ArgumentParser:
        # The common options work after the subcommand too: `imagebatch demo --workspace w`.
        parsed = sub.add_parser(name, help=text, parents=[_common(argparse.SUPPRESS)])
        if json_what:
            _add_json(parsed, json_what)
        return parsed

    demo = command("demo", "run an offline batch on the mock provider (no key)")
    demo.add_argument("--count", type=int, default=12, help="how many images (default 12)")
    _add_overrides(demo)
    for name, text in (("run", "create a job from SPEC and run it"), ("create", "record a job")):
        with_spec = command(name, text)
        with_spec.add_argument("spec", help="a .json, .jsonl or .txt (one prompt per line) spec")
        with_spec.add_argument(
            "--format",
            choices=("json", "jsonl", "text"),
            help="how to read SPEC (default: from its extension; needed for -)",
        )
        _add_overrides(with_spec)
    for name, text in (("start", "run a created job"), ("cancel", "cancel a job")):
        command(name, text).add_argument("job", help="job id")
    resume = command("resume", "continue an interrupted job (or every one)")
    resume.add_argument("job", nargs="?", help="job id (default: every unfinished job)")
    retry = command("retry", "run a job's failed and cancelled items again")
    retry.add_argument("job", help="job id")
    retry.add_argument("--items", help="only these item ids, comma-separated")
    status = command("status", "show a job and its images (default: the newest)", "the status")
    status.add_argument("job", nargs="?", help="job id")
    command("list", "list the jobs of the workspace", "the jobs")
    command("clear-lock", "remove a key's lock by hand", "").add_argument("key", help="job key")
    _add_fake_server(sub)
    return parser


def _add_fake_server(sub: argparse._SubParsersAction[_Parser]) -> None:
    from .fakeserver.cli import add_fake_server_arguments

    server = sub.add_parser("fake-server", help="serve a local fake OpenAI / Gemini image API")
    add_fake_server_arguments(server)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "fake-server":
        from .fakeserver.cli import run_fake_server_command

        code: int = run_fake_server_command(args)
        return code
    ctx = Context(
        workspace=Workspace.resolve(args.workspace, os.environ),
        env=os.environ,
        progress=False if args.no_progress else None,
    )
    try:
        return asyncio.run(_dispatch(ctx, args))
    except ImageBatchError as error:
        print(f"imagebatch: error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:
        # `imagebatch status | head`: the reader left; say nothing more, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (KeyboardInterrupt, asyncio.CancelledError):
        where = f"; `imagebatch resume {ctx.current_job}` continues it" if ctx.current_job else ""
        what = "stopped by SIGTERM" if ctx.terminated else "interrupted"
        print(f"imagebatch: {what}{where}", file=sys.stderr)
        return EXIT_TERMINATED if ctx.terminated else EXIT_INTERRUPTED


async def _dispatch(ctx: Context, args: argparse.Namespace) -> int:
    """Run the command; SIGTERM stops it the way Ctrl-C does (asyncio.run handles SIGINT)."""
    task = asyncio.current_task()
    assert task is not None

    def terminate() -> None:
        ctx.terminated = True
        task.cancel()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminate)
    return await COMMANDS[args.command](ctx, args)


if __name__ == "__main__":
    sys.exit(main())
