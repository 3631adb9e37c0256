"""What images cost: the price table in `prices.json` and lookups over it.

The table is data, loaded once through `importlib.resources`: per provider and model, a price
per image by size and quality (for estimates before a run) and, where the API reports token
usage, a price per million tokens (for the actual cost of an image). Model snapshots such as
`gpt-image-1.5-2025-12-16` are priced as their base model. A model the table does not know has
no price: lookups return None, never a guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

__all__ = [
    "ModelPrices",
    "TokenPrices",
    "TokenUsage",
    "flat_prices",
    "image_price",
    "load_prices",
    "lowest_image_price",
    "model_prices",
    "usage_cost",
]

WILDCARD = "*"
AUTO = "auto"
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenPrices(_Frozen):
    """USD per million tokens."""

    text_input: float = Field(default=0.0, ge=0)
    image_input: float = Field(default=0.0, ge=0)
    image_output: float = Field(default=0.0, ge=0)
    text_output: float = Field(default=0.0, ge=0)


class ModelPrices(_Frozen):
    """One model's prices."""

    per_image: dict[str, dict[str, float]] = Field(default_factory=dict)
    """size -> quality -> USD per image; `*` matches any size or quality."""
    tokens: TokenPrices | None = None
    """Token prices, for the actual cost from reported usage."""


class TokenUsage(_Frozen):
    """Token counts of one image, normalised across providers."""

    input_text_tokens: int = Field(default=0, ge=0)
    input_image_tokens: int = Field(default=0, ge=0)
    output_image_tokens: int = Field(default=0, ge=0)
    output_text_tokens: int = Field(default=0, ge=0)

    @property
    def total_tokens(self) -> int:
        return (
            self.input_text_tokens
            + self.input_image_tokens
            + self.output_image_tokens
            + self.output_text_tokens
        )

    def as_dict(self) -> dict[str, int]:
        """The counts plus `total_tokens`, for `GeneratedImage.usage`."""
        return {**self.model_dump(), "total_tokens": self.total_tokens}


@lru_cache(maxsize=1)
def load_prices() -> dict[str, dict[str, ModelPrices]]:
    """The whole table: provider -> model -> prices. Read once per process."""
    text = resources.files("orchestrator").joinpath("prices.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    try:
        return {
            provider: {name: ModelPrices.model_validate(entry) for name, entry in models.items()}
            for provider, models in raw.items()
            if not provider.startswith("_")
        }
    except ValidationError as error:
        raise ConfigError(
            f"prices.json: invalid price table ({error.errors()[0]['msg']})"
        ) from None


def model_prices(provider: str, model: str) -> ModelPrices | None:
    """The prices of `model` (or of its base model, for a dated snapshot), or None."""
    table = load_prices().get(provider, {})
    return table.get(model) or table.get(_SNAPSHOT.sub("", model))


def _pick(
    options: dict[str, float], key: str | None, choose: Callable[[Iterable[float]], float]
) -> float | None:
    if key in (None, AUTO) and options:  # the provider picks: the table's "auto" is one option
        return choose(options.values())
    if key is not None and key in options:
        return options[key]
    return options.get(WILDCARD)


def image_price(provider: str, model: str, size: str | None, quality: str | None) -> float | None:
    """USD for one image, for estimates. `None`/`auto` size or quality takes the dearest option."""
    return _price(provider, model, size, quality, max)


def lowest_image_price(
    provider: str, model: str, size: str | None, quality: str | None
) -> float | None:
    """What `image_price` would be if the provider picked the cheapest option where `size` or
    `quality` is left to it (`None`/`auto`): the low end of what the image may cost."""
    return _price(provider, model, size, quality, min)


def _price(
    provider: str,
    model: str,
    size: str | None,
    quality: str | None,
    choose: Callable[[Iterable[float]], float],
) -> float | None:
    prices = model_prices(provider, model)
    if prices is None or not prices.per_image:
        return None
    sizes = prices.per_image
    if size is not None and size in sizes:
        by_quality: dict[str, float] | None = sizes[size]
    elif WILDCARD in sizes:
        by_quality = sizes[WILDCARD]
    elif size in (None, AUTO):
        candidates = [_pick(qualities, quality, choose) for qualities in sizes.values()]
        known = [price for price in candidates if price is not None]
        return choose(known) if known else None
    else:
        by_quality = None
    return None if by_quality is None else _pick(by_quality, quality, choose)


def usage_cost(provider: str, model: str, usage: TokenUsage) -> float | None:
    """USD that `usage` cost, from the token prices, or None if the model has none."""
    prices = model_prices(provider, model)
    if prices is None or prices.tokens is None:
        return None
    rates = prices.tokens
    micro_usd = (
        usage.input_text_tokens * rates.text_input
        + usage.input_image_tokens * rates.image_input
        + usage.output_image_tokens * rates.image_output
        + usage.output_text_tokens * rates.text_output
    )
    return round(micro_usd / 1_000_000, 6)


def flat_prices(provider: str) -> dict[str, float]:
    """Every per-image price of `provider` keyed `model/size/quality` (for `Capabilities`)."""
    flat: dict[str, float] = {}
    for model, prices in load_prices().get(provider, {}).items():
        for size, qualities in prices.per_image.items():
            for quality, price in qualities.items():
                flat[f"{model}/{size}/{quality}"] = price
    return flat
