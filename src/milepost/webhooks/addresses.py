"""Keeping webhooks on the public internet.

A webhook URL is chosen by any user, and the server then POSTs to it: without a check, an endpoint could be
pointed at services only the server can reach (a database's HTTP port, a cloud metadata address, an admin
page on loopback). Unless ``MILEPOST_WEBHOOK_ALLOW_PRIVATE_NETWORKS`` is set (a trusted deployment, the
tests), URLs naming a non-public address are refused at registration, and every delivery first resolves the
host and refuses to send when any of its addresses is not public. Both use ``address_refusal``.

A host is read the way the socket layer will read it, not the way it looks: the C resolver takes
``2130706433``, ``0x7f000001``, ``0177.0.0.1`` and ``127.1`` all for 127.0.0.1 (``socket.inet_aton``
accepts the same forms), and an IPv6 address can carry an IPv4 one (``::ffff:127.0.0.1``, 6to4, NAT64).
Every one of those is judged by the address it really names. A host that is neither an address nor a valid
DNS name is refused outright.

What this does not stop: a DNS answer that changes between the check and the HTTP client's own lookup
(rebinding). Pinning the checked address for the connection would close that gap.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

_LOCAL_NAMES = ("localhost", "localhost.localdomain")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: the last 32 bits are IPv4

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class InvalidHost(ValueError):
    """A URL's host that is neither an IP address (in any form the resolver reads) nor a DNS name."""


@dataclass(frozen=True)
class Host:
    """A URL's host as the socket layer will read it."""

    text: str  # as written in the URL
    name: str  # lower case, without brackets, zone id or trailing dot; IDNA (ASCII) for a name
    address: IPAddress | None  # the address it names, if it is one in any notation; None for a name


def parse_host(text: str) -> Host:
    """Read ``text`` (a URL's host) as the resolver will. Raises ``InvalidHost`` for anything else."""
    name = text.strip("[]").lower()
    name = name[:-1] if name.endswith(".") else name
    if not name:
        raise InvalidHost(f"{text!r} is not a valid host name")
    if ":" in name:  # only an IPv6 literal has a colon in its host
        try:
            return Host(text, name, ipaddress.IPv6Address(name.split("%", 1)[0]))  # drop a zone id
        except ValueError:
            raise InvalidHost(f"{text!r} is not a valid IPv6 address") from None
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidHost(f"{text!r} is not a valid host name") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidHost(f"{text!r} is not a valid host name")
    try:
        # The resolver's own reading of numeric hosts: dotted quads, but also one to three parts, octal
        # (leading 0) and hex (0x) parts. Only called on a valid name: glibc's inet_aton ignores
        # anything after a space.
        return Host(text, ascii_name, ipaddress.IPv4Address(socket.inet_aton(ascii_name)))
    except OSError:
        pass
    if re.fullmatch(r"(0x[0-9a-f]*|[0-9]+)", labels[-1]):
        # A top-level label that is all digits (or hex) is no DNS name (RFC 1123, 2.1), and not an
        # address either (``1.2.3.4.5``, ``08.1.2.3``, ``256.1.1.1``).
        raise InvalidHost(f"{text!r} is neither an IP address nor a host name")
    return Host(text, ascii_name, None)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for or routes to: IPv4-mapped (``::ffff:a.b.c.d``),
    IPv4-compatible (``::a.b.c.d``), 6to4 (``2002:AABB:CCDD::``) and NAT64 (``64:ff9b::a.b.c.d``)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (int(address) >> 32 == 0 and int(address) > 1):  # not :: or ::1
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why a connection to ``address`` must not be made (it is not public), else None.

    The one rule for registration and delivery: the address must be global unicast, neither private,
    loopback, link-local, reserved, multicast nor unspecified; an IPv6 address that carries an IPv4 one
    is also judged by that IPv4 address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            inner_refusal = address_refusal(inner)
            if inner_refusal is not None:
                return f"{address} stands for {inner}, which is not a public address"
            if address.ipv4_mapped is not None or address in _NAT64:
                return None  # the IPv4 address is what is reached
    public = (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
        and not address.is_loopback
        and not address.is_link_local
    )
    return None if public else f"{address} is not a public address"


def host_refusal(host: Host) -> str | None:
    """Why ``host`` is not public by its name alone (an address in any notation, or localhost), else
    None. No DNS here: what a name resolves to is checked again at each delivery."""
    if host.address is None:
        if host.name in _LOCAL_NAMES or host.name.endswith(".localhost"):
            return f"{host.text} is this machine"
        return None
    refusal = address_refusal(host.address)
    if refusal is None:
        return None
    if host.name != str(host.address):
        return f"{host.text} means {host.address}, which is not a public address"
    return refusal


def named_private_host(text: str) -> str | None:
    """Why a URL's host must not be called by its name alone (not a valid host, or it names a
    non-public address), else None."""
    try:
        return host_refusal(parse_host(text))
    except InvalidHost as error:
        return str(error)


def resolves_to_private(text: str) -> str | None:
    """Why ``text`` must not be called (it is, or resolves to, a non-public address), else None. A name
    that does not resolve is left to the HTTP client, which reports the failure as the attempt's error."""
    try:
        host = parse_host(text)
    except InvalidHost as error:
        return str(error)
    refusal = host_refusal(host)
    if refusal is not None or host.address is not None:
        return refusal
    try:
        infos = socket.getaddrinfo(host.name, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return None
    for info in infos:
        address = str(info[4][0])
        refusal = address_refusal(ipaddress.ip_address(address.split("%", 1)[0]))
        if refusal is not None:
            return f"{text} resolves to {address}, which is not a public address"
    return None
