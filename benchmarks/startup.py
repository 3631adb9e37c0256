"""The start-up and exit benchmark (issue 11): what a real `imagebatch run` waits on.

Against the fake OpenAI API served in this process (a middleware notes when each request comes
in and when its answer goes out), `python -m orchestrator run` of `--items` images is started
`--rounds` times, each in a fresh process and workspace. It measures:

- start to first request: from starting the process to the first request the server sees
  (target: at most the time of `python -c "import openai"`, measured in the same round, + 0.2 s);
- last answer to exit: from the server's last answer to the process's end (the last image's
  post-processing, the report, closing the journal, leaving the interpreter).

The figures are the median of the rounds; a busy machine stretches every one of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import report
from .report import Row

__all__ = ["add_arguments", "main"]

TARGET_MARGIN_S = 0.2
DEFAULT_TITLE = "Start-up and exit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--items", type=int, default=80, help="images per run (default: 80)")
    parser.add_argument("--rounds", type=int, default=5, help="runs measured (default: 5)")
    parser.add_argument("--write", type=Path, metavar="PATH", help="append the table here")
    parser.add_argument("--title", default=DEFAULT_TITLE, help="heading of the appended section")


def main(args: argparse.Namespace) -> int:
    run = report.describe_run()
    rounds = [asyncio.run(_round(args.items)) for _ in range(args.rounds)]
    figures = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
    rows = _rows(figures, args.items)
    method = (
        f"Median of {args.rounds} runs of `python -m orchestrator run --no-progress` of "
        f"{args.items} 1024x1024 openai images (concurrency 8) against the fake server in the "
        "benchmark's process; each in a fresh process and workspace."
    )
    body = f"{report.render_table(rows)}\n\n{method}"
    print(f"{report.render_run(run)}\n\n{body}")
    if args.write is not None:
        report.append_section(args.write, args.title, run, body)
    return 0


async def _round(items: int) -> dict[str, float]:
    from aiohttp import web

    from orchestrator.testing.fakeserver.app import build_app
    from orchestrator.testing.fakeserver.options import FakeServerOptions
    from orchestrator.testing.fakeserver.state import ServerState

    seen: list[tuple[str, float]] = []

    @web.middleware
    async def stamp(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append(("in", time.monotonic()))
        response: web.StreamResponse = await handler(request)
        seen.append(("out", time.monotonic()))
        return response

    app = build_app(ServerState(FakeServerOptions()))
    app.middlewares.append(stamp)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        with tempfile.TemporaryDirectory() as folder:
            started, ended = await _run_cli(Path(folder), port, items)
    finally:
        await runner.cleanup()
    first = min(at for kind, at in seen if kind == "in")
    last = max(at for kind, at in seen if kind == "out")
    return {
        "start_to_first": first - started,
        "last_to_exit": ended - last,
        "import_openai": await asyncio.to_thread(_time_of, "import openai"),
        "bare_python": await asyncio.to_thread(_time_of, "pass"),
    }


async def _run_cli(folder: Path, port: int, items: int) -> tuple[float, float]:
    spec = {
        "key": "startup",
        "provider": "openai",
        "defaults": {"size": "1024x1024"},
        "limits": {"concurrency": 8},
        "items": [{"id": f"i{n}", "prompt": f"picture {n}"} for n in range(items)],
    }
    (folder / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": "x"}
    command = [sys.executable, "-m", "orchestrator", "--workspace", str(folder / "ws")]
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *command, "run", "--no-progress", str(folder / "spec.json"),
        env=env, cwd=report.REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    code = await process.wait()
    ended = time.monotonic()
    if code != 0:
        raise SystemExit(f"startup: the run failed ({code})")
    return started, ended


def _time_of(code: str) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=report.REPO)
    return time.monotonic() - started


def _rows(figures: dict[str, float], items: int) -> list[Row]:
    limit = figures["import_openai"] + TARGET_MARGIN_S
    return [
        Row(
            metric=f"start to first request, {items} images",
            value=f"{figures['start_to_first']:.2f} s",
            target=f"<= {limit:.2f} s",
            passed=figures["start_to_first"] <= limit,
        ),
        Row(metric="last answer to exit", value=f"{figures['last_to_exit']:.2f} s"),
        Row(metric='`python -c "import openai"`', value=f"{figures['import_openai']:.2f} s"),
        Row(metric='`python -c "pass"`', value=f"{figures['bare_python']:.2f} s"),
    ]
