"""The path every fake request takes: draw a fault, wait, answer in the API's own shapes."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from typing import Protocol

from aiohttp import web

from .state import Fault, ServerState, Ticket

__all__ = ["Api", "corrupt_b64", "format_seconds", "malformed_json", "request_id", "respond"]

NOT_AN_IMAGE = b"<html><body>502 Bad Gateway: upstream sent garbage</body></html>\n" * 8


class Api(Protocol):
    """How one endpoint says each outcome, in the real API's JSON and headers."""

    def rate_limited(self, retry_after_s: float) -> web.Response: ...

    def server_error(self) -> web.Response: ...

    def timed_out(self) -> web.Response: ...

    def rejected(self) -> web.Response: ...

    def out_of_credit(self) -> web.Response: ...

    async def success(self, corruption: Fault | None) -> web.Response:
        """The image answer; `corruption` (truncated base64, not an image) spoils its payload."""
        ...


def request_id() -> str:
    return "req_" + secrets.token_hex(16)


def format_seconds(value: float) -> str:
    """Seconds as a header value: `2` for whole seconds, `0.25` otherwise."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def corrupt_b64(text: str, corruption: Fault | None) -> str:
    """`text` as it should be, cut in half, or replaced by base64 of bytes that are no image."""
    if corruption is Fault.TRUNCATED_B64:
        return text[: max(1, len(text) // 2 - 1)]
    if corruption is Fault.NOT_IMAGE:
        return base64.b64encode(NOT_AN_IMAGE).decode("ascii")
    return text


def malformed_json() -> web.Response:
    """200 with JSON that stops half-way, as a proxy cutting a response would leave it."""
    return web.Response(
        status=200,
        text='{"created": 1700000000, "data": [{"b64_json": "iVBORw0KGgoAAAANSUhEUgAA',
        content_type="application/json",
    )


async def respond(state: ServerState, ticket: Ticket, api: Api) -> web.Response:
    """Answer an admitted request: a drawn fault, a 429 from the hidden limits, or (after the
    latency) an image. The log entry notes when the answer went out (or the client left)."""
    try:
        fault = state.fault_for(ticket)
        if fault is Fault.NO_CREDIT:
            state.record(ticket, fault)
            return api.out_of_credit()
        if fault is Fault.RATE_LIMITED:
            state.record(ticket, fault)
            return api.rate_limited(state.options.retry_after_s)
        wait = state.gate.refuse(state.options)
        if wait is not None:
            state.record(ticket, Fault.RATE_LIMITED)
            return api.rate_limited(wait)
        stats = state.stats
        stats.peak_concurrent = max(stats.peak_concurrent, state.gate.in_flight)
        try:
            return await _work(state, ticket, api, fault)
        finally:
            state.gate.leave()
    finally:
        ticket.entry["answered"] = time.time()


async def _work(state: ServerState, ticket: Ticket, api: Api, fault: Fault | None) -> web.Response:
    latency = state.latency_for(ticket)
    if latency:
        await asyncio.sleep(latency)
    if fault is Fault.HANG:
        state.record(ticket, fault)
        await state.hang()
        return api.timed_out()
    if fault is Fault.MALFORMED_JSON:
        state.record(ticket, fault)
        return malformed_json()
    if fault is Fault.SERVER_ERROR:
        state.record(ticket, fault)
        return api.server_error()
    if fault is Fault.REJECTED:
        state.record(ticket, fault)
        return api.rejected()
    answer = await api.success(fault)
    state.record(ticket, fault)
    return answer
