"""The command palette (ctrl+p): every key of the current screen and of the app, by name, and
the status filters of the job screen."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from .screens import JobScreen
from .widgets.items_table import FILTERS

__all__ = ["palette_commands"]

LEFT_OUT = frozenset({"quit"})
"""Actions Textual's own palette entries already offer."""


def palette_commands(app: App[Any], screen: Screen[Any]) -> Iterator[SystemCommand]:
    """The screen's and the app's bindings as commands, then the filters where they apply."""
    for owner, bindings in ((screen, screen.BINDINGS), (app, app.BINDINGS)):
        for binding in bindings:
            if not isinstance(binding, Binding) or binding.action in LEFT_OUT:
                continue
            key = binding.key_display or binding.key
            yield SystemCommand(
                binding.tooltip or binding.description,
                f"{binding.description} (key: {key})",
                partial(owner.run_action, binding.action),
            )
    if isinstance(screen, JobScreen):
        for status in FILTERS:
            title = f"Show only {status} images" if status else "Show every image"
            show = partial(screen.show_only, status)
            yield SystemCommand(title, "filter the table by status", show)
