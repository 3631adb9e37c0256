"""The result cache: a later job's identical request is not paid for again."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import diskcache
import pytest

from orchestrator.cache import CachedImage, ResultCache, request_key
from orchestrator.events import ItemGenerated
from orchestrator.providers.base import GeneratedImage, GenerateRequest, Reference
from orchestrator.spec import parse_spec
from orchestrator.states import JobStatus
from orchestrator.testing.scripted import ScriptedProvider, make_spec, png_bytes

from .conftest import MakeOrchestrator


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raw_file(folder: Path, name: str, data: bytes | None = None) -> dict[str, object]:
    """A raw image as a job wrote it, and the arguments that keep it in the cache."""
    data = png_bytes() if data is None else data
    path = folder / "raw" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"raw": path, "sha256": hashlib.sha256(data).hexdigest()}


def cache_images(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "images").glob("*/*.png"))


async def test_a_later_jobs_identical_requests_make_no_call_and_cost_nothing(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider(image=png_bytes(colour="navy"))
    orch = make_orchestrator(provider)
    first = await orch.submit(make_spec(3, key="first"))
    assert (await first.wait()).status == JobStatus.COMPLETED
    assert len(provider.calls) == 3 and (await first.status()).cost_usd == 0.03

    second = await orch.submit(make_spec(3, key="second"))
    record = await second.wait()
    assert record.status == JobStatus.COMPLETED
    assert len(provider.calls) == 3  # not one more call
    assert record.cost_usd == 0.0
    paid = {item.id: item for item in await first.items()}
    for item in await second.items():
        assert item.cached_from == f"{first.id}/{item.id}"
        assert item.attempts == () and item.cost_usd == 0.0
        raw = orch.workspace.absolute(item.raw_path or "")
        assert sha(raw) == paid[item.id].raw_sha256 == item.raw_sha256
        assert orch.workspace.absolute(item.image_path or "").is_file()
    events, _ = await orch.journal.events_since(0, second.id)
    generated = [e for e in events if isinstance(e, ItemGenerated)]
    assert len(generated) == 3 and all(e.cached and e.cost_usd == 0.0 for e in generated)
    # the cache kept no second copy: its images are other names for the first job's raw files
    raws = {orch.workspace.absolute(item.raw_path or "").stat().st_ino for item in paid.values()}
    kept = cache_images(orch.workspace.cache_dir)
    assert {path.stat().st_ino for path in kept} == raws and len(kept) == 3


async def test_a_hit_outlives_the_paying_jobs_files(make_orchestrator: MakeOrchestrator) -> None:
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    first = await orch.submit(make_spec(2, key="first"))
    await first.wait()
    for item in await first.items():  # the user deletes the first job's images
        orch.workspace.absolute(item.raw_path or "").unlink()
    again = await orch.submit(make_spec(2, key="again"))
    await again.wait()
    assert len(provider.calls) == 2  # no new call
    assert all(item.cached_from for item in await again.items())


async def test_cache_false_and_two_equal_items_of_one_job_are_paid_for(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    await (await orch.submit(make_spec(2, key="first"))).wait()
    spec = make_spec(2, key="again").model_dump()
    spec["cache"] = False
    again = await orch.submit(parse_spec(spec, "test"))
    await again.wait()
    assert len(provider.calls_for("i0")) == 2  # asked again, as the spec says
    assert all(item.cached_from is None for item in await again.items())

    same = make_spec(2, key="variations").model_dump()
    same["items"] = [{"id": "v1", "prompt": "one fox"}, {"id": "v2", "prompt": "one fox"}]
    job = await orch.submit(parse_spec(same, "test"))
    await job.wait()
    assert [call.item_id for call in provider.calls[-2:]] == ["v1", "v2"]  # two images


def test_the_key_is_what_decides_the_picture() -> None:
    base = GenerateRequest(job_id="j", item_id="a", prompt="a fox", size="64x64", attempt=1)
    key = request_key("openai", "gpt-image-1", base)
    other_item = base.model_copy(update={"job_id": "k", "item_id": "b", "attempt": 3})
    assert request_key("openai", "gpt-image-1", other_item) == key
    assert request_key("openai", "gpt-image-1.5", base) != key
    assert request_key("gemini", "gpt-image-1", base) != key
    for change in ({"prompt": "a fox!"}, {"size": "32x32"}, {"seed": 4}, {"quality": "low"}):
        assert request_key("openai", "gpt-image-1", base.model_copy(update=change)) != key
    ref = Reference(data=b"one", mime_type="image/png", name="ref-0.png")
    with_ref = base.model_copy(update={"references": (ref,)})
    other_ref = base.model_copy(update={"references": (ref.model_copy(update={"data": b"two"}),)})
    assert len({key, request_key("o", "m", with_ref), request_key("o", "m", other_ref)}) == 3


async def test_a_damaged_entry_is_a_miss_and_the_job_pays_for_the_image(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    await (await orch.submit(make_spec(3, key="first"))).wait()
    kept = cache_images(orch.workspace.cache_dir)
    kept[0].unlink()  # gone
    replaced = kept[1].with_name("other")
    replaced.write_bytes(png_bytes(colour="red"))
    replaced.replace(kept[1])  # another image than the one recorded
    cache = ResultCache(orch.workspace.cache_dir)
    try:
        key = next(key for key in cache._opened() if kept[2].stem == key)
        entry = cache._opened().get(key)
        cache._opened().set(key, {**entry, "file": "../../raw/elsewhere.png"})
    finally:
        cache.close()
    again = await orch.submit(make_spec(3, key="again"))
    assert (await again.wait()).status == JobStatus.COMPLETED
    assert len(provider.calls) == 6  # each of the three paid again


def test_an_entry_from_before_images_were_links_is_still_a_hit(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    old = {"mime_type": "image/png", "model": "m", "job_id": "j", "item_id": "i"}
    cache._opened().set("k", {**old, "data": png_bytes()})
    cache._opened().set("bad", {**old, "data": b"\x89PNG\r\n\x1a\n truncated"})
    hit = cache.get("k")
    assert hit is not None and hit.image.data == png_bytes() and hit.item_id == "i"
    assert cache.get("bad") is None
    cache.close()


def test_without_hard_links_the_image_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", refused)
    cache = ResultCache(tmp_path / "cache")
    image = GeneratedImage(data=png_bytes(), mime_type="image/png", model="m")
    paid = raw_file(tmp_path, "i0")
    assert cache.put("k0", image, job_id="j", item_id="i0", **paid)  # type: ignore[arg-type]
    cache.close()
    paid["raw"].unlink()  # type: ignore[attr-defined]
    reopened = ResultCache(tmp_path / "cache")
    hit = reopened.get("k0")
    assert hit is not None and hit.image.data == png_bytes()
    reopened.close()


def test_images_only_the_cache_holds_are_trimmed_to_the_limit_oldest_first(
    tmp_path: Path,
) -> None:
    image = GeneratedImage(data=png_bytes(), mime_type="image/png", model="m")
    size = len(image.data)
    cache = ResultCache(tmp_path / "cache", size_limit=2 * size)
    paid = [raw_file(tmp_path, f"i{n}") for n in range(5)]
    for n, args in enumerate(paid):
        assert cache.put(f"k{n}", image, job_id="j", item_id=f"i{n}", **args)  # type: ignore[arg-type]
        os.utime(tmp_path / "cache" / "images" / f"k{n}" / f"k{n}.png", (1000 + n, 1000 + n))
    cache.close()
    assert len(cache_images(tmp_path / "cache")) == 5  # the job holds them all: no cost
    for args in paid[:4]:
        args["raw"].unlink()  # type: ignore[attr-defined]
    cache = ResultCache(tmp_path / "cache", size_limit=2 * size)
    assert cache.put("k5", image, job_id="j", item_id="i5", **raw_file(tmp_path, "i5"))  # type: ignore[arg-type]
    cache.close()
    left = [path.stem for path in cache_images(tmp_path / "cache")]
    assert left == ["k2", "k3", "k4", "k5"]  # k4, k5 still held by the job; k2, k3 the newest
    reopened = ResultCache(tmp_path / "cache")
    assert reopened.get("k0") is None and reopened.get("k1") is None
    assert all(reopened.get(f"k{n}") is not None for n in range(2, 6))
    reopened.close()


def test_keeping_an_entry_looks_for_nothing_to_cull(tmp_path: Path) -> None:
    """The cache's images are trimmed by `trim`; diskcache's own culling only read the index's
    size and looked for expired entries (none expire) at every entry kept."""
    cache = ResultCache(tmp_path / "cache")
    image = GeneratedImage(data=png_bytes(), mime_type="image/png", model="m")
    assert cache.put("k0", image, job_id="j", item_id="i0", **raw_file(tmp_path, "i0"))  # type: ignore[arg-type]
    statements: list[str] = []
    cache._opened()._con.set_trace_callback(statements.append)
    assert cache.put("k1", image, job_id="j", item_id="i1", **raw_file(tmp_path, "i1"))  # type: ignore[arg-type]
    cache._opened()._con.set_trace_callback(None)
    assert any("INSERT" in statement for statement in statements)
    culling = [s for s in statements if "expire_time <" in s or "Settings" in s]
    assert not culling, culling
    hit = cache.get("k1")
    assert hit is not None and hit.image.data == image.data
    cache.close()


async def test_entries_kept_while_others_are_written_go_in_one_transaction(
    tmp_path: Path,
) -> None:
    cache = ResultCache(tmp_path / "cache")
    held = threading.Event()
    release = threading.Event()
    transactions = 0
    opened = cache._opened()
    real_transact = opened.transact

    def counting_transact(*args: object, **kwargs: object) -> object:
        nonlocal transactions
        transactions += 1
        held.set()
        release.wait(5)
        return real_transact()

    opened.transact = counting_transact
    image = GeneratedImage(data=png_bytes(), mime_type="image/png", model="m")
    paid: Any = raw_file(tmp_path, "paid")
    first = asyncio.ensure_future(cache.keep("k0", image, job_id="j", item_id="i0", **paid))
    await asyncio.to_thread(held.wait, 5)  # the first entry is being written
    rest = [
        asyncio.ensure_future(cache.keep(f"k{n}", image, job_id="j", item_id=f"i{n}", **paid))
        for n in range(1, 6)
    ]
    await asyncio.sleep(0)
    hit = await asyncio.to_thread(cache.get, "k3")  # waiting entries are hits already
    release.set()
    assert await asyncio.gather(first, *rest) == [True] * 6
    assert transactions == 2  # the five that waited were written together
    assert hit is not None and hit.item_id == "i3"
    assert all(cache.get(f"k{n}") is not None for n in range(6))
    cache.close()


async def test_lookups_asked_while_the_cache_is_busy_are_answered_in_one_trip_in_order(
    tmp_path: Path,
) -> None:
    cache = ResultCache(tmp_path / "cache")
    image = GeneratedImage(data=png_bytes(), mime_type="image/png", model="m")
    assert cache.put("k2", image, job_id="j", item_id="i2", **raw_file(tmp_path, "i2"))  # type: ignore[arg-type]
    trips = 0
    answer = cache._answer

    def counting(keys: list[str] | None = None) -> dict[str, CachedImage | None]:
        nonlocal trips
        trips += 1
        return answer(keys)

    cache._answer = counting  # type: ignore[method-assign]
    release = threading.Event()
    with cache._lock:
        busy = cache._executor().submit(release.wait, 5)  # the thread is busy meanwhile
    went_on: list[str] = []

    async def look(key: str) -> None:
        hit = await cache.lookup(key)
        went_on.append(f"{key}:{'hit' if hit else 'miss'}")

    asking = [asyncio.ensure_future(look(f"k{n}")) for n in range(5)]
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(*asking)
    assert busy.result() is True
    assert trips == 1  # five lookups, one trip to the cache's thread
    assert went_on == ["k0:miss", "k1:miss", "k2:hit", "k3:miss", "k4:miss"]  # in asked order
    cache.close()


async def test_a_caller_cancelled_while_it_waits_stops_no_one_elses_lookup_or_entry(
    tmp_path: Path,
) -> None:
    """Callers share a trip to the cache's thread. An item interrupted while it waits (Ctrl-C,
    a cancel) stops waiting; the trip still goes, for the others and for later callers, and
    closing the cache writes what was kept."""
    cache = ResultCache(tmp_path / "cache")
    image = GeneratedImage(data=png_bytes(), mime_type="image/png", model="m")
    release = threading.Event()
    with cache._lock:
        busy = cache._executor().submit(release.wait, 5)  # the trips below wait behind this
    paid: Any = raw_file(tmp_path, "paid")
    kept = [
        asyncio.ensure_future(cache.keep(f"k{n}", image, job_id="j", item_id=f"i{n}", **paid))
        for n in range(2)
    ]
    looked = [asyncio.ensure_future(cache.lookup(f"k{n}")) for n in range(2)]
    await asyncio.sleep(0.05)
    kept[0].cancel()
    looked[0].cancel()
    await asyncio.sleep(0.05)
    release.set()
    assert await kept[1] is True
    assert await looked[1] is not None  # k1 was waiting to be written: a hit already
    assert await cache.lookup("k0") is not None  # later lookups still get their trip
    assert await cache.keep("k2", image, job_id="j", item_id="i2", **paid) is True
    assert busy.result() is True
    await asyncio.to_thread(cache.close)  # raised CancelledError when a cancel dropped a trip
    reopened = ResultCache(tmp_path / "cache")
    assert all(reopened.get(f"k{n}") is not None for n in range(3))
    reopened.close()


async def test_a_lookup_made_while_the_cache_is_being_opened_does_not_stop_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening the cache makes its SQLite files, in the cache's thread. The loop that looks a
    key up meanwhile goes on at once (it used to wait for the open, on a lock they shared)."""
    opening, loop_went_on = threading.Event(), threading.Event()
    real_cache = diskcache.Cache

    def slow_open(*args: object, **kwargs: object) -> diskcache.Cache:
        opening.set()
        if not loop_went_on.wait(5):  # the loop is stuck behind this open
            raise RuntimeError("the event loop waited for the cache to open")
        return real_cache(*args, **kwargs)

    monkeypatch.setattr(diskcache, "Cache", slow_open)
    cache = ResultCache(tmp_path / "cache")
    image = GeneratedImage(data=png_bytes(), mime_type="image/png", model="m")
    paid: Any = raw_file(tmp_path, "paid")
    kept = asyncio.ensure_future(cache.keep("k0", image, job_id="j", item_id="i0", **paid))
    await asyncio.to_thread(opening.wait, 5)  # the cache's thread is opening it
    looked = asyncio.ensure_future(cache.lookup("k0"))
    await asyncio.sleep(0)  # the lookup asks; the loop must come back here at once
    loop_went_on.set()
    assert await kept is True
    hit = await looked
    assert hit is not None and hit.item_id == "i0"
    cache.close()


async def test_a_lookup_from_another_loop_while_a_trip_waits_gets_its_own_answer(
    tmp_path: Path,
) -> None:
    """A trip's answers go to the loop that asked first; a caller on another loop (a second
    thread with its own loop) is answered too, not left with a trip that holds no answer."""
    cache = ResultCache(tmp_path / "cache")
    image = GeneratedImage(data=png_bytes(), mime_type="image/png", model="m")
    assert cache.put("k2", image, job_id="j", item_id="i2", **raw_file(tmp_path, "i2"))  # type: ignore[arg-type]
    release = threading.Event()
    with cache._lock:
        cache._executor().submit(release.wait, 5)  # the thread is busy meanwhile
    here = asyncio.ensure_future(cache.lookup("k1"))
    await asyncio.sleep(0.05)  # this loop's trip is queued
    there: list[object] = []
    other = threading.Thread(target=lambda: there.append(asyncio.run(cache.lookup("k2"))))
    other.start()
    await asyncio.sleep(0.05)
    release.set()
    assert await here is None
    await asyncio.to_thread(other.join, 10)
    assert len(there) == 1 and there[0] is not None, "the other loop's lookup was answered"
    cache.close()
