"""``TrustedHostMiddleware``: serve only the host names you list.

A request's ``Host`` header is the client's to write: without this check, anything built
from it (``request.url``, ``request.url_for``, the links in a password-reset email) can be
made to point at another site. A host not allowed gets a 400 (a WebSocket is denied), and
so does a ``Host`` that is malformed, empty, or sent twice.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Sequence

from microasgi._types import ASGIApp, Receive, Scope, Send
from microasgi.middleware._answer import answer
from microasgi.middleware._hosts import normal_name, parse_host
from microasgi.requests import HTTPConnection
from microasgi.responses import PlainTextResponse, RedirectResponse, Response

_WILDCARD = "Domain wildcard patterns must be like '*.example.com'"


def _pattern(entry: str) -> str:
    """Check one ``allowed_hosts`` entry and return it normalised (lower case, no port)."""
    if not isinstance(entry, str):
        raise TypeError(f"allowed_hosts entries are str, not {entry!r}")
    if entry == "*":
        return entry
    if "*" in entry:
        if not entry.startswith("*.") or "*" in entry[1:] or normal_name(entry[2:]) is None:
            raise ValueError(f"{_WILDCARD}: {entry!r}")
        return "*." + str(normal_name(entry[2:]))
    literal = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
    if ":" in literal:  # an IPv6 address, written as parse_host writes the Host's
        with contextlib.suppress(ValueError):
            return str(ipaddress.IPv6Address(literal))
    name = normal_name(entry)
    if name is None:
        raise ValueError(
            f"allowed_hosts entries are host names without a port ('example.com', "
            f"'*.example.com', '127.0.0.1', '::1') or '*'; got {entry!r}"
        )
    return name


class TrustedHostMiddleware:
    """Answer 400 to a request whose ``Host`` is not one of ``allowed_hosts``."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Sequence[str] | None = None,
        www_redirect: bool = True,
    ) -> None:
        """Wrap ``app``; ``"*.example.com"`` allows the subdomains of example.com, ``"*"`` all.

        With ``www_redirect``, a request for ``example.com`` when only ``www.example.com``
        is listed is redirected there.
        """
        if allowed_hosts is None:
            allowed_hosts = ["*"]
        if isinstance(allowed_hosts, str):
            raise TypeError(f"allowed_hosts takes a list of host names, not {allowed_hosts!r}")
        patterns = [_pattern(entry) for entry in allowed_hosts]
        self.app = app
        self.allowed_hosts = patterns
        self.allow_any = "*" in patterns
        self.www_redirect = www_redirect
        self._names = frozenset(p for p in patterns if not p.startswith("*."))
        self._suffixes = tuple(p[1:] for p in patterns if p.startswith("*."))
        self._refusal = PlainTextResponse("Invalid host header", 400)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass an allowed connection to the app; answer the others."""
        if self.allow_any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        values = [value for key, value in scope["headers"] if key == b"host"]
        host = parse_host(values[0].decode("latin-1")) if len(values) == 1 else None
        if host is not None and (host.name in self._names or host.name.endswith(self._suffixes)):
            await self.app(scope, receive, send)
            return
        response: Response = self._refusal
        if host is not None and self.www_redirect and "www." + host.name in self._names:
            url = HTTPConnection(scope).url.with_host("www." + host.name)
            response = RedirectResponse(str(url))
        await answer(scope, receive, send, response)
