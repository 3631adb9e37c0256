"""The speed benchmark's scenarios (issue 11): what each runs, in model time and in real time.

Latencies are given in model seconds (a headline image takes 15 on average, as a real image API
does) and run compressed: `model_s` real seconds per model second (0.1 for the mock: a 15 s image
takes 1.5 s). A rate per model minute is a rate per `60 * model_s` real seconds. Items, prompts
and latency draws depend only on the scenario and the seed, so every variant of a seed gets the
same draws, and the bound is computed on them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.providers.base import GenerateRequest, ProviderConfig
from orchestrator.providers.mock import MockProvider
from orchestrator.testing.fakeserver.timing import prompt_latency

from .bound import lower_bound

__all__ = ["QUICK", "SCENARIOS", "Scenario", "quick"]

Backend = Literal["mock", "http"]
MOCK_SIZE = "64x64"
HTTP_MODEL, HTTP_SIZE = "dall-e-2", "256x256"


@dataclass(frozen=True)
class Scenario:
    """One batch shape, run once per seed by imagebatch and by each baseline."""

    name: str
    """Short name, for `--only`."""
    about: str
    """What the table calls it."""
    backend: Backend
    """`mock`: the mock provider; `http`: the OpenAI provider against the fake server."""
    items: int
    concurrency: int | str
    """What imagebatch (and each baseline) is told: slots at once, or `auto`."""
    sigma: float = 0.6
    mean_model_s: float = 15.0
    model_s: float = 0.1
    """Real seconds per model second."""
    seeds: int = 1
    cap: int | None = None
    """The provider's hidden concurrency cap K (the fake server answers 429 above it)."""
    quota_per_model_min: float | None = None
    """The provider's request quota R (the fake server answers 429 above it)."""
    quota_burst: int = 1
    """The quota's burst B."""
    rate_per_model_min: float | None = None
    """The rate imagebatch is told (`limits.rate_per_minute`), per model minute."""
    rate_500: float = 0.0
    rate_hang: float = 0.0
    timeout_model_s: float | None = None
    """`limits.timeout_s` in model seconds; None keeps the default (120 s real)."""
    max_attempts: int = 3
    processes: int = 1
    """imagebatch processes sharing one workspace and provider, the items dealt out among them."""
    baselines: bool = True

    @property
    def mean_s(self) -> float:
        return self.mean_model_s * self.model_s

    @property
    def slots(self) -> int:
        """Concurrency per process as a number (`auto` starts from the provider's cap, or 5)."""
        if isinstance(self.concurrency, int):
            return self.concurrency
        return self.cap or 5

    def per_minute(self, per_model_min: float | None) -> float | None:
        """A rate per model minute as a rate per real minute."""
        return None if per_model_min is None else per_model_min / self.model_s

    @property
    def timeout_s(self) -> float:
        return 120.0 if self.timeout_model_s is None else self.timeout_model_s * self.model_s

    def item_ids(self) -> list[str]:
        return [f"img-{n:04d}" for n in range(self.items)]

    def prompts(self, seed: int) -> list[str]:
        return [f"speed test {self.name} seed {seed}: image {n}" for n in range(self.items)]

    def mock_options(self, seed: int) -> dict[str, Any]:
        options: dict[str, Any] = {
            "seed": seed,
            "latency_mean_s": self.mean_s,
            "latency_distribution": "lognormal",
            "latency_sigma": self.sigma,
        }
        return options

    def latencies(self, seed: int) -> list[float]:
        """Each item's latency in real seconds, as the provider will draw it (first attempt)."""
        prompts = self.prompts(seed)
        if self.backend == "http":
            return [prompt_latency(seed, p, self.mean_s, self.sigma) for p in prompts]
        mock = MockProvider(ProviderConfig(options=self.mock_options(seed)))
        return [
            mock.latency_of(
                GenerateRequest(job_id="-", item_id=item, prompt=prompt, size=MOCK_SIZE)
            )
            for item, prompt in zip(self.item_ids(), prompts, strict=True)
        ]

    def bound(self, seed: int) -> float:
        """LB in real seconds for this seed's draws (all processes' slots together)."""
        return lower_bound(
            self.latencies(seed),
            self.slots * self.processes,
            cap=self.cap,
            rate_per_minute=self.per_minute(self.quota_per_model_min or self.rate_per_model_min),
            burst=self.quota_burst,
        )


_HEADLINE = Scenario("headline", "N=100, C=5, sigma 0.6", "mock", 100, 5, seeds=3)
_HTTP = Scenario(
    "http", "HTTP: 80 images, mean 0.4 s, C=5", "http", 80, 5, mean_model_s=0.4, model_s=1.0
)
_CAP = Scenario(
    "cap8", "HTTP: hidden cap K=8, C=8", "http", 100, 8, model_s=0.04, cap=8, max_attempts=10
)
SCENARIOS: tuple[Scenario, ...] = (
    _HEADLINE,
    Scenario("sigma1", "N=100, C=5, sigma 1.0", "mock", 100, 5, sigma=1.0),
    Scenario("c10", "N=100, C=10, sigma 0.6", "mock", 100, 10),
    Scenario(
        "n1000",
        "N=1,000, C=10 (1 model-s = 20 ms)",
        "mock",
        1000,
        10,
        model_s=0.02,
        baselines=False,
    ),
    dataclasses.replace(_HTTP, seeds=2),
    Scenario(
        "faults",
        "HTTP: 5% 5xx + 1% hangs past the timeout",
        "http",
        60,
        5,
        model_s=0.04,
        rate_500=0.05,
        rate_hang=0.01,
        timeout_model_s=60.0,
    ),
    Scenario(
        "rate",
        "HTTP: rate-bound, R=20/min, C=10",
        "http",
        40,
        10,
        quota_per_model_min=20.0,
        quota_burst=2,
        rate_per_model_min=20.0,
    ),
    _CAP,
    dataclasses.replace(_CAP, name="cap32", about="HTTP: hidden cap K=8, C=32", concurrency=32),
    dataclasses.replace(
        _CAP,
        name="capauto",
        about="HTTP: hidden cap K=8, C=auto",
        concurrency="auto",
        baselines=False,
    ),
    # At the real pace: a 60/min quota is a start a second. Compressed ten times (a start
    # every 100 ms), ten processes starting at once on 2 cores send late by as much as the
    # spacing itself, and the late and the punctual bunch (65 starts in a window, 7 answers 429);
    # at a start a second the same run keeps to 61 and none (benchmarks/RESULTS.md).
    Scenario(
        "ten",
        "HTTP: 10 processes, one 60/min quota",
        "http",
        100,
        5,
        model_s=1.0,
        quota_per_model_min=60.0,
        quota_burst=2,
        rate_per_model_min=60.0,
        max_attempts=10,
        processes=10,
        baselines=False,
    ),
)


def quick(scenario: Scenario) -> Scenario:
    """One seed; on the mock, time five times more compressed: a look in a minute or so."""
    faster = scenario.model_s / 5 if scenario.backend == "mock" else scenario.model_s
    return dataclasses.replace(scenario, model_s=faster, seeds=1)


QUICK: tuple[Scenario, ...] = (quick(_HEADLINE), quick(_HTTP))
