"""Pure parsing of what names a host: a ``Host`` value, a proxy's node, a peer to trust.

No I/O and no ASGI: the middleware that use these (trusted hosts, proxy headers) stay thin.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

# A registered name as browsers and DNS have them: labels of letters, digits, "-" and "_"
# (seen in the wild), separated by dots, with at most one trailing dot.
_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")
MAX_NAME = 253

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Host(NamedTuple):
    """A host as a client named it, normalised: lower case, no trailing dot, IPv6 unbracketed."""

    name: str
    port: int | None


class _BadPort(ValueError):
    """What follows the host is not a port."""


def _port(text: str) -> int | None:
    """The port ``text`` names (None when empty: no port); raises _BadPort otherwise."""
    if not text:
        return None
    if not _PORT.fullmatch(text) or int(text) > 65535:
        raise _BadPort(text)
    return int(text)


def normal_name(text: str) -> str | None:
    """``text`` as a registered name or an IPv4 address, normalised; None if it is neither."""
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > MAX_NAME:
        return None
    if not all(_NAME.fullmatch(label) for label in name.split(".")):
        return None
    return name.lower()


def ip_address(text: str) -> IPAddress | None:
    """``text`` as an IP address (an IPv4-mapped IPv6 one as IPv4), or None."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _bracketed(value: str) -> tuple[ipaddress.IPv6Address | None, int | None]:
    """Split ``[v6]`` or ``[v6]:port``; the address is None when it is not an IPv6 literal."""
    literal, bracket, rest = value[1:].partition("]")
    if not bracket or (rest and not rest.startswith(":")):
        raise _BadPort(rest)
    # A zone ("%eth0") names an interface of the client's machine: never a host of ours.
    try:
        address = ipaddress.IPv6Address(literal) if "%" not in literal else None
    except ValueError:
        address = None
    return address, _port(rest[1:])


def parse_host(value: str) -> Host | None:
    """Parse a ``Host`` value (``name``, ``name:port``, ``[v6]``, ``[v6]:port``); None if bad."""
    try:
        if value.startswith("["):
            address, port = _bracketed(value)
            return None if address is None else Host(str(address), port)
        text, _, port_text = value.partition(":")
        name = normal_name(text)
        return None if name is None else Host(name, _port(port_text))
    except _BadPort:
        return None


def parse_node(value: str) -> tuple[str, int] | None:
    """A proxy header's address: ``ip``, ``ip:port``, ``[v6]`` or ``[v6]:port``; None if bad.

    The port is 0 when none is given, as servers report a peer whose port is unknown.
    """
    try:
        address: IPAddress | None
        if value.startswith("["):
            address, port = _bracketed(value)
            if address is not None and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
        elif value.count(":") == 1:  # IPv4 with a port; a bare IPv6 has two colons or more
            literal, _, port_text = value.partition(":")
            address, port = ip_address(literal), _port(port_text)
            if not isinstance(address, ipaddress.IPv4Address):
                return None
        else:
            address, port = ip_address(value), None
    except _BadPort:
        return None
    return None if address is None else (str(address), port or 0)


class TrustedPeers:
    """The peers whose proxy headers are believed: addresses, networks, or ``"*"`` for all."""

    def __init__(self, entries: list[str]) -> None:
        self.everyone = "*" in entries
        self._addresses: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            if entry == "*":
                continue
            if "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(f"trusted_hosts: {entry!r} is not a network") from None
                continue
            address = ip_address(entry)
            if address is None:
                raise ValueError(
                    f"trusted_hosts entries are IP addresses, networks (10.0.0.0/8) or '*'; "
                    f"got {entry!r}"
                )
            self._addresses.add(str(address))
        self._networks = tuple(networks)

    def __contains__(self, host: object) -> bool:
        """Tell whether the peer ``host`` (an address as servers report it) is trusted."""
        if self.everyone:
            return True
        if not isinstance(host, str) or not host:
            return False
        if host in self._addresses:  # the usual case, without parsing
            return True
        address = ip_address(host)
        if address is None:
            return False
        return str(address) in self._addresses or any(
            address in network for network in self._networks
        )
