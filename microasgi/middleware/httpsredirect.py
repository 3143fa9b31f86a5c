"""``HTTPSRedirectMiddleware``: send every ``http://`` and ``ws://`` connection to its secure twin.

As Starlette's: a 307 (the method and body are kept, where a 301 or 302 lets clients turn a
POST into a GET) to the same URL with ``https`` (``wss`` for a WebSocket), the default ports
80 and 443 dropped and any other port kept. A WebSocket is denied with that redirect where
the server can send a response (``websocket.http.response``), else closed (a 403).
"""

from __future__ import annotations

from microasgi._types import ASGIApp, Receive, Scope, Send
from microasgi.middleware._answer import answer
from microasgi.requests import HTTPConnection
from microasgi.responses import RedirectResponse

_SECURE = {"http": "https", "ws": "wss"}


class HTTPSRedirectMiddleware:
    """Redirect insecure connections (``http``, ``ws``) to ``https`` and ``wss``."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass secure connections on; redirect the others."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        secure = _SECURE.get(conn.scheme)
        if secure is None:
            await self.app(scope, receive, send)
            return
        url = conn.url
        if url.explicit_port in (80, 443):
            url = url.with_port(None)
        await answer(scope, receive, send, RedirectResponse(str(url.with_scheme(secure)), 307))
