"""imagebatch: generate batches of images against slow, rate-limited, flaky image APIs."""

from __future__ import annotations

__all__: list[str] = []
