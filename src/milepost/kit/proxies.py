"""Who the client is, behind a reverse proxy: the one home of "the client address".

The peer of a connection is the client unless it is a trusted proxy (``MILEPOST_TRUSTED_PROXIES``). From a
trusted proxy, ``X-Forwarded-For`` is read from the right (each proxy appends the address it saw), skipping
trusted hops: the first untrusted hop is the client. Anything to its left was written by that client and
proves nothing. ``X-Forwarded-Proto`` (http or https) is believed from a trusted proxy only. From any other
peer both headers are ignored, so that nobody can pick the address their sign-in failures are counted
against, or appear in the logs as someone else.

``ForwardedHeadersMiddleware`` rewrites the request's client and scheme once, outermost, so that rate
limits (``client_address``), request logs, cookies' Secure flag and redirects all see the same answer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: Request) -> str | None:
    """The client's address as far as it can be believed (see the module's docstring)."""
    return request.client.host if request.client else None


def _is_trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def forwarded_client(peer: str, forwarded_for: str, networks: Sequence[Network]) -> str:
    """The client behind ``peer`` given its X-Forwarded-For value: the rightmost hop that is not a trusted
    proxy. A hop that is not an IP address ends the walk (what lies beyond it cannot be told), leaving
    the nearest hop that was one."""
    client = peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if not _is_trusted(client, networks):
            break
        try:
            client = str(ipaddress.ip_address(hop))
        except ValueError:
            break
    return client


class ForwardedHeadersMiddleware:
    """Believes X-Forwarded-For and X-Forwarded-Proto from trusted proxies only (none: a no-op)."""

    def __init__(self, app: ASGIApp, *, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted:
            peer = scope.get("client")
            if peer is not None and _is_trusted(peer[0], self.trusted):
                headers = dict(scope.get("headers", []))
                forwarded_for = headers.get(b"x-forwarded-for")
                if forwarded_for is not None:
                    client = forwarded_client(
                        peer[0], forwarded_for.decode("latin-1"), self.trusted
                    )
                    scope["client"] = (client, 0)
                proto = headers.get(b"x-forwarded-proto")
                if proto is not None:
                    scheme = proto.decode("latin-1").split(",")[-1].strip().lower()
                    if scheme in ("http", "https"):
                        if scope["type"] == "websocket":
                            scheme = "wss" if scheme == "https" else "ws"
                        scope["scheme"] = scheme
        await self.app(scope, receive, send)
