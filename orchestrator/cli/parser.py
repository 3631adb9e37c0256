"""The `imagebatch` command line's arguments: one parser, usage mistakes in one line (exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn, TypeAlias

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line, with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """As argparse's, but an argument the command does not take is reported by the
        command's parser, whose help lists what it does take."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self._parser_of(parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def _parser_of(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                found: argparse.ArgumentParser | None = action.choices.get(
                    getattr(parsed, action.dest or "", None) or ""
                )
                return found or self
        return self


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("override the spec")
    group.add_argument("--provider", help="provider name: mock, openai, gemini or a plugin's")
    group.add_argument("--model", help="provider model")
    group.add_argument(
        "--concurrency",
        type=_concurrency,
        help="attempts in flight at once (default 5), or 'auto' to learn it from the provider's "
        "429s",
    )
    group.add_argument(
        "--max-concurrency",
        type=int,
        help="with --concurrency auto: the most attempts in flight it may grow to (default 32)",
    )
    group.add_argument("--rate", type=float, help="attempt starts per minute, spaced evenly")
    group.add_argument("--timeout", type=float, help="seconds one attempt may take (default 120)")
    group.add_argument("--max-attempts", type=int, help="attempts per item, 429s aside (default 3)")
    group.add_argument(
        "--max-rate-limited",
        type=int,
        metavar="N",
        help="rate limits (429s) an item may meet before it fails (default 20; 1 fails it at "
        "its first)",
    )
    group.add_argument("--key", help="job key: one active job per key")
    group.add_argument("--name", help="a human name for the job")
    group.add_argument(
        "--no-cache",
        action="store_true",
        help="always ask the provider, even for a request an earlier job paid for",
    )
    group.add_argument(
        "--allow-unknown-model",
        action="store_true",
        default=None,
        help="send a model name the provider does not list (a new model, a plugin's)",
    )


def _concurrency(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a whole number nor 'auto'") from None


def _add_detach(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--detach",
        action="store_true",
        help="run the job in a background process (output in the workspace's logs/), print "
        "its id and return; `imagebatch watch JOB` follows it",
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
        help="log one line per image instead of the live display",
    )
    common.add_argument(
        "--stale-after",
        type=float,
        default=default,
        metavar="S",
        help="seconds without a heartbeat after which another process's lock counts as "
        "abandoned (default $IMAGEBATCH_STALE_AFTER_S or 300)",
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="log one timed line per job event and attempt to stderr (-vv: attempt starts too); "
        "replaces the live display",
    )
    common.add_argument(
        "--log-file",
        default=default,
        metavar="PATH",
        help="append the same log lines to PATH (with or without -v)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="imagebatch",
        description="Generate batches of images against slow, rate-limited, flaky image APIs.",
        parents=[_common(argparse.SUPPRESS)],
    )
    parser.set_defaults(
        workspace=None, no_progress=False, stale_after=None, verbose=0, log_file=None
    )
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND"
    )
    _add_running(sub)
    _add_following(sub)
    _add_tui(sub)
    _add_fake_server(sub)
    return parser


Subparsers: TypeAlias = "argparse._SubParsersAction[_Parser]"


def _command(
    sub: Subparsers, name: str, text: str, json_what: str = "the result"
) -> argparse.ArgumentParser:
    # The common options work after the subcommand too: `imagebatch demo --workspace w`.
    parsed = sub.add_parser(name, help=text, parents=[_common(argparse.SUPPRESS)])
    if json_what:
        _add_json(parsed, json_what)
    return parsed


def _add_running(sub: Subparsers) -> None:
    """The commands that make and run jobs."""
    demo = _command(sub, "demo", "run an offline batch on the mock provider (no key)")
    demo.add_argument("--count", type=int, default=12, help="how many images (default 12)")
    _add_overrides(demo)
    for name, text in (
        ("run", "create a job from SPEC and run it"),
        ("create", "record a job"),
        ("estimate", "what SPEC would cost, per image and in all (nothing runs)"),
    ):
        with_spec = _command(sub, name, text)
        with_spec.add_argument("spec", help="a .json, .jsonl or .txt (one prompt per line) spec")
        with_spec.add_argument(
            "--format",
            choices=("json", "jsonl", "text"),
            help="how to read SPEC (default: from its extension; needed for -)",
        )
        if name == "run":
            _add_detach(with_spec)
        _add_overrides(with_spec)
    start = _command(sub, "start", "run a created job")
    start.add_argument("job", help="job id")
    _add_detach(start)
    resume = _command(sub, "resume", "continue an interrupted job (or every one)")
    resume.add_argument("job", nargs="?", help="job id (default: every interrupted job)")
    retry = _command(
        sub, "retry", "run failed and cancelled items again (here, or by the process running it)"
    )
    retry.add_argument("job", help="job id")
    retry.add_argument("--items", help="only these item ids, comma-separated")
    retry.add_argument(
        "--with-dependents",
        action="store_true",
        help="also the failed items that reference them (asked on a terminal)",
    )


def _add_following(sub: Subparsers) -> None:
    """The commands that look at jobs, follow them, or ask something of them."""
    watch = _command(sub, "watch", "follow a job another process runs, until it ends")
    watch.add_argument("job", nargs="?", help="job id (default: the newest unfinished job)")
    cancel = _command(sub, "cancel", "cancel a job, or some of its images")
    cancel.add_argument("job", help="job id")
    cancel.add_argument("--items", help="only these item ids, comma-separated")
    stop = _command(
        sub,
        "stop",
        "stop a job's run once its requests under way are kept (resumable)",
        json_what="",
    )
    stop.add_argument("job", help="job id")
    status = _command(
        sub, "status", "show a job and its images (default: the newest)", "the status"
    )
    status.add_argument("job", nargs="?", help="job id")
    _command(sub, "list", "list the jobs of the workspace", "the jobs")
    webhooks = _command(
        sub, "webhooks", "list a job's webhook messages that were not delivered", "them"
    )
    webhooks.add_argument("job", help="job id")
    stats = _command(
        sub, "stats", "success, retries, failures, latency, pace and cost; stuck jobs", "the stats"
    )
    stats.add_argument("job", nargs="?", help="job id (default: every job of the workspace)")
    _command(sub, "clear-lock", "remove a key's lock by hand", "").add_argument(
        "key", help="job key"
    )


def _add_tui(sub: Subparsers) -> None:
    """The terminal UI (Textual, imported only when this command runs)."""
    tui = _command(sub, "tui", "open the terminal UI: run, watch and fix batches", "")
    tui.add_argument("spec", nargs="?", help="a spec to run at once (.json, .jsonl or .txt)")
    tui.add_argument(
        "--pictures",
        choices=("auto", "sixel", "kitty", "halfcell", "unicode"),
        default="auto",
        help="how to draw images (default: the best the terminal has)",
    )


def _add_fake_server(sub: Subparsers) -> None:
    from ..testing.fakeserver.cli import add_fake_server_arguments

    server = sub.add_parser("fake-server", help="serve a local fake OpenAI / Gemini image API")
    add_fake_server_arguments(server)
