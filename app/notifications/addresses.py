"""Outbound URLs the service may call: http(s) to public addresses only (SSRF).

Checked when an endpoint is registered and again before each delivery, since a name
may resolve elsewhere later. `STRATUM_OUTBOUND_ALLOW_PRIVATE_NETWORKS=true` lifts the
address check for development and tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL = 2048


class RefusedUrl(ValueError):
    """The URL is not one the service will call; the message says why."""


def _check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str) -> None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global or address.is_multicast:
        raise RefusedUrl(f"{host} is or resolves to a non-public address ({address})")


def parse(url: str) -> tuple[str, int, str]:
    """Scheme, port and host of an acceptable URL's shape (no network access)."""
    if len(url) > MAX_URL:
        raise RefusedUrl(f"the URL is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedUrl("not a valid URL") from exc
    if parts.scheme not in ("http", "https"):
        raise RefusedUrl("the URL must be http or https")
    if not parts.hostname:
        raise RefusedUrl("the URL has no host")
    if parts.username or parts.password:
        raise RefusedUrl("credentials in the URL are not accepted; use the signature")
    return parts.scheme, port or (443 if parts.scheme == "https" else 80), parts.hostname


async def check(url: str, *, allow_private: bool) -> None:
    """Raise RefusedUrl unless the URL is http(s) to public addresses only."""
    _, port, host = parse(url)
    if allow_private:
        return
    try:
        _check_address(ipaddress.ip_address(host), host)
        return
    except ValueError as exc:
        if isinstance(exc, RefusedUrl):
            raise
    if host.lower().rstrip(".") in ("localhost", "metadata.google.internal") or host.endswith(
        ".localhost"
    ):
        raise RefusedUrl(f"{host} is a local name")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RefusedUrl(f"{host} does not resolve") from exc
    for info in infos:
        _check_address(ipaddress.ip_address(info[4][0]), host)
