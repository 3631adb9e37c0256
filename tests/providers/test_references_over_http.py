"""Character consistency over real HTTP: the real `openai` SDK (`images.edit`) and the Gemini
client against the fake server receive the anchor's image, byte for byte, with every page; and
reference URLs are fetched once when the job is created, from hosts the rules allow."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from orchestrator.errors import ConfigError
from orchestrator.pipeline import PipelineSettings
from orchestrator.service import Orchestrator
from orchestrator.spec import parse_spec
from orchestrator.states import ItemStatus, JobStatus
from orchestrator.storage import Workspace

from .conftest import StartServer, env_for, png

PAGES = ["the fox wakes", "the fox finds a kite", "the fox flies the kite"]


def story(provider: str, **extra: Any) -> dict[str, Any]:
    items = [{"id": "fox", "prompt": "character sheet: a red fox with a green scarf"}]
    items += [{"id": f"page-{n}", "prompt": text} for n, text in enumerate(PAGES, 1)]
    return {
        "key": f"story-{provider}",
        "provider": provider,
        "consistency": "first-as-reference",
        "defaults": {"size": "1024x1024"},
        "limits": {"concurrency": 4, "timeout_s": 10},
        "output": {"max_size": "256x256", "thumbnail_px": 64},
        "items": items,
        **extra,
    }


@pytest.mark.parametrize("provider", ["openai", "gemini"])
async def test_every_page_is_sent_the_anchor_it_made_first(
    provider: str, start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(seed=5)
    async with Orchestrator(
        Workspace(tmp_path / "ws"),
        env=env_for(provider, server),
        settings=PipelineSettings(retry_base_s=0.01, retry_cap_s=0.05, seed=1),
    ) as orchestrator:
        handle = await orchestrator.submit(parse_spec(story(provider), "test"))
        job = await handle.wait()
        items = {item.id: item for item in await handle.items()}
    assert job.status == JobStatus.COMPLETED
    fox = items.pop("fox")
    stats = server.stats
    assert stats.reference_sha256[fox.prompt] == [()]
    for page in items.values():
        assert stats.reference_sha256[page.prompt] == [(fox.raw_sha256,)]
    if provider == "openai":  # pages go to images.edit, the anchor to images.generate
        assert stats.by_endpoint["openai.edits"] == len(PAGES)
        assert stats.by_endpoint["openai.generations"] == 1


@pytest.mark.parametrize("provider", ["openai", "gemini"])
async def test_a_refused_anchor_costs_nothing_more(
    provider: str, start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(reject_pattern="character sheet")
    async with Orchestrator(
        Workspace(tmp_path / "ws"), env=env_for(provider, server)
    ) as orchestrator:
        handle = await orchestrator.submit(parse_spec(story(provider), "test"))
        job = await handle.wait()
        items = await handle.items()
    assert job.status == JobStatus.FAILED
    assert server.stats.requests == 1  # the pages were never sent
    assert [item.error.kind for item in items if item.error] == ["content_rejected"] + [
        "reference"
    ] * len(PAGES)


# ------------------------------------------------------------------ reference URLs


@asynccontextmanager
async def image_host(routes: dict[str, Callable[[], web.StreamResponse]]) -> AsyncIterator[str]:
    """A web server on 127.0.0.1 answering `routes`; yields its base URL."""

    async def answer(request: web.Request) -> web.StreamResponse:
        made = routes.get(request.path)
        if made is None:
            raise web.HTTPNotFound()
        return made()

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


HOSTED = png(colour=(10, 120, 200))
ROUTES: dict[str, Callable[[], web.StreamResponse]] = {
    "/fox.png": lambda: web.Response(body=HOSTED, content_type="image/png"),
    "/page.html": lambda: web.Response(text="<html>not an image</html>", content_type="text/html"),
    "/moved.png": lambda: web.Response(status=302, headers={"Location": "/fox.png"}),
}


def url_spec(url: str) -> dict[str, Any]:
    return {
        "key": "url-refs",
        "provider": "mock",
        "provider_options": {"latency_mean_s": 0},
        "items": [
            {"id": "a", "prompt": "a fox", "references": [url]},
            {"id": "b", "prompt": "a fox again", "references": [url, "a"]},
        ],
    }


async def test_a_reference_url_is_fetched_once_and_sent_as_bytes(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    async with image_host(ROUTES) as base:
        env = {"IMAGEBATCH_ALLOW_LOCAL_URLS": "1"}
        async with Orchestrator(workspace, env=env) as orchestrator:
            handle = await orchestrator.submit(parse_spec(url_spec(f"{base}/fox.png"), "t"))
            job = await handle.wait()
            items = {item.id: item for item in await handle.items()}
    assert job.status == JobStatus.COMPLETED
    kept = workspace.references_dir / f"{hashlib.sha256(HOSTED).hexdigest()}.png"
    assert kept.read_bytes() == HOSTED
    assert items["a"].references == (str(kept),) == items["b"].references
    assert items["b"].depends_on == ("a",)
    assert all(item.status == ItemStatus.COMPLETED for item in items.values())


@pytest.mark.parametrize(
    ("path", "env", "said"),
    [
        ("/fox.png", {}, "resolves to 127.0.0.1, a loopback address"),
        ("/gone.png", {"IMAGEBATCH_ALLOW_LOCAL_URLS": "1"}, "answered HTTP 404"),
        ("/page.html", {"IMAGEBATCH_ALLOW_LOCAL_URLS": "1"}, "is not a usable image"),
        ("/moved.png", {"IMAGEBATCH_ALLOW_LOCAL_URLS": "1"}, "redirects to /fox.png"),
    ],
)
async def test_a_bad_reference_url_is_refused_and_nothing_is_written(
    path: str, env: dict[str, str], said: str, tmp_path: Path
) -> None:
    workspace = Workspace(tmp_path / "ws")
    async with image_host(ROUTES) as base, Orchestrator(workspace, env=env) as orchestrator:
        with pytest.raises(ConfigError) as caught:
            await orchestrator.submit(parse_spec(url_spec(f"{base}{path}"), "t"))
    message = str(caught.value)
    assert message.startswith("items[0].references: ") and said in message
    assert not workspace.root.exists()
