"""`imagebatch fake-server`: the fake image API in the foreground, faults set by flags.

    imagebatch fake-server --port 8089 --rate-429 0.1 --rate-500 0.2 --latency 0.5
    OPENAI_BASE_URL=http://127.0.0.1:8089/v1 OPENAI_API_KEY=anything \\
        imagebatch run spec.json --provider openai
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pydantic and the options load only when the server is started: the flags
    # are added to every `imagebatch` parser, and `run` or `--help` should not pay for them
    from .options import FakeServerOptions

__all__ = ["add_fake_server_arguments", "options_from_args", "run_fake_server_command"]

_RATES = (
    ("--rate-429", "rate_429", "share of requests answered 429 with Retry-After"),
    ("--rate-500", "rate_500", "share of requests answered 500"),
    ("--rate-hang", "rate_hang", "share of requests that never answer"),
    ("--rate-malformed-json", "rate_malformed_json", "share answered with cut-off JSON"),
    ("--rate-truncated-b64", "rate_truncated_b64", "share answered with cut-off base64"),
    ("--rate-not-image", "rate_not_image", "share answered with bytes that are no image"),
)


def add_fake_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the fake server's flags to `parser` (the `fake-server` sub-command)."""
    _add_address(parser)
    _add_pace(parser)
    _add_faults(parser)


def _add_address(parser: argparse.ArgumentParser) -> None:
    """Where the server listens."""
    parser.add_argument(
        "--host",
        type=_loopback,
        default="127.0.0.1",
        help="loopback address to bind (default 127.0.0.1); it accepts any key, so never more",
    )
    parser.add_argument("--port", type=_port, default=8089, help="port (default 8089; 0: any free)")


def _add_pace(parser: argparse.ArgumentParser) -> None:
    """How fast it answers, and how many requests it takes before it answers 429."""
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument(
        "--latency-sigma",
        type=float,
        help="draw each prompt's latency from a lognormal of mean --latency and this shape",
    )
    parser.add_argument(
        "--max-concurrent", type=int, help="hidden cap: 429 for requests above N in flight"
    )
    parser.add_argument(
        "--quota-per-minute", type=float, help="request quota: 429 above this rate (token bucket)"
    )
    parser.add_argument(
        "--quota-burst", type=int, default=1, help="requests the quota lets through at once"
    )


def _add_faults(parser: argparse.ArgumentParser) -> None:
    """What goes wrong, how often, and the seed of the draws."""
    for flag, dest, text in _RATES:
        parser.add_argument(flag, dest=dest, type=float, default=0.0, help=f"{text} (0-1)")
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds a 429 asks for")
    parser.add_argument("--burst-429", type=int, default=0, help="answer the first N requests 429")
    parser.add_argument("--hang-s", type=float, default=3600.0, help="longest hang, in seconds")
    parser.add_argument("--reject-pattern", help="regex: matching prompts are refused (safety)")
    parser.add_argument(
        "--credit",
        type=int,
        help=(
            "images the account can pay for; then 429 insufficient_quota (OpenAI) or a "
            "spent daily quota (Gemini)"
        ),
    )
    parser.add_argument(
        "--require-key-env",
        metavar="VAR",
        help="accept only the key held in environment variable VAR (wrong keys get 401/400)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws")


def _loopback(text: str) -> str:
    try:
        is_loopback = text == "localhost" or ipaddress.ip_address(text).is_loopback
    except ValueError:
        is_loopback = False
    if not is_loopback:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a loopback address; the fake server only serves this machine "
            "(use 127.0.0.1, ::1 or localhost)"
        )
    return text


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535)")
    return port


def options_from_args(args: argparse.Namespace) -> FakeServerOptions:
    """The server options the parsed flags ask for (raises `ValidationError` on bad values)."""
    from .options import FakeServerOptions

    require_key = os.environ.get(args.require_key_env) if args.require_key_env else None
    if args.require_key_env and not require_key:
        raise ValueError(f"--require-key-env: environment variable {args.require_key_env} is empty")
    return FakeServerOptions(
        latency_s=args.latency,
        latency_sigma=args.latency_sigma,
        max_concurrent=args.max_concurrent,
        quota_per_minute=args.quota_per_minute,
        quota_burst=args.quota_burst,
        retry_after_s=args.retry_after,
        burst_429=args.burst_429,
        hang_s=args.hang_s,
        reject_pattern=args.reject_pattern,
        credit=args.credit,
        require_key=require_key,
        seed=args.seed,
        **{dest: getattr(args, dest) for _, dest, _ in _RATES},
    )


def run_fake_server_command(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM. 0 when stopped, 2 for bad flags, 1 if it cannot bind."""
    from pydantic import ValidationError

    from .app import serve_forever

    try:
        options = options_from_args(args)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "options"
        print(f"imagebatch fake-server: error: {where}: {first['msg']}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"imagebatch fake-server: error: {error}", file=sys.stderr)
        return 2
    try:
        serve_forever(args.host, args.port, options)
    except OSError as error:
        print(f"imagebatch fake-server: error: cannot serve ({error})", file=sys.stderr)
        return 1
    return 0
