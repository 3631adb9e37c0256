"""`python -m benchmarks <name>`: one subcommand per benchmark (`core`, `tui`, `startup`,
`speed`)."""

from __future__ import annotations

import argparse
import sys

from . import core, speed, startup, tui


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Performance benchmarks of imagebatch. They print figures; they do not test.",
    )
    commands = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    core_parser = commands.add_parser(
        "core",
        help="per-image overhead, peak RSS growth and event-loop stalls of the core",
        description=core.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    core.add_arguments(core_parser)
    core_parser.set_defaults(handler=core.main)
    tui_parser = commands.add_parser(
        "tui",
        help="key press to screen latency of the terminal UI while a 500-item job runs",
        description=tui.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tui.add_arguments(tui_parser)
    tui_parser.set_defaults(handler=tui.main)
    startup_parser = commands.add_parser(
        "startup",
        help="start to first request and last answer to exit of `imagebatch run` (openai)",
        description=startup.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    startup.add_arguments(startup_parser)
    startup_parser.set_defaults(handler=startup.main)
    speed_parser = commands.add_parser(
        "speed",
        help="makespan of whole batches as a ratio to the bound the provider allows",
        description=speed.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    speed.add_arguments(speed_parser)
    speed_parser.set_defaults(handler=speed.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
