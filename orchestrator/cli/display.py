"""The CLI's view of a running job: a live `rich` display on a terminal, plain lines elsewhere.

On a terminal the display redraws in place (rich's `Live`, sized to the terminal's width): a bar,
counts, what is running and what waits and why, images per minute, the time left and the cost so
far; a failure is printed above it as it happens. Off a terminal (a pipe, a log file, CI) it
writes one plain line per outcome. Both read their numbers from the core's `Tally`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..events import (
    Event,
    ItemCancelled,
    ItemCompleted,
    ItemFailed,
    ItemRetrying,
    JobStopRequested,
)
from ..states import ItemStatus
from ..tally import Tally
from ..wording import (
    STOP_REQUESTED,
    concurrency_text,
    format_cost,
    format_duration,
    from_cache_text,
    provider_down_text,
)

__all__ = ["JobDisplay", "format_cost", "format_duration"]


class JobDisplay:
    """Draws one job's tally: live on a terminal (`live=True`), as log lines otherwise."""

    def __init__(
        self,
        tally: Tally,
        stream: TextIO,
        *,
        live: bool,
        now: Callable[[], float] = time.time,
        width: int | None = None,
    ) -> None:
        self.tally = tally
        self.stream = stream
        self.live = live
        self._now = now
        self.console = Console(file=stream, width=width, force_terminal=live or None)
        self._live: Live | None = None

    def __enter__(self) -> JobDisplay:
        if self.live:
            self._live = Live(
                self.render(),
                console=self.console,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self.refresh()
            self._live.stop()
            self._live = None

    def handle(self, event: Event) -> None:
        """Count `event` and show it."""
        if event.job_id != self.tally.job_id:
            return
        self.tally.apply(event)
        if isinstance(event, JobStopRequested):  # `imagebatch stop`, from here or elsewhere
            self.note(STOP_REQUESTED)
            return
        line = self._outcome_line(event)
        if self.live:
            if isinstance(event, ItemFailed) and line:
                self.console.print(Text(line, style="red"), overflow="fold")
            self.refresh()
        elif line:
            self.stream.write(line + "\n")
            self.stream.flush()

    def note(self, text: str, style: str = "yellow") -> None:
        """A line of its own: above the live block, or among the log lines."""
        if self.live:
            self.console.print(Text(text, style=style), overflow="fold")
            self.refresh()
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(self.render(), refresh=True)

    def resync(self, tally: Tally) -> None:
        """Start again from a fresh tally (the job's final state, or after falling behind)."""
        tally.since = self.tally.since
        tally.completed_at = self.tally.completed_at
        self.tally = tally
        self.refresh()

    # -------------------------------------------------------------- drawing

    def render(self) -> RenderableType:
        """The live block: the bar and the share done with the time left, what each item is
        doing, the pace and the cost, and why nothing moves when something waits."""
        tally, now = self.tally, self._now()
        bar = Table.grid(expand=True, padding=(0, 1))
        bar.add_column(ratio=1, min_width=10)
        bar.add_column(no_wrap=True, justify="right")
        head = f"{tally.done}/{tally.total}"
        eta = tally.eta_s(now)
        if eta is not None and tally.done < tally.total and not tally.finished:
            head += f" · ETA {format_duration(eta)}"
        bar.add_row(
            ProgressBar(
                total=max(tally.total, 1),
                completed=tally.done,
                complete_style="cyan",
                finished_style="green",
            ),
            head,
        )
        lines = [self.counts_line(now), self.pace_line(now)]
        wait = self.wait_line(now)
        parts = [Text(line, overflow="ellipsis", no_wrap=True) for line in lines]
        if wait:
            parts.append(Text(wait, style="yellow", overflow="ellipsis", no_wrap=True))
        return Group(bar, *parts)

    def counts_line(self, now: float) -> str:
        """What the items are doing: done, at the provider, being saved, waiting, failed."""
        tally = self.tally
        done = f"{tally.count(ItemStatus.COMPLETED)} done{from_cache_text(tally)}"
        parts = [done, f"{len(tally.in_flight)} running"]
        if tally.max_concurrency is not None:
            parts.append(concurrency_text(tally.concurrency, tally.max_concurrency))
        if tally.saving:
            parts.append(f"{tally.saving} saving")
        waiting = 0 if tally.finished else tally.waiting(now)
        if waiting:
            parts.append(f"{waiting} waiting")
        failed = tally.count(ItemStatus.FAILED)
        if failed:
            parts.append(f"{failed} failed")
        cancelled = tally.count(ItemStatus.CANCELLED)
        if cancelled:
            parts.append(f"{cancelled} cancelled")
        if tally.retries:
            parts.append(f"{tally.retries} {'retry' if tally.retries == 1 else 'retries'}")
        return " · ".join(parts)

    def pace_line(self, now: float) -> str:
        """How fast, what it cost so far, how long this has run."""
        tally = self.tally
        rate = tally.images_per_minute(now)
        if rate is not None:
            parts = [f"{rate:.1f} images/min"]
        else:  # none completed while this run was followed
            parts = ["all done" if tally.done == tally.total else "first image pending"]
        parts.append(f"cost {format_cost(tally.cost_usd, tally.unpriced)}")
        parts.append(f"{format_duration(max(0.0, now - tally.since))} elapsed")
        return " · ".join(parts)

    def wait_line(self, now: float) -> str:
        """Why nothing moves, when something waits: the provider's rate limit or a backoff;
        once the run has ended, that it stopped unfinished."""
        if self.tally.finished:
            left = self.tally.total - self.tally.done
            return f"stopped with {left} left: resume to go on" if left else ""
        limit = self.tally.rate_limit_wait(now)
        if limit > 0:
            return f"waiting {math.ceil(limit)} s for the provider's rate limit"
        if self.tally.provider_down:
            return provider_down_text(self.tally)
        waiting = self.tally.waiting(now)
        if waiting and not self.tally.in_flight:
            soonest = min(when for when in self.tally.retry_at.values() if when > now)
            return f"waiting {math.ceil(soonest - now)} s to retry after errors"
        return ""

    def _outcome_line(self, event: Event) -> str:
        done, total = self.tally.done, self.tally.total
        match event:
            case ItemCompleted(item_id=item):
                how = "completed from the cache" if item in self.tally.cached else "completed"
                return f"{item}: {how} ({done}/{total})"
            case ItemFailed(item_id=item, kind=kind, message=message):
                return f"{item}: failed: {kind}: {message}"
            case ItemRetrying(item_id=item, kind=kind, message=message, delay_s=delay):
                return f"{item}: retrying in {delay}s after {kind}: {message}"
            case ItemCancelled(item_id=item):
                return f"{item}: cancelled"
        return ""
