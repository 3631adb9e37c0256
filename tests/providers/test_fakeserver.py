"""The fake server itself, spoken to with plain aiohttp: shapes, headers, counts, determinism."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from orchestrator.testing.fakeserver import FakeServer, FakeServerOptions, start_fake_server
from orchestrator.testing.fakeserver.cli import add_fake_server_arguments, options_from_args

from .conftest import StartServer, png

GENERATIONS = "/v1/images/generations"
GEMINI = "/v1beta/models/gemini-2.5-flash-image:generateContent"


async def post(server: FakeServer, path: str, body: Any, **headers: str) -> tuple[int, Any, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + path, json=body, headers=headers) as reply,
    ):
        return reply.status, await reply.json(content_type=None), reply.headers


def gpt(prompt: str) -> dict[str, Any]:
    return {"model": "gpt-image-1.5", "prompt": prompt, "size": "1024x1024", "quality": "low"}


def gemini(prompt: str) -> dict[str, Any]:
    return {
        "contents": [{"parts": [{"text": prompt}]}],
        "generationConfig": {"responseModalities": ["IMAGE"]},
    }


async def test_openai_success_shape(fake: FakeServer) -> None:
    status, body, headers = await post(fake, GENERATIONS, gpt("a cat"))
    assert status == 200 and headers["x-request-id"].startswith("req_")
    assert set(body) >= {"created", "data", "usage", "size", "quality", "output_format"}
    assert set(body["usage"]) == {
        "input_tokens",
        "input_tokens_details",
        "output_tokens",
        "total_tokens",
    }
    assert body["data"][0]["b64_json"].startswith("iVBORw0KGgo")


async def test_openai_rate_limit_shape(start_server: StartServer) -> None:
    server = await start_server(rate_429=1.0, retry_after_s=1.5)
    status, body, headers = await post(server, GENERATIONS, gpt("a cat"))
    assert status == 429
    assert headers["retry-after"] == "1.5" and headers["retry-after-ms"] == "1500"
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert set(body["error"]) == {"message", "type", "param", "code"}


async def test_openai_rejects_bad_size_and_missing_key(start_server: StartServer) -> None:
    server = await start_server(require_key="sk-right-0123456789")
    status, body, _ = await post(server, GENERATIONS, {**gpt("a"), "size": "1000x1000"})
    assert (status, body["error"]["param"], body["error"]["code"]) == (400, "size", "invalid_value")
    status, body, _ = await post(server, GENERATIONS, gpt("a"))
    assert status == 401 and "didn't provide an API key" in body["error"]["message"]
    status, body, _ = await post(server, GENERATIONS, gpt("a"), Authorization="Bearer sk-wrong-99")
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert "sk-wrong-99" not in body["error"]["message"], "only a masked key, like the real API"


async def test_openai_edit_with_a_single_image_field(fake: FakeServer) -> None:
    form = aiohttp.FormData()
    form.add_field("prompt", "a hat")
    form.add_field("model", "gpt-image-1.5")
    form.add_field("image", png(), filename="ref.png", content_type="image/png")
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.url + "/v1/images/edits", data=form) as reply,
    ):
        assert reply.status == 200
    assert fake.stats.references == {"a hat": [1]}
    assert fake.stats.by_endpoint == {"openai.edits": 1}


async def test_gemini_shapes(start_server: StartServer) -> None:
    server = await start_server(burst_429=1, retry_after_s=3)
    status, body, headers = await post(server, GEMINI, gemini("a fox"))
    assert status == 429 and headers["Retry-After"] == "3"
    assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert body["error"]["details"][-1]["retryDelay"] == "3s"
    assert "PerMinute" in body["error"]["details"][0]["violations"][0]["quotaId"]
    status, body, _ = await post(server, GEMINI, gemini("a fox"))
    assert status == 200
    assert body["candidates"][0]["content"]["parts"][0]["inlineData"]["mimeType"] == "image/png"
    assert body["usageMetadata"]["candidatesTokenCount"] > 0
    assert server.counts == {"a fox": 2} and server.stats.successes == {"a fox": 1}


async def test_gemini_key_errors_follow_the_real_api(start_server: StartServer) -> None:
    server = await start_server(require_key="AIza-right-0123456789")
    status, body, _ = await post(server, GEMINI, gemini("a"))
    assert (status, body["error"]["status"]) == (403, "PERMISSION_DENIED")
    status, body, _ = await post(server, GEMINI, gemini("a"), **{"x-goog-api-key": "AIza-wrong"})
    assert (status, body["error"]["details"][0]["reason"]) == (400, "API_KEY_INVALID")


async def outcomes(server: FakeServer, prompts: list[str]) -> list[int]:
    return [(await post(server, GENERATIONS, gpt(prompt)))[0] for prompt in prompts]


async def test_faults_are_deterministic_per_seed(start_server: StartServer) -> None:
    prompts = [f"p{n}" for n in range(30)]
    first = await outcomes(await start_server(rate_500=0.5, seed=7), prompts)
    again = await outcomes(await start_server(rate_500=0.5, seed=7), prompts)
    other = await outcomes(await start_server(rate_500=0.5, seed=8), prompts)
    assert first == again != other
    assert 5 < first.count(500) < 25


async def test_stats_endpoint_and_duplicates(fake: FakeServer) -> None:
    await outcomes(fake, ["same", "same", "other"])
    async with aiohttp.ClientSession() as session, session.get(fake.url + "/fake/stats") as reply:
        stats = await reply.json()
    assert stats["by_prompt"] == {"same": 2, "other": 1}
    assert stats["duplicates"] == {"same": 2} == fake.stats.duplicates()


def test_options_are_validated() -> None:
    with pytest.raises(ValidationError, match="add up to"):
        FakeServerOptions(rate_429=0.6, rate_500=0.6)
    with pytest.raises(ValidationError, match="regular expression"):
        FakeServerOptions(reject_pattern="(")


async def test_configure_validates(fake: FakeServer) -> None:
    assert fake.configure(rate_500=0.25).rate_500 == 0.25
    with pytest.raises(ValidationError):
        fake.configure(rate_hang=2.0)


def test_cli_flags_become_options(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = argparse.ArgumentParser()
    add_fake_server_arguments(parser)
    monkeypatch.setenv("FAKE_KEY", "sk-abc-0123456789")
    args = parser.parse_args(
        [
            "--rate-429",
            "0.1",
            "--rate-500",
            "0.2",
            "--retry-after",
            "2",
            "--burst-429",
            "5",
            "--reject-pattern",
            "nsfw",
            "--require-key-env",
            "FAKE_KEY",
            "--latency",
            "0.5",
        ]
    )
    options = options_from_args(args)
    assert (options.rate_429, options.rate_500, options.retry_after_s) == (0.1, 0.2, 2.0)
    assert (options.burst_429, options.reject_pattern, options.latency_s) == (5, "nsfw", 0.5)
    assert options.require_key == "sk-abc-0123456789"


async def test_cli_serves_until_sigint() -> None:
    code = (
        "import sys, argparse\n"
        "from orchestrator.testing.fakeserver.cli import add_fake_server_arguments, "
        "run_fake_server_command\n"
        "p = argparse.ArgumentParser(); add_fake_server_arguments(p)\n"
        "sys.exit(run_fake_server_command(p.parse_args(sys.argv[1:])))\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        "--port",
        "0",
        "--burst-429",
        "1",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(20):
            line = (await process.stdout.readline()).decode()
        url = line.split(" on ")[1].strip()
        async with aiohttp.ClientSession() as session:
            async with session.post(url + GENERATIONS, json=gpt("x")) as reply:
                assert reply.status == 429
            async with session.post(url + GENERATIONS, json=gpt("x")) as reply:
                assert reply.status == 200
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            assert await process.wait() == 0
        rest = (await process.stdout.read()).decode()
        assert "served 2 requests, 1 images" in rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_server_closes_itself_when_its_loop_ends() -> None:
    async def forget() -> str:
        server = await start_fake_server(FakeServerOptions())
        return server.url

    url = asyncio.run(forget())
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--host", "0.0.0.0"], "loopback"),
        (["--host", "192.168.1.10"], "loopback"),
        (["--port", "99999"], "not a port"),
    ],
)
def test_cli_refuses_non_loopback_hosts_and_bad_ports(
    flags: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["fake-server", *flags])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


async def test_credit_runs_out_into_insufficient_quota(start_server: StartServer) -> None:
    server = await start_server(credit=1)
    assert (await post(server, GENERATIONS, gpt("a cat")))[0] == 200
    status, body, headers = await post(server, GENERATIONS, gpt("a dog"))
    assert status == 429 and body["error"]["code"] == "insufficient_quota"
    assert "retry-after" not in headers
    status, body, _ = await post(
        server, "/v1beta/models/gemini-2.5-flash-image:generateContent", gemini("a dog")
    )
    assert status == 429 and body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "RetryInfo" not in str(body) and server.stats.faults["no_credit"] == 2
    assert "PerDay" in str(body)  # a spent daily quota, not a per-minute rate limit
