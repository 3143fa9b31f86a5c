"""``ProxyHeadersMiddleware``: believe a reverse proxy about the client, and nobody else.

Behind a proxy the server's peer is the proxy: the client's address, the scheme it used
and the host it asked for arrive in headers the proxy adds (``X-Forwarded-For``,
``-Proto``, ``-Host``, or RFC 7239's ``Forwarded``). Anyone can send those headers, so they
are applied only when the peer (``scope["client"]``) is a trusted proxy. In a chain of
proxies the client is the right-most address that is not a trusted proxy: addresses to its
left were written by the client itself.

The ``X-Forwarded-*`` headers are used when present (every common proxy sets them), else
``Forwarded``; never a mix. A malformed header is ignored, never an error. The app gets a
copy of the scope with ``client``, ``scheme`` and the ``host`` header replaced.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from microasgi._types import ASGIApp, RawHeaders, Receive, Scope, Send
from microasgi.middleware._hosts import TrustedPeers, parse_host, parse_node

_SCHEMES = {
    "http": {"http": "http", "https": "https", "ws": "http", "wss": "https"},
    "websocket": {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"},
}
_X_NAMES = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host")
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PAIR = re.compile(rf'[ \t]*({_TOKEN})=({_TOKEN}|"(?:[^"\\]|\\.)*")[ \t]*')
_ESCAPE = re.compile(r"\\(.)")
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+(?::(?:[0-9]{1,5}|_[A-Za-z0-9._-]+))?")


class Hop(NamedTuple):
    """What a trusted proxy said about the client; ``named`` is False when it did not say who."""

    named: bool
    client: tuple[str, int] | None  # None: the proxy said the client is unknown
    proto: str | None
    host: str | None


def parse_forwarded(value: str) -> list[dict[str, str]] | None:
    """The elements of a ``Forwarded`` header, parameter names lower-cased; None if malformed."""
    elements: list[dict[str, str]] = [{}]
    position = 0
    while position < len(value):
        if value[position] in ",; \t":  # empty elements and pairs: the list rule allows them
            if value[position] == "," and elements[-1]:
                elements.append({})
            position += 1
            continue
        match = _PAIR.match(value, position)
        if match is None:
            return None
        name, text = match.group(1).lower(), match.group(2)
        if text.startswith('"'):
            text = _ESCAPE.sub(r"\1", text[1:-1])
        if name in elements[-1]:  # RFC 7239: each parameter at most once per element
            return None
        elements[-1][name] = text
        position = match.end()
        if position < len(value) and value[position] not in ",;":
            return None
    return [element for element in elements if element]


class ProxyHeadersMiddleware:
    """Take the client's address, scheme and host from a trusted proxy's headers."""

    def __init__(self, app: ASGIApp, trusted_hosts: Sequence[str] | str = ("127.0.0.1",)) -> None:
        """Wrap ``app``; ``trusted_hosts`` lists proxy addresses and networks, ``"*"`` all.

        A string is read as a comma-separated list, as uvicorn's ``--forwarded-allow-ips``.
        """
        entries = (
            [e.strip() for e in trusted_hosts.split(",")]
            if isinstance(trusted_hosts, str)
            else list(trusted_hosts)
        )
        if not all(isinstance(entry, str) for entry in entries):
            raise TypeError(f"trusted_hosts entries are str: {trusted_hosts!r}")
        self.app = app
        self.trusted_hosts = TrustedPeers(entries)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app on a scope that names the client, if a trusted proxy said who it is."""
        kind = scope["type"]
        client = scope.get("client")
        if kind in _SCHEMES and (client[0] if client else None) in self.trusted_hosts:
            hop = self._hop(scope["headers"])
            if hop is not None:
                scope = self._apply(scope, hop)
        await self.app(scope, receive, send)

    def _hop(self, headers: RawHeaders) -> Hop | None:
        """What the headers say about the client, or None when they say nothing usable."""
        found: dict[bytes, list[str]] = {}
        for key, value in headers:
            if key in _X_NAMES or key == b"forwarded":
                found.setdefault(key, []).extend(value.decode("latin-1").split(","))
        if any(name in found for name in _X_NAMES):
            return self._x_forwarded(found)
        if b"forwarded" in found:
            return self._forwarded(",".join(found[b"forwarded"]))
        return None

    def _client_index(self, hosts: list[str]) -> int:
        """The right-most host that is not a trusted proxy (the first when all are)."""
        for index in range(len(hosts) - 1, -1, -1):
            if hosts[index] not in self.trusted_hosts:
                return index
        return 0

    def _x_forwarded(self, found: dict[bytes, list[str]]) -> Hop:
        """Read the ``X-Forwarded-*`` headers; each malformed one is left out."""
        nodes = [parse_node(item.strip()) for item in found.get(b"x-forwarded-for", ())]
        index: int | None = None
        client: tuple[str, int] | None = None
        if nodes and all(node is not None for node in nodes):
            index = self._client_index([node[0] for node in nodes if node is not None])
            client = nodes[index]

        def chosen(name: bytes) -> str | None:
            values = [item.strip() for item in found.get(name, ())]
            if not values:
                return None
            # Listed hop by hop like the addresses: the client's hop; else the nearest proxy's.
            if index is not None and len(values) == len(nodes):
                return values[index]
            return values[-1]

        return Hop(
            index is not None, client, chosen(b"x-forwarded-proto"), chosen(b"x-forwarded-host")
        )

    def _forwarded(self, value: str) -> Hop | None:
        """Read ``Forwarded``: the element of the right-most hop that is not a trusted proxy."""
        elements = parse_forwarded(value)
        if not elements:
            return None
        nodes: list[tuple[str, int] | None] = []
        for element in elements:
            node = element.get("for")
            if node is None or node.lower() == "unknown" or _OBFUSCATED.fullmatch(node):
                nodes.append(None)  # a client the proxy did not (or would not) name
                continue
            address = parse_node(node)
            if address is None:
                return None
            nodes.append(address)
        index = self._client_index([node[0] if node else "" for node in nodes])
        element = elements[index]
        return Hop("for" in element, nodes[index], element.get("proto"), element.get("host"))

    def _apply(self, scope: Scope, hop: Hop) -> Scope:
        """A copy of ``scope`` with what the hop says, each part checked first."""
        changes: dict[str, Any] = {}
        if hop.named:
            changes["client"] = hop.client
        if hop.proto is not None:
            scheme = _SCHEMES[scope["type"]].get(hop.proto.lower())
            if scheme is not None:
                changes["scheme"] = scheme
        if hop.host is not None and parse_host(hop.host) is not None:
            headers = [(key, value) for key, value in scope["headers"] if key != b"host"]
            changes["headers"] = [(b"host", hop.host.encode("latin-1")), *headers]
        return {**scope, **changes} if changes else scope
