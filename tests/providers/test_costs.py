"""The price table and its lookups."""

from __future__ import annotations

from orchestrator.costs import (
    TokenUsage,
    flat_prices,
    image_price,
    load_prices,
    model_prices,
    usage_cost,
)


def test_table_loads_for_every_provider() -> None:
    assert {"openai", "gemini", "mock"} <= set(load_prices())


def test_image_price_exact_wildcard_and_auto() -> None:
    assert image_price("openai", "gpt-image-1.5", "1024x1024", "low") == 0.009
    assert image_price("openai", "gpt-image-1.5", "auto", "low") == 0.013
    assert image_price("openai", "gpt-image-1.5", None, None) == 0.2
    assert image_price("openai", "dall-e-2", "512x512", "standard") == 0.018
    assert image_price("gemini", "imagen-4.0-fast-generate-001", "1408x768", None) == 0.02


def test_unknown_models_and_sizes_have_no_price() -> None:
    assert image_price("openai", "gpt-image-99", "1024x1024", "low") is None
    assert image_price("openai", "gpt-image-1.5", "640x480", "low") is None
    assert image_price("nobody", "x", None, None) is None
    assert usage_cost("openai", "dall-e-3", TokenUsage(output_image_tokens=5)) is None


def test_snapshots_are_priced_as_their_base_model() -> None:
    assert model_prices("openai", "gpt-image-1-mini-2025-10-06") == model_prices(
        "openai", "gpt-image-1-mini"
    )


def test_usage_cost_per_million_tokens() -> None:
    usage = TokenUsage(input_text_tokens=1000, input_image_tokens=1000, output_image_tokens=4160)
    # gpt-image-1: text 5, image in 10, image out 40 USD per 1M tokens.
    assert usage_cost("openai", "gpt-image-1", usage) == round((5000 + 10000 + 166400) / 1e6, 6)
    assert usage.as_dict()["total_tokens"] == 6160


def test_flat_prices_keys() -> None:
    flat = flat_prices("gemini")
    assert flat["gemini-2.5-flash-image/*/*"] == 0.039
