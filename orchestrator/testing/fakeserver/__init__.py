"""A fake image API server speaking the OpenAI Images and Google Gemini / Imagen endpoints.

Real HTTP on 127.0.0.1 with the real APIs' JSON shapes, headers and error bodies, Pillow-made
images, and injected faults (429 with Retry-After, 5xx, hangs, malformed JSON, truncated base64,
bytes that are no image, content-policy refusals, wrong keys). It counts requests per prompt so
tests can prove nothing was generated twice. The offline demo of the real code path and the
server the provider tests use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...lazy import on_first_use

if TYPE_CHECKING:
    from .app import FakeServer, build_app, serve_forever, start_fake_server
    from .options import FakeServerOptions
    from .state import FakeStats, Fault

# Imported on first use, so `imagebatch` commands that never serve do not load the server.
_HOMES = {
    "FakeServer": ".app",
    "build_app": ".app",
    "serve_forever": ".app",
    "start_fake_server": ".app",
    "FakeServerOptions": ".options",
    "FakeStats": ".state",
    "Fault": ".state",
}


__getattr__ = on_first_use(__name__, _HOMES)


__all__ = [
    "FakeServer",
    "FakeServerOptions",
    "FakeStats",
    "Fault",
    "build_app",
    "serve_forever",
    "start_fake_server",
]
