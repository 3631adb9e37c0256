"""Which URLs imagebatch may call on the user's behalf (webhooks, and reference URLs).

A host that resolves to a loopback, private, link-local, unspecified, multicast, reserved or
shared (carrier-grade NAT) address, or to an IPv6 one that carries such an IPv4 address
(mapped, 6to4, Teredo), is refused: only global addresses are called. So a spec cannot point
imagebatch at the machine it runs on or the network behind it (a cloud metadata service, a
router), unless `IMAGEBATCH_ALLOW_LOCAL_URLS=1` is set (a local receiver, tests). A provider's
own configured base URL is trusted and not checked here.

The host is resolved off the event loop (`loop.getaddrinfo`); checked when a job is checked, and
again before each delivery, since DNS can change in between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from ..errors import ConfigError

__all__ = ["ALLOW_LOCAL_ENV", "check_url", "local_allowed", "refused_address"]

ALLOW_LOCAL_ENV = "IMAGEBATCH_ALLOW_LOCAL_URLS"

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def local_allowed(env: Mapping[str, str]) -> bool:
    """The user allowed local and private addresses (`IMAGEBATCH_ALLOW_LOCAL_URLS=1`)."""
    return env.get(ALLOW_LOCAL_ENV, "").strip() == "1"


def refused_address(addresses: Iterable[str]) -> tuple[str, str] | None:
    """The first address that may not be called and what kind it is, or None if all may."""
    for text in addresses:
        address: _Address = ipaddress.ip_address(text.split("%", 1)[0])
        for candidate in (*_carried(address), address):
            kind = _kind(candidate)
            if kind is not None:
                return text, kind
    return None


def _carried(address: _Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 one carries (mapped, 6to4, Teredo): where it really leads."""
    if not isinstance(address, ipaddress.IPv6Address):
        return ()
    teredo = address.teredo or ()
    found = (address.ipv4_mapped, address.sixtofour, *teredo)
    return tuple(inner for inner in found if inner is not None)


def _kind(address: _Address) -> str | None:
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("shared", not address.is_global),  # what is left: carrier-grade NAT, 100.64.0.0/10
    )
    return next((kind for kind, hit in checks if hit), None)


async def check_url(url: str, env: Mapping[str, str], where: str) -> None:
    """Raise `ConfigError` if `url`'s host resolves to an address that may not be called (or
    does not resolve). Nothing is resolved when local addresses are allowed."""
    if local_allowed(env):
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise ConfigError(f"{where}: cannot resolve host {host!r} ({error})") from None
    refused = refused_address(str(info[4][0]) for info in found)
    if refused is not None:
        address, kind = refused
        raise ConfigError(
            f"{where}: host {host!r} resolves to {address}, a {kind} address; only public "
            f"addresses are called unless {ALLOW_LOCAL_ENV}=1 is set (for a local receiver)",
            option=ALLOW_LOCAL_ENV,
        )
