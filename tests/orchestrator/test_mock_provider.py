"""The mock provider: deterministic pictures, latency and injected faults."""

from __future__ import annotations

import asyncio
import io
import math
import os
import statistics
import threading
import time
from typing import Any

import pytest
from PIL import Image

from orchestrator.errors import (
    BadResponseError,
    ConfigError,
    ContentRejectedError,
    InvalidRequestError,
    ProviderError,
    RateLimitedError,
    UnavailableError,
)
from orchestrator.imaging import inspect_image
from orchestrator.providers.base import GenerateRequest, Provider, ProviderConfig, Reference
from orchestrator.providers.mock import MockProvider
from orchestrator.providers.mock_drawing import _gradient
from orchestrator.providers.registry import create


def make(**options: Any) -> MockProvider:
    options.setdefault("latency_mean_s", 0)
    return MockProvider(ProviderConfig(options=options))


def request(prompt: str = "a red fox", **fields: Any) -> GenerateRequest:
    fields.setdefault("item_id", "page-1")
    return GenerateRequest(job_id="job-1", prompt=prompt, **fields)


async def outcome(provider: MockProvider, req: GenerateRequest) -> str:
    try:
        await provider.generate(req)
    except ProviderError as error:
        return error.kind
    return "ok"


def test_is_a_provider_and_registered() -> None:
    provider = create("mock", ProviderConfig())
    assert isinstance(provider, MockProvider)
    assert isinstance(provider, Provider)
    assert provider.name == "mock"
    assert provider.capabilities.default_model == "mock-1"
    assert provider.capabilities.supports_references


async def test_image_is_a_png_of_the_requested_size() -> None:
    image = await make().generate(request(size="320x200"))
    info = inspect_image(image.data)
    assert (info.format, info.width, info.height) == ("png", 320, 200)
    assert image.mime_type == "image/png"
    assert (image.model, image.cost_usd, image.usage) == ("mock-1", 0.0, {"images": 1})


@pytest.mark.parametrize("size", [None, "auto"])
async def test_default_size(size: str | None) -> None:
    image = await make().generate(request(size=size))
    assert inspect_image(image.data).width == 512
    assert inspect_image(image.data).height == 512


async def test_model_name_from_config() -> None:
    provider = MockProvider(ProviderConfig(model="mock-xl", options={"latency_mean_s": 0}))
    assert (await provider.generate(request(size="64x64"))).model == "mock-xl"


async def test_same_request_same_bytes_across_instances_and_attempts() -> None:
    first = await make(seed=3).generate(request(size="128x96"))
    again = await make(seed=3).generate(request(size="128x96"))
    retry = await make(seed=3).generate(request(size="128x96", attempt=2))
    assert first.data == again.data == retry.data


async def test_prompt_seed_and_size_change_the_picture() -> None:
    provider = make(seed=3)
    base = (await provider.generate(request(size="128x96"))).data
    assert (await provider.generate(request("a blue whale", size="128x96"))).data != base
    assert (await make(seed=4).generate(request(size="128x96"))).data != base
    assert (await provider.generate(request(size="128x96", seed=9))).data != base
    assert (await provider.generate(request(size="96x128"))).data != base


async def test_reference_is_drawn_in_the_corner() -> None:
    provider = make()
    ref_png = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 255, 0)).save(ref_png, format="PNG")
    ref = Reference(data=ref_png.getvalue(), mime_type="image/png", name="ref-0.png")
    plain = await provider.generate(request(size="256x256"))
    with_ref = await provider.generate(request(size="256x256", references=(ref,)))
    assert plain.data != with_ref.data
    picture = Image.open(io.BytesIO(with_ref.data)).convert("RGB")
    assert picture.getpixel((256 - 32, 32)) == (0, 255, 0)


async def test_unusable_reference_is_an_invalid_request() -> None:
    ref = Reference(data=b"not an image", mime_type="image/png", name="ref-0.png")
    with pytest.raises(InvalidRequestError, match="reference"):
        await make().generate(request(references=(ref,)))


@pytest.mark.parametrize(
    ("option", "error"),
    [("rate_429", RateLimitedError), ("rate_500", UnavailableError)],
)
async def test_retryable_faults(option: str, error: type[ProviderError]) -> None:
    with pytest.raises(error) as caught:
        await make(**{option: 1.0}, retry_after_s=2.5).generate(request())
    assert caught.value.retryable
    if error is RateLimitedError:
        assert caught.value.retry_after == 2.5


async def test_injected_rejection() -> None:
    with pytest.raises(ContentRejectedError, match="rate_reject") as caught:
        await make(rate_reject=1.0).generate(request())
    assert not caught.value.retryable


async def test_reject_pattern_always_rejects_matching_prompts() -> None:
    provider = make(reject_pattern=r"(?i)\bgore\b")
    for attempt in range(1, 4):
        with pytest.raises(ContentRejectedError, match="reject_pattern"):
            await provider.generate(request("Some GORE here", attempt=attempt, size="32x32"))
    assert await outcome(provider, request("a gorilla", size="32x32")) == "ok"


async def test_fail_first_fails_only_the_named_items_first_attempts() -> None:
    provider = make(fail_first={"page-7": 2})
    for attempt in (1, 2):
        with pytest.raises(UnavailableError, match="fail_first") as caught:
            await provider.generate(request(item_id="page-7", attempt=attempt, size="32x32"))
        assert caught.value.retryable
    assert await outcome(provider, request(item_id="page-7", attempt=3, size="32x32")) == "ok"
    assert await outcome(provider, request(item_id="page-8", attempt=1, size="32x32")) == "ok"


async def test_bad_bytes_fail_validation() -> None:
    image = await make(rate_bad_bytes=1.0).generate(request())
    assert image.mime_type == "image/png"
    with pytest.raises(BadResponseError):
        inspect_image(image.data)


async def test_hang_is_cut_by_a_timeout() -> None:
    provider = make(rate_hang=1.0)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await provider.generate(request())
    assert time.monotonic() - started < 1.0


async def test_latency_sleep_is_cancellable() -> None:
    task = asyncio.create_task(make(latency_mean_s=30).generate(request()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_fault_decisions_are_deterministic_and_reroll_per_attempt() -> None:
    def requests() -> list[GenerateRequest]:
        return [request(item_id=f"i{n % 3}", attempt=n // 3 + 1) for n in range(30)]

    options = {"seed": 11, "rate_429": 0.5, "rate_bad_bytes": 0.5}
    first = [await outcome(make(**options), r) for r in requests()]
    second = [await outcome(make(**options), r) for r in requests()]
    other_seed = [await outcome(make(**{**options, "seed": 12}), r) for r in requests()]
    assert first == second
    assert first != other_seed
    assert set(first) == {"ok", "rate_limited"}  # bad bytes come back as an "ok" result
    one_item = [await outcome(make(**options), request(attempt=n)) for n in range(1, 11)]
    assert set(one_item) == {"ok", "rate_limited"}, "each attempt must roll again"


async def test_fault_rates_are_exact_shares() -> None:
    provider = make(rate_429=0.3, rate_500=0.7)
    kinds = [await outcome(provider, request(item_id=f"i{n}")) for n in range(400)]
    assert 0.22 < kinds.count("rate_limited") / 400 < 0.38
    assert kinds.count("rate_limited") + kinds.count("unavailable") == 400


@pytest.mark.parametrize("distribution", ["fixed", "uniform", "exponential", "lognormal"])
async def test_latency_distributions(distribution: str, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)  # the mock's latency wait
    options = {"latency_mean_s": 2.0, "latency_distribution": distribution, "rate_500": 1.0}
    for n in range(300):
        await outcome(make(**options), request(item_id=f"i{n}"))
    twice = list(slept)
    slept.clear()
    for n in range(300):
        await outcome(make(**options), request(item_id=f"i{n}"))
    assert slept == twice
    assert 1.6 < sum(slept) / len(slept) < 2.4
    assert (len(set(slept)) == 1) == (distribution == "fixed")


async def test_latency_sigma_shapes_the_lognormal_and_latency_of_tells_the_draw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    options = {"latency_mean_s": 2.0, "latency_distribution": "lognormal", "rate_500": 0.3}
    spreads = {}
    for sigma in (0.2, 1.0):
        provider = make(**options, latency_sigma=sigma)
        requests = [request(item_id=f"i{n}", attempt=1 + n % 3) for n in range(400)]
        told = [provider.latency_of(req) for req in requests]
        slept.clear()
        for req in requests:
            await outcome(provider, req)
        assert slept == told, "latency_of tells the very wait generate makes, faults or not"
        logs = [math.log(delay) for delay in told]
        spreads[sigma] = statistics.stdev(logs)
        assert 1.7 < statistics.fmean(told) < 2.3
    assert abs(spreads[0.2] - 0.2) < 0.03 and abs(spreads[1.0] - 1.0) < 0.12


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"rate_429": 2}, "provider_options.rate_429"),
        ({"colour": "red"}, "provider_options.colour"),
        ({"latency_distribution": "gaussian"}, "provider_options.latency_distribution"),
        ({"latency_mean_s": -1}, "provider_options.latency_mean_s"),
        ({"latency_sigma": 0}, "provider_options.latency_sigma"),
        ({"reject_pattern": "(unclosed"}, "provider_options.reject_pattern"),
        ({"fail_first": {"page-1": -1}}, "provider_options.fail_first.page-1"),
        ({"rate_429": 0.6, "rate_500": 0.6}, "provider_options: the rate_* options add up"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MockProvider(ProviderConfig(options=options))
    message = str(caught.value)
    assert message.startswith(field)
    assert "\n" not in message


@pytest.mark.parametrize(
    ("options", "field", "kind"),
    [
        ({"seed": True}, "seed", "integer"),
        ({"seed": "1"}, "seed", "integer"),
        ({"seed": 1.0}, "seed", "integer"),
        ({"max_size_px": "512"}, "max_size_px", "integer"),
        ({"rate_429": "0.1"}, "rate_429", "number"),
        ({"rate_500": True}, "rate_500", "number"),
        ({"latency_mean_s": "0.5"}, "latency_mean_s", "number"),
        ({"retry_after_s": False}, "retry_after_s", "number"),
    ],
)
def test_option_numbers_are_strict(options: dict[str, Any], field: str, kind: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MockProvider(ProviderConfig(options=options))
    assert str(caught.value) == f"provider_options.{field}: Input should be a valid {kind}"


def test_float_options_take_integers() -> None:
    provider = make(latency_mean_s=1, retry_after_s=2, rate_429=1)
    assert (provider.options.latency_mean_s, provider.options.retry_after_s) == (1.0, 2.0)
    assert provider.options.rate_429 == 1.0


def test_unknown_option_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="use one of seed, latency_mean_s"):
        MockProvider(ProviderConfig(options={"sead": 1}))


def test_check_refuses_sizes_over_the_limit() -> None:
    provider = make(max_size_px=256)
    provider.check(request(size="256x100"))
    provider.check(request(size="auto"))
    with pytest.raises(ConfigError, match="max_size_px"):
        provider.check(request(size="257x100"))


async def test_generate_clamps_to_the_limit() -> None:
    image = await make(max_size_px=64).generate(request(size="100x32"))
    info = inspect_image(image.data)
    assert (info.width, info.height) == (64, 32)
    auto = inspect_image((await make(max_size_px=64).generate(request())).data)
    assert (auto.width, auto.height) == (64, 64)


async def test_aclose() -> None:
    provider = make()
    await provider.aclose()


def test_the_blend_mask_is_made_once_per_size_with_the_same_pixels() -> None:
    mask = _gradient((24, 40))
    assert _gradient((24, 40)) is mask  # cached: drawing a picture no longer makes it
    assert mask.tobytes() == Image.linear_gradient("L").resize((24, 40)).tobytes()
    assert _gradient((40, 24)).size == (40, 24)


async def test_drawing_runs_in_no_more_threads_than_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drawing holds the GIL for much of its time: more threads than CPUs draw no faster and
    make the event loop wait behind each one for its turn (the loop's stalls)."""
    drawing, most, lock = 0, 0, threading.Lock()
    real_draw = MockProvider._draw

    def counted(self: MockProvider, req: GenerateRequest) -> bytes:
        nonlocal drawing, most
        with lock:
            drawing += 1
            most = max(most, drawing)
        time.sleep(0.02)  # long enough for every thread there is to be drawing at once
        try:
            return real_draw(self, req)
        finally:
            with lock:
                drawing -= 1

    monkeypatch.setattr(MockProvider, "_draw", counted)
    provider = make(latency_mean_s=0)
    calls = [provider.generate(request(f"fox {n}", item_id=f"i{n}")) for n in range(16)]
    images = await asyncio.gather(*calls)
    assert len(images) == 16
    assert 1 <= most <= (os.cpu_count() or 1)


async def test_a_tiny_picture_is_drawn_on_the_loop_and_a_larger_one_in_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 32x32 picture takes a tenth of a millisecond to draw: less than a trip to a thread
    and back, which the event loop also pays for."""
    provider, drawn_in = make(latency_mean_s=0), []
    real_draw = provider._draw

    def where(req: GenerateRequest) -> bytes:
        drawn_in.append(threading.current_thread() is threading.main_thread())
        return real_draw(req)

    monkeypatch.setattr(provider, "_draw", where)
    tiny = await provider.generate(request(size="32x32"))
    larger = await provider.generate(request(size="64x64"))
    assert drawn_in == [True, False]
    assert inspect_image(tiny.data).width == 32 and inspect_image(larger.data).width == 64
    with pytest.raises(InvalidRequestError):
        await provider.generate(request(size="32 by 32"))  # refused as before


@pytest.mark.parametrize(
    ("options", "generators"),
    [
        ({}, 0),
        ({"latency_mean_s": 0.001, "latency_distribution": "fixed"}, 0),
        ({"rate_500": 0.1}, 1),
        ({"latency_mean_s": 0.001, "latency_distribution": "uniform"}, 1),
    ],
)
async def test_an_attempt_seeds_a_generator_only_when_it_draws_a_fault_or_a_latency(
    options: dict[str, Any], generators: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orchestrator.providers.mock as mock_module
    from orchestrator.providers import mock_drawing

    seeded: list[str] = []
    real = mock_drawing.seeded_random  # the mock's own name for it is patched below

    def counting(text: str) -> Any:
        seeded.append(text)
        return real(text)

    monkeypatch.setattr(mock_module, "seeded_random", counting)
    provider = make(**options)
    image = await provider.generate(request(size="16x16"))
    assert len(seeded) == generators
    assert image.data == (await make().generate(request(size="16x16"))).data, "same picture"
