"""What each OpenAI image model accepts: sizes, qualities, styles, reference images.

`OpenAIProvider.check` asks these rules so a request the model would refuse fails before any
call. Models without a rule (new names, unknown snapshots) are passed through unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .base import GenerateRequest

__all__ = ["MODELS", "RULES", "ModelRule", "rule_for"]


@dataclass(frozen=True)
class ModelRule:
    """What one model accepts, so a bad request fails before any call."""

    sizes: tuple[str, ...] | None
    """Accepted sizes; None means any `WxH` within the flexible limits of newer models."""
    qualities: tuple[str, ...]
    styles: bool = False
    max_references: int = 16
    gpt_image: bool = True
    default_size: str = "auto"
    """What the API uses when no size is given (prices the image when usage is missing)."""
    default_quality: str = "auto"

    def problem(self, request: GenerateRequest) -> str | None:
        """Why the model would refuse `request`, or None."""
        if request.size is not None:
            problem = _size_problem(request.size, self.sizes)
            if problem:
                return problem
        if request.quality is not None and request.quality not in self.qualities:
            return f"quality {request.quality!r} is not one of {', '.join(self.qualities)}"
        if request.style is not None and not self.styles:
            return "style is not supported; describe the style in the prompt"
        if len(request.references) > self.max_references:
            return f"at most {self.max_references} reference images are accepted"
        return None


def _size_problem(size: str, sizes: tuple[str, ...] | None) -> str | None:
    if sizes is not None:
        return None if size in sizes else f"size {size!r} is not one of {', '.join(sizes)}"
    if size == "auto":
        return None
    width, height = (int(side) for side in size.split("x"))
    if width % 16 or height % 16:
        return f"size {size!r}: width and height must be multiples of 16"
    if not 1 / 3 <= width / height <= 3:
        return f"size {size!r}: the aspect ratio must be between 1:3 and 3:1"
    if max(width, height) > 3840 or width * height > 3840 * 2160:
        return f"size {size!r}: the largest size is 3840x2160"
    return None


_GPT_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
_GPT_QUALITIES = ("low", "medium", "high", "auto")
_CLASSIC = ModelRule(_GPT_SIZES, _GPT_QUALITIES)
_FLEXIBLE = ModelRule(None, _GPT_QUALITIES)
_FLEXIBLE_MAX = ModelRule(None, (*_GPT_QUALITIES, "xhigh", "max"))
RULES: dict[str, ModelRule] = {
    "gpt-image-1": _CLASSIC,
    "gpt-image-1-mini": _CLASSIC,
    "gpt-image-1.5": _CLASSIC,
    "chatgpt-image-latest": _CLASSIC,
    "gpt-image-2": _FLEXIBLE,
    "gpt-image-2.5-sunburst": _FLEXIBLE_MAX,
    "gpt-image-2.5-flare": _FLEXIBLE_MAX,
    "dall-e-3": ModelRule(
        ("1024x1024", "1792x1024", "1024x1792"),
        ("standard", "hd"),
        styles=True,
        max_references=0,
        gpt_image=False,
        default_size="1024x1024",
        default_quality="standard",
    ),
    "dall-e-2": ModelRule(
        ("256x256", "512x512", "1024x1024"),
        ("standard",),
        max_references=1,
        gpt_image=False,
        default_size="1024x1024",
        default_quality="standard",
    ),
}
MODELS = (*RULES, "gpt-image-2.6-sunburst", "gpt-image-2.6-flare")
"""Models the SDK names. Models without a rule (and unknown names) are passed through unchecked."""
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def rule_for(model: str) -> ModelRule | None:
    """The rule of `model` or of its base model (for dated snapshots); None if unknown."""
    return RULES.get(model) or RULES.get(_SNAPSHOT.sub("", model))
