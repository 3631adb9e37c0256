"""The trials' registry: `@trial` records a function, `all_trials` finds every module's."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Result", "Rounds", "Trial", "all_trials", "trial"]


@dataclass(frozen=True)
class Rounds:
    """What a trial is asked to do: `quick` rounds in the suite, `full` ones otherwise."""

    full: bool
    folder: Path
    """A fresh temporary folder of its own; removed after the trial."""

    def count(self, quick: int, full: int) -> int:
        return full if self.full else quick


@dataclass(frozen=True)
class Result:
    """What a trial measured: the figure in words and whether it meets the pass figure."""

    measured: str
    passed: bool
    details: tuple[str, ...] = ()
    """What went wrong, one line each (empty when it passed)."""


@dataclass(frozen=True)
class Trial:
    name: str
    figure: str
    """The pass figure, as the issue states it."""
    run: Callable[[Rounds], Result]
    module: str


_TRIALS: dict[str, Trial] = {}


def trial(
    name: str, figure: str
) -> Callable[[Callable[[Rounds], Result]], Callable[[Rounds], Result]]:
    """Register `run` as the trial `name` with its pass `figure`."""

    def register(run: Callable[[Rounds], Result]) -> Callable[[Rounds], Result]:
        if name in _TRIALS:
            raise ValueError(f"two trials are named {name!r}")
        _TRIALS[name] = Trial(name, figure, run, run.__module__)
        return run

    return register


def all_trials() -> list[Trial]:
    """Every trial of every module of this package, in module order, then as defined."""
    package = Path(__file__).parent
    for module in sorted(info.name for info in pkgutil.iter_modules([str(package)])):
        if module not in {"registry", "__main__", "report"} and not module.startswith("_"):
            importlib.import_module(f"{__package__}.{module}")
    return list(_TRIALS.values())
