"""The two baselines imagebatch is compared with, on the same draws (issue 11).

- `fixed`: what many apps do: batches of C requests under `asyncio.gather`, each batch waiting for
  its slowest image before the next one starts.
- `bare`: the bare client behind an `asyncio.Semaphore(C)`, every item gathered at once: no
  journal, no files beyond the image itself, no retries but the SDK's own.

Against the mock they call `MockProvider.generate` (the very draws imagebatch's mock gets);
over HTTP they call the real `openai` SDK (`AsyncOpenAI`, its defaults: two retries that honour
Retry-After, the scenario's timeout). Each image is written to a file, as an app would. They
run in one child process (`python -m benchmarks speed --child baseline`) for the whole run: it
imports once, takes orders (scenario, seed, variants, server) as JSON lines on stdin, and
answers each with the calls it made, as JSON in a file the order names.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from orchestrator.errors import ProviderError
from orchestrator.providers.base import GenerateRequest, ProviderConfig
from orchestrator.providers.mock import MockProvider

from .speed_plan import HTTP_MODEL, HTTP_SIZE, MOCK_SIZE, Scenario
from .timeline import IMAGE, RATE_LIMITED, Call

__all__ = ["VARIANTS", "behind_semaphore", "child_main", "fixed_batches", "mock_caller"]

Caller = Callable[[int], Awaitable[str]]
"""Makes the request of item `index` and writes its image; returns `image` or what failed."""
VARIANTS = ("fixed", "bare")


async def fixed_batches(call: Caller, count: int, size: int) -> list[Call]:
    """Batches of `size` under gather, one after the other."""
    calls: list[Call] = []
    for first in range(0, count, size):
        batch = range(first, min(first + size, count))
        await asyncio.gather(*(_timed(call, index, calls) for index in batch))
    return calls


async def behind_semaphore(call: Caller, count: int, slots: int) -> list[Call]:
    """Every item gathered at once, at most `slots` calls in flight."""
    calls: list[Call] = []
    semaphore = asyncio.Semaphore(slots)

    async def one(index: int) -> None:
        async with semaphore:
            await _timed(call, index, calls)

    await asyncio.gather(*(one(index) for index in range(count)))
    return calls


async def _timed(call: Caller, index: int, calls: list[Call]) -> None:
    start = time.time()
    outcome = await call(index)
    calls.append(Call(start, time.time(), outcome))


def mock_caller(scenario: Scenario, seed: int, folder: Path) -> Caller:
    """Calls of the mock with the requests imagebatch's mock job makes (first attempts)."""
    provider = MockProvider(ProviderConfig(options=scenario.mock_options(seed)))
    ids, prompts = scenario.item_ids(), scenario.prompts(seed)

    async def call(index: int) -> str:
        request = GenerateRequest(
            job_id="baseline", item_id=ids[index], prompt=prompts[index], size=MOCK_SIZE
        )
        try:
            async with asyncio.timeout(scenario.timeout_s):
                image = await provider.generate(request)
        except ProviderError as error:
            return error.kind
        except TimeoutError:
            return "timeout"
        (folder / f"{ids[index]}.png").write_bytes(image.data)
        return IMAGE

    return call


async def _http_caller(
    scenario: Scenario, seed: int, url: str, folder: Path, stack: AsyncExitStack
) -> Caller:
    import openai  # only the HTTP baselines need the SDK

    client = openai.AsyncOpenAI(
        base_url=f"{url}/v1", api_key="sk-bench", timeout=scenario.timeout_s
    )
    await stack.enter_async_context(client)
    ids, prompts = scenario.item_ids(), scenario.prompts(seed)

    async def call(index: int) -> str:
        try:
            response = await client.images.generate(
                model=HTTP_MODEL, prompt=prompts[index], size=HTTP_SIZE, response_format="b64_json"
            )
        except openai.APIStatusError as error:
            return RATE_LIMITED if error.status_code == 429 else f"http_{error.status_code}"
        except openai.APIError as error:
            return type(error).__name__
        encoded = response.data[0].b64_json if response.data else None
        if not encoded:
            return "no_image"
        (folder / f"{ids[index]}.png").write_bytes(base64.b64decode(encoded))
        return IMAGE

    return call


async def _serve(folder: Path) -> None:
    """Take orders from stdin, one JSON line each, until it closes; run each order at once (the
    mock's orders overlap); when one is done, write its calls to the order's `answer` file as
    JSON and print the order's id."""
    print("ready", flush=True)
    running: set[asyncio.Task[None]] = set()
    while line := await asyncio.to_thread(sys.stdin.readline):
        running.add(asyncio.create_task(_fill(json.loads(line), folder)))
    await asyncio.gather(*running)


async def _fill(order: dict[str, Any], folder: Path) -> None:
    scenario, seed, url = Scenario(**order["scenario"]), order["seed"], order.get("url")
    images = folder / str(order["id"])
    await asyncio.to_thread(images.mkdir)
    async with AsyncExitStack() as stack:
        if url:
            call = await _http_caller(scenario, seed, url, images, stack)
        else:
            call = mock_caller(scenario, seed, images)
        names = [name for name in VARIANTS if name in order["variants"]]
        done = await asyncio.gather(*(_variant(name, call, scenario) for name in names))
    calls = {
        name: [call.as_json() for call in found] for name, found in zip(names, done, strict=True)
    }
    # The calls go to a file: a pipe the parent is not reading could fill and block this loop.
    answer = Path(order["answer"])
    await asyncio.to_thread(answer.write_text, json.dumps(calls), encoding="utf-8")
    print(order["id"], flush=True)


async def _variant(name: str, call: Caller, scenario: Scenario) -> list[Call]:
    if name == "fixed":
        return await fixed_batches(call, scenario.items, scenario.slots)
    return await behind_semaphore(call, scenario.items, scenario.slots)


def child_main() -> int:
    """The baseline child: serve orders until stdin closes."""
    with tempfile.TemporaryDirectory(prefix="imagebatch-baseline-") as folder:
        asyncio.run(_serve(Path(folder)))
    return 0
