"""What a fake server remembers: its options, request counts, and the fault each request gets."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiohttp import web

from .options import FakeServerOptions
from .timing import Gate, prompt_latency

__all__ = ["STATE", "FakeStats", "Fault", "ServerState", "Ticket"]


class Fault(StrEnum):
    """What a request gets instead of an image."""

    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    HANG = "hang"
    MALFORMED_JSON = "malformed_json"
    TRUNCATED_B64 = "truncated_b64"
    NOT_IMAGE = "not_image"
    REJECTED = "rejected"
    AUTH = "auth"
    NO_CREDIT = "no_credit"


@dataclass
class FakeStats:
    """Counts a test can assert on. `by_prompt` counts every request, `successes` only images."""

    requests: int = 0
    by_prompt: Counter[str] = field(default_factory=Counter)
    by_endpoint: Counter[str] = field(default_factory=Counter)
    successes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    references: dict[str, list[int]] = field(default_factory=dict)
    """Reference images received per request, per prompt."""
    reference_sha256: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    """The SHA-256 of each reference image received, per request, per prompt."""
    abandoned: int = 0
    """Requests the client gave up on (disconnected) before the server answered."""
    peak_concurrent: int = 0
    """The most requests being answered at once (those `max_concurrent` let through)."""
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=1000))
    """The last requests (`log_size` of them): endpoint, prompt, model, references, outcome,
    and the wall-clock times (`time.time()`) it `arrived` and was `answered`."""

    def duplicates(self) -> dict[str, int]:
        """Prompts that got more than one image: the thing that must never happen."""
        return {prompt: count for prompt, count in self.successes.items() if count > 1}


@dataclass(frozen=True)
class Ticket:
    """One admitted request."""

    prompt: str
    nth: int
    """1 for the first request with this prompt, 2 for the second, ..."""
    entry: dict[str, Any]


def _uniform(seed: int, prompt: str, nth: int) -> float:
    digest = hashlib.sha256(f"{seed}\x00{prompt}\x00{nth}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class ServerState:
    """Shared by the handlers of one server. Only touched from the server's event loop."""

    def __init__(self, options: FakeServerOptions) -> None:
        self.options = options
        self.stats = FakeStats(log=deque(maxlen=options.log_size))
        self.gate = Gate()
        self.closing = asyncio.Event()
        self.files: dict[str, tuple[bytes, str]] = {}

    def admit(self, endpoint: str, prompt: str, model: str, refs: list[bytes]) -> Ticket:
        """Count a request; the ticket says which request for this prompt it is (1: the first)."""
        stats = self.stats
        references = len(refs)
        hashes = tuple(hashlib.sha256(ref).hexdigest() for ref in refs)
        stats.reference_sha256.setdefault(prompt, []).append(hashes)
        stats.requests += 1
        stats.by_endpoint[endpoint] += 1
        stats.by_prompt[prompt] += 1
        stats.references.setdefault(prompt, []).append(references)
        entry: dict[str, Any] = {
            "endpoint": endpoint,
            "prompt": prompt,
            "model": model,
            "references": references,
            "outcome": "pending",
            "arrived": time.time(),
        }
        stats.log.append(entry)
        return Ticket(prompt=prompt, nth=stats.by_prompt[prompt], entry=entry)

    def latency_for(self, ticket: Ticket) -> float:
        """Seconds this request takes before its answer (noted in its log entry)."""
        options = self.options
        latency = options.latency_s
        if options.latency_sigma is not None:
            latency = prompt_latency(options.seed, ticket.prompt, latency, options.latency_sigma)
        ticket.entry["latency_s"] = latency
        return latency

    def key_problem(self, given: str | None) -> str | None:
        """`missing` or `wrong` when `require_key` is set and `given` does not match it."""
        expected = self.options.require_key
        if expected is None:
            return None
        if not given:
            return "missing"
        return None if given == expected else "wrong"

    def fault_for(self, ticket: Ticket) -> Fault | None:
        """The fault this request gets, if any: no credit left, the burst, then a draw, then
        rejection."""
        options = self.options
        if options.credit is not None and sum(self.stats.successes.values()) >= options.credit:
            return Fault.NO_CREDIT
        if self.stats.requests <= options.burst_429:
            return Fault.RATE_LIMITED
        prompt = ticket.prompt
        draw = _uniform(options.seed, prompt, ticket.nth)
        for fault, rate in (
            (Fault.RATE_LIMITED, options.rate_429),
            (Fault.SERVER_ERROR, options.rate_500),
            (Fault.HANG, options.rate_hang),
            (Fault.MALFORMED_JSON, options.rate_malformed_json),
            (Fault.TRUNCATED_B64, options.rate_truncated_b64),
            (Fault.NOT_IMAGE, options.rate_not_image),
        ):
            if draw < rate:
                return fault
            draw -= rate
        pattern = options.reject_pattern
        if pattern is not None and re.search(pattern, prompt, re.IGNORECASE):
            return Fault.REJECTED
        return None

    def record(self, ticket: Ticket, outcome: Fault | None) -> None:
        """Note how a request ended (None: an image was returned)."""
        if outcome is None:
            self.stats.successes[ticket.prompt] += 1
        else:
            self.stats.faults[outcome] += 1
        ticket.entry["outcome"] = str(outcome or "image")

    async def hang(self) -> bool:
        """Wait like a stuck server. True if the client left first (then the handler is cancelled
        and this never returns); False if the server is closing or `hang_s` ran out."""
        try:
            async with asyncio.timeout(self.options.hang_s):
                await self.closing.wait()
        except TimeoutError:
            return False
        except asyncio.CancelledError:
            if not self.closing.is_set():
                self.stats.abandoned += 1
            raise
        return False


STATE = web.AppKey("imagebatch_fake_state", ServerState)
"""Where a fake server's application keeps its `ServerState`."""
