"""The offline demo job: a short picture book drawn by the mock provider, with some faults."""

from __future__ import annotations

import secrets
from typing import Any

from .spec import JobSpec, parse_spec

__all__ = ["demo_spec"]

PAGES = (
    "A lighthouse keeper's cat watches the first storm of autumn roll in",
    "The cat finds a paper boat washed up on the rocks",
    "Inside the boat, a tiny map drawn in blue ink",
    "The cat and a gull study the map by lantern light",
    "They sail the paper boat across the harbour at dawn",
    "A sleepy whale offers directions to the island on the map",
    "The island is made of old lighthouse lenses, glittering",
    "A family of crabs guards a chest of lost buttons",
    "The cat trades a sardine for the brightest button",
    "Back home, the button becomes a new lamp for the lighthouse",
    "Ships in the fog follow the button's warm orange glow",
    "The cat sleeps on the windowsill, the storm long gone",
)


def demo_spec(count: int = 12, *, provider: str = "mock") -> JobSpec:
    """A `count`-page story. On the mock some pages meet a 429 or a 500 first; on another
    provider (`imagebatch demo --provider openai`) it asks for the provider's defaults only."""
    pages = [PAGES[n % len(PAGES)] for n in range(count)]
    spec: dict[str, Any] = {
        "key": f"demo-{secrets.token_hex(3)}",
        "name": "demo: the lighthouse cat",
        "provider": provider,
        "limits": {"concurrency": 4, "timeout_s": 120, "max_attempts": 4},
        "output": {"format": "jpeg", "max_size": "768x512", "thumbnail_px": 192},
        "items": [{"id": f"page-{n:02d}", "prompt": prompt} for n, prompt in enumerate(pages, 1)],
    }
    if provider == "mock":
        spec["name"] = "offline demo: the lighthouse cat"
        spec["provider_options"] = MOCK_OPTIONS
        spec["defaults"] = {"size": "768x512"}
        spec["limits"]["timeout_s"] = 15
    return parse_spec(spec, "demo")


MOCK_OPTIONS = {
    "seed": 5,
    "latency_mean_s": 0.8,
    "latency_distribution": "uniform",
    "rate_429": 0.12,
    "retry_after_s": 1.0,
    "rate_500": 0.08,
}
