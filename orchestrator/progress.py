"""A terminal progress sink: one redrawn bar on a terminal, one line per outcome elsewhere."""

from __future__ import annotations

import asyncio
import time
from typing import TextIO

from .events import Subscription
from .records import Event, EventType

__all__ = ["ProgressBar", "follow"]

_BAR_WIDTH = 28


class ProgressBar:
    """Counts a job's items from its events and draws them."""

    def __init__(self, job_id: str, total: int, done: int, stream: TextIO, *, live: bool) -> None:
        self.job_id = job_id
        self.total = total
        self.done = done
        self.failed = 0
        self.running = 0
        self.retries = 0
        self.stream = stream
        self.live = live
        self.started = time.monotonic()

    def handle(self, event: Event) -> None:
        if event.job_id != self.job_id:
            return
        self._count(event)
        if self.live:
            self.draw()
        else:
            self._log(event)

    def _count(self, event: Event) -> None:
        kind = event.type
        if kind == EventType.ITEM_STARTED:
            self.running += 1
        elif kind in (EventType.ITEM_RETRYING, EventType.ITEM_RESET):
            self.running = max(0, self.running - 1)
            self.retries += kind == EventType.ITEM_RETRYING
        elif kind == EventType.ITEM_COMPLETED:
            self.running = max(0, self.running - 1)
            self.done += 1
        elif kind in (EventType.ITEM_FAILED, EventType.ITEM_CANCELLED):
            self.running = max(0, self.running - 1)
            self.failed += 1

    def line(self) -> str:
        finished = self.done + self.failed
        filled = round(_BAR_WIDTH * finished / self.total) if self.total else _BAR_WIDTH
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        elapsed = time.monotonic() - self.started
        parts = [f"[{bar}] {finished}/{self.total}", f"{self.running} running"]
        if self.retries:
            parts.append(f"{self.retries} retries")
        if self.failed:
            parts.append(f"{self.failed} failed")
        parts.append(f"{elapsed:5.1f}s")
        return " · ".join(parts)

    def draw(self) -> None:
        self.stream.write("\r\x1b[2K" + self.line())
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.draw()
            self.stream.write("\n")
            self.stream.flush()

    def _log(self, event: Event) -> None:
        item = event.item_id
        data = event.data
        if event.type == EventType.ITEM_COMPLETED:
            text = f"{item}: completed ({self.done + self.failed}/{self.total})"
        elif event.type == EventType.ITEM_FAILED:
            text = f"{item}: failed: {data.get('kind')}: {data.get('message')}"
        elif event.type == EventType.ITEM_RETRYING:
            delay = data.get("delay_s")
            text = f"{item}: retrying in {delay}s after {data.get('kind')}: {data.get('message')}"
        elif event.type == EventType.ITEM_CANCELLED:
            text = f"{item}: cancelled"
        else:
            return
        self.stream.write(text + "\n")
        self.stream.flush()


async def follow(subscription: Subscription, bar: ProgressBar, *, tick_s: float = 0.5) -> None:
    """Feed the bar from the bus until cancelled; a live bar is redrawn every `tick_s` too,
    so its clock moves while every image waits (a long Retry-After, a slow provider)."""
    while True:
        try:
            event = await asyncio.wait_for(subscription.get(), tick_s if bar.live else None)
        except TimeoutError:
            bar.draw()
            continue
        bar.handle(event)
