"""What a job is expected to cost before anything runs: for each item, the price table's price of
one image at its model, size and quality (`costs.image_price`); failed attempts are not billed by
the providers, so the estimate counts one image per item. Where the spec leaves an image's size or
quality to the provider (unset or `auto`), its price is a range: the dearest option it may pick
is what the total counts, and the cheapest is said beside it.

The model is the spec's, else the provider's `default_model` (a class attribute, read without
building the provider, so no key is needed to estimate). A model, size or quality the table does
not know has no price: such items are counted as `unpriced`, never guessed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .costs import image_price, lowest_image_price
from .providers import registry
from .providers.base import GenerateRequest, Provider, ProviderFactory
from .spec import JobConfig, JobSpec
from .wording import format_cost

__all__ = ["Estimate", "ItemEstimate", "estimate_spec", "listed_price"]


@dataclass(frozen=True)
class ItemEstimate:
    id: str
    usd: float | None
    """One image's price; None when the table has none for its model, size and quality. The
    dearest the provider may pick, where the spec leaves size or quality to it."""
    lowest_usd: float | None = None
    """The cheapest it may pick there; the same as `usd` elsewhere."""

    @property
    def price(self) -> str:
        """`$0.034`, `$0.009 to $0.200`, or `no known price`."""
        if self.usd is None:
            return "no known price"
        if self.lowest_usd is None or self.lowest_usd == self.usd:
            return f"${self.usd:.3f}"
        return f"${self.lowest_usd:.3f} to ${self.usd:.3f}"


@dataclass(frozen=True)
class Estimate:
    provider: str
    model: str | None
    """The model priced (None: the provider names no default and the spec none)."""
    items: tuple[ItemEstimate, ...]
    cached: frozenset[str] = frozenset()
    """Items the result cache already holds (see `cache_ahead`): they cost nothing."""

    def without(self, cached: frozenset[str]) -> Estimate:
        """This estimate with the `cached` items costing nothing."""
        return dataclasses.replace(self, cached=cached)

    @property
    def to_pay(self) -> tuple[ItemEstimate, ...]:
        return tuple(item for item in self.items if item.id not in self.cached)

    @property
    def total_usd(self) -> float:
        """The sum of the known prices (a lower bound when some are `unpriced`)."""
        return round(sum(item.usd for item in self.to_pay if item.usd is not None), 6)

    @property
    def lowest_usd(self) -> float:
        """The total if the provider picked the cheapest size and quality wherever it may."""
        lowest = (item.usd if item.lowest_usd is None else item.lowest_usd for item in self.to_pay)
        return round(sum(price for price in lowest if price is not None), 6)

    @property
    def unpriced(self) -> int:
        return sum(1 for item in self.to_pay if item.usd is None)

    def line(self) -> str:
        """`estimated cost: $0.41 for 12 images (openai gpt-image-1.5, from the price table)`;
        `... for 2 of 12 images (...); 10 come from the result cache` when it holds some."""
        count, paid = len(self.items), len(self.to_pay)
        images = f"{count} image" + ("s" if count != 1 else "")
        if self.cached:
            images = f"{paid} of {images}"
        model = f" {self.model}" if self.model else ""
        cost, picks = format_cost(self.total_usd, self.unpriced), ""
        if self.lowest_usd != self.total_usd:
            cost = f"{format_cost(self.lowest_usd)} to {cost}"
            picks = ": the provider picks the size or quality the spec leaves unset or auto"
        text = (
            f"estimated cost: {cost} for {images} "
            f"({self.provider}{model}, from the price table{picks})"
        )
        if self.cached:
            text += f"; {count - paid} come from the result cache"
        if self.unpriced:
            text += f"; {self.unpriced} without a known price"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "total_usd": self.total_usd,
            "lowest_usd": self.lowest_usd,
            "unpriced": self.unpriced,
            "cached": len(self.items) - len(self.to_pay),
            "items": [
                {
                    "id": item.id,
                    "usd": item.usd,
                    "lowest_usd": item.usd if item.lowest_usd is None else item.lowest_usd,
                    "cached": item.id in self.cached,
                }
                for item in self.items
            ],
        }


def default_model(
    provider: str, providers: Mapping[str, ProviderFactory] | None = None
) -> str | None:
    """The model `provider` uses when the spec names none, if it says."""
    factory = providers[provider] if providers and provider in providers else None
    factory = factory or registry.load_factory(provider)
    model = getattr(factory, "default_model", None)
    return model if isinstance(model, str) else None


def listed_price(provider: Provider, config: JobConfig, request: GenerateRequest) -> float | None:
    """One image of `request` at the provider's listed price: the provider's own `price(request)`
    where it has one (a plugin's prices), else the price table for its model, size and quality
    (an unknown size or quality takes the dearest listed)."""
    priced = getattr(provider, "price", None)
    if callable(priced):
        value = priced(request)
        return float(value) if isinstance(value, int | float) else None
    model = getattr(provider, "model", None) or config.model
    if not isinstance(model, str):
        return None
    return image_price(config.provider, model, request.size, request.quality)


def estimate_spec(
    spec: JobSpec, providers: Mapping[str, ProviderFactory] | None = None
) -> Estimate:
    """The expected cost of `spec`, item by item (imports the provider's module: blocking)."""
    model = spec.model or default_model(spec.provider, providers)
    items = []
    for item in spec.items:
        params = spec.params_for(item)
        if model is None:
            items.append(ItemEstimate(item.id, None))
            continue
        price = image_price(spec.provider, model, params.size, params.quality)
        lowest = lowest_image_price(spec.provider, model, params.size, params.quality)
        items.append(ItemEstimate(item.id, price, lowest))
    return Estimate(spec.provider, model, tuple(items))
