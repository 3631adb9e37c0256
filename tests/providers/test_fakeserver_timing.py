"""The fake server's timing: per-prompt seeded latency, the hidden concurrency cap, the request
quota, and the request log's timestamps (what the speed benchmark reads)."""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics

import aiohttp

from orchestrator.testing.fakeserver import FakeServerOptions
from orchestrator.testing.fakeserver.cli import add_fake_server_arguments, options_from_args
from orchestrator.testing.fakeserver.timing import Gate, prompt_latency

from .conftest import StartServer

GENERATIONS = "/v1/images/generations"


def gpt(prompt: str) -> dict[str, str]:
    return {"model": "dall-e-2", "prompt": prompt, "size": "256x256", "response_format": "b64_json"}


async def post_all(url: str, prompts: list[str]) -> list[tuple[int, str | None]]:
    """Send every prompt at once; (status, retry-after-ms) per prompt, in order."""
    async with aiohttp.ClientSession() as session:

        async def one(prompt: str) -> tuple[int, str | None]:
            async with session.post(url + GENERATIONS, json=gpt(prompt)) as reply:
                await reply.read()
                return reply.status, reply.headers.get("retry-after-ms")

        return list(await asyncio.gather(*(one(prompt) for prompt in prompts)))


def test_prompt_latency_is_a_seeded_lognormal_per_prompt() -> None:
    draws = [prompt_latency(3, f"prompt {n}", 2.0, 0.6) for n in range(4000)]
    assert draws == [prompt_latency(3, f"prompt {n}", 2.0, 0.6) for n in range(4000)]
    assert draws != [prompt_latency(4, f"prompt {n}", 2.0, 0.6) for n in range(4000)]
    assert abs(statistics.fmean(draws) - 2.0) < 0.1
    logs = [math.log(draw) for draw in draws]
    assert abs(statistics.stdev(logs) - 0.6) < 0.03
    assert prompt_latency(3, "x", 2.0, 0.0) == 2.0 and prompt_latency(3, "x", 0.0, 0.6) == 0.0


async def test_each_prompt_waits_its_own_latency_and_the_log_says_when(
    start_server: StartServer,
) -> None:
    server = await start_server(latency_s=0.2, latency_sigma=0.8, seed=5)
    prompts = ["a", "b", "c", "d"]
    assert [status for status, _ in await post_all(server.url, prompts)] == [200] * 4
    entries = {entry["prompt"]: entry for entry in server.stats.log}
    for prompt in prompts:
        entry = entries[prompt]
        expected = prompt_latency(5, prompt, 0.2, 0.8)
        assert entry["latency_s"] == expected
        assert expected <= entry["answered"] - entry["arrived"] < expected + 0.5
    assert len({entries[prompt]["latency_s"] for prompt in prompts}) == 4


async def test_hidden_cap_answers_429_above_it(start_server: StartServer) -> None:
    server = await start_server(latency_s=0.3, max_concurrent=2, retry_after_s=0.5)
    answers = await post_all(server.url, ["a", "b", "c", "d", "e"])
    assert sorted(status for status, _ in answers) == [200, 200, 429, 429, 429]
    assert {wait for status, wait in answers if status == 429} == {"500"}
    assert server.stats.faults == {"rate_limited": 3}
    # Once the first two are answered, the cap lets two more through again.
    assert [status for status, _ in await post_all(server.url, ["f", "g"])] == [200, 200]


async def test_quota_answers_429_with_the_wait_for_the_next_token(
    start_server: StartServer,
) -> None:
    server = await start_server(quota_per_minute=60, quota_burst=2)
    answers = await post_all(server.url, ["a", "b", "c"])
    assert sorted(status for status, _ in answers) == [200, 200, 429]
    waits = [int(wait) for status, wait in answers if status == 429 and wait is not None]
    assert len(waits) == 1 and 900 <= waits[0] <= 1000


def test_gate_refills_its_quota_at_the_rate() -> None:
    now = [100.0]
    gate = Gate(clock=lambda: now[0])
    options = FakeServerOptions(quota_per_minute=120, quota_burst=2)
    assert gate.refuse(options) is None and gate.refuse(options) is None
    assert gate.refuse(options) == 0.5
    now[0] += 0.25
    assert gate.refuse(options) == 0.25, "a refused request uses no quota"
    now[0] += 0.25
    assert gate.refuse(options) is None and gate.in_flight == 3
    now[0] += 10.0  # a long quiet spell fills the bucket to its burst, no more
    assert gate.refuse(options) is None and gate.refuse(options) is None
    assert gate.refuse(options) == 0.5


def test_gate_cap_counts_requests_in_flight() -> None:
    gate = Gate(clock=lambda: 0.0)
    options = FakeServerOptions(max_concurrent=1, retry_after_s=2.0)
    assert gate.refuse(options) is None
    assert gate.refuse(options) == 2.0
    gate.leave()
    assert gate.refuse(options) is None


async def test_log_keeps_log_size_entries(start_server: StartServer) -> None:
    server = await start_server(log_size=2)
    await post_all(server.url, ["a", "b", "c"])
    assert len(server.stats.log) == 2 and server.stats.requests == 3


def test_cli_flags_set_the_timing_options() -> None:
    parser = argparse.ArgumentParser()
    add_fake_server_arguments(parser)
    flags = "--latency 0.4 --latency-sigma 0.6 --max-concurrent 8"
    args = parser.parse_args([*flags.split(), "--quota-per-minute", "60", "--quota-burst", "3"])
    options = options_from_args(args)
    assert (options.latency_s, options.latency_sigma, options.max_concurrent) == (0.4, 0.6, 8)
    assert (options.quota_per_minute, options.quota_burst) == (60.0, 3)
    defaults = options_from_args(parser.parse_args([]))
    assert (defaults.latency_sigma, defaults.max_concurrent, defaults.quota_per_minute) == (
        None,
        None,
        None,
    )
