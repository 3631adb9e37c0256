"""A package's names imported on first use (PEP 562's module `__getattr__`).

`orchestrator` uses it so that `import orchestrator.cli` (and `imagebatch --help`) does not load
the whole library; `orchestrator.journal`, so that a store worker that unpickles one class loads
that module alone; `orchestrator.testing.fakeserver`, so that commands that never serve do not
load the server.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["on_first_use"]


def on_first_use(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """The `__getattr__` of `package`: each name of `homes` from its module (relative to the
    package), imported when the name is first asked for."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(homes[name], package), name)

    return __getattr__
