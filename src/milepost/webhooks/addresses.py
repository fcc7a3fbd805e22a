"""Keeping webhooks on the public internet.

A webhook URL is chosen by any user, and the server then POSTs to it: without a check, an endpoint could be
pointed at services only the server can reach (a database's HTTP port, a cloud metadata address, an admin
page on loopback). Unless ``MILEPOST_WEBHOOK_ALLOW_PRIVATE_NETWORKS`` is set (a trusted deployment, the
tests), URLs naming a non-public address are refused at registration, and every delivery first resolves the
host and refuses to send when any of its addresses is not public.

What this does not stop: a DNS answer that changes between the check and the HTTP client's own lookup
(rebinding). Pinning the checked address for the connection would close that gap.
"""

from __future__ import annotations

import ipaddress
import socket

_LOCAL_NAMES = ("localhost", "localhost.localdomain")


def _is_public(text: str) -> bool:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def named_private_host(host: str) -> str | None:
    """Why a URL's host is not public by its name alone (an address literal or localhost), else None.
    No DNS here: what a name resolves to is checked again at each delivery."""
    name = host.strip("[]").rstrip(".").lower()
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return f"{host} is this machine"
    try:
        public = _is_public(name)
    except ValueError:
        return None  # a name, not an address
    return None if public else f"{host} is not a public address"


def resolves_to_private(host: str) -> str | None:
    """Why ``host`` must not be called (it is, or resolves to, a non-public address), else None. A name
    that does not resolve is left to the HTTP client, which reports the failure as the attempt's error."""
    named = named_private_host(host)
    if named is not None:
        return named
    try:
        infos = socket.getaddrinfo(host.strip("[]"), None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return None
    for info in infos:
        address = str(info[4][0])
        if not _is_public(address):
            return f"{host} resolves to {address}, which is not a public address"
    return None
