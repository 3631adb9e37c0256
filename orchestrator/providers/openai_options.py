"""`provider_options` for `openai` (`OpenAIOptions`), and the check of them against the model.

Images API parameters of the same names, passed on as given, and the SDK's own timeout. The GPT
image parameters are refused for DALL-E models, and `response_format` for GPT image models
(they always answer in base64), so a spec that asks for either fails before any call.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError
from .http import options_error
from .openai_models import ModelRule

__all__ = ["OpenAIOptions", "load_options"]


class OpenAIOptions(BaseModel):
    """`provider_options` for `openai`: Images API parameters of the same names, and a timeout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    background: Literal["transparent", "opaque", "auto"] | None = None
    """Transparent backgrounds need `output_format` png or webp."""
    output_format: Literal["png", "jpeg", "webp"] | None = None
    """Format the API encodes the image in (GPT image models)."""
    output_compression: int | None = Field(default=None, ge=0, le=100)
    """0-100, for jpeg and webp output."""
    moderation: Literal["low", "auto"] | None = None
    """Moderation level for generations (GPT image models)."""
    input_fidelity: Literal["high", "low"] | None = None
    """How closely edits follow the reference images."""
    response_format: Literal["url", "b64_json"] | None = None
    """DALL-E models only: `url` (the API's default; the image is then fetched) or `b64_json`."""
    timeout_s: float = Field(default=3600.0, gt=0)
    """The SDK's own timeout. Keep it above the job's `limits.timeout_s`, which cuts attempts."""

    @model_validator(mode="after")
    def _consistent(self) -> OpenAIOptions:
        if self.output_compression is not None and self.output_format not in ("jpeg", "webp"):
            raise ValueError("output_compression needs output_format 'jpeg' or 'webp'")
        if self.background == "transparent" and self.output_format == "jpeg":
            raise ValueError("a transparent background needs output_format 'png' or 'webp'")
        return self


def load_options(options: dict[str, Any], rule: ModelRule | None, model: str) -> OpenAIOptions:
    """The options validated, or `ConfigError` naming the first bad one; `rule` is the model's
    (None for a model without one: any option passes)."""
    try:
        parsed = OpenAIOptions.model_validate(options)
    except ValidationError as error:
        raise options_error(error, OpenAIOptions, "openai") from None
    gpt_only = ("background", "output_format", "output_compression", "moderation")
    if rule is not None and not rule.gpt_image:
        for name in gpt_only:
            if getattr(parsed, name) is not None:
                raise ConfigError(
                    f"provider_options.{name}: not supported by {model}; remove it or use a "
                    "GPT image model"
                )
    elif rule is not None and parsed.response_format is not None:
        raise ConfigError(
            f"provider_options.response_format: {model} always returns base64; remove it"
        )
    return parsed
