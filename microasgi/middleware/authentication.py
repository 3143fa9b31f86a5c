"""``AuthenticationMiddleware``: ask a backend who is connecting, once per connection.

It sets ``scope["user"]`` and ``scope["auth"]`` (``request.user``, ``request.auth``, and the
same on a WebSocket) before the app runs. A backend that raises ``AuthenticationError``
answers the connection itself: a 400 with the error's message, unless ``on_error`` gives
another response; a WebSocket is denied with it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from microasgi._concurrency import is_async_callable
from microasgi._types import ASGIApp, Receive, Scope, Send
from microasgi.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    UnauthenticatedUser,
)
from microasgi.middleware._answer import answer
from microasgi.requests import HTTPConnection
from microasgi.responses import PlainTextResponse, Response

OnError = Callable[
    [HTTPConnection, AuthenticationError], Response | Awaitable[Response | None] | None
]


class AuthenticationMiddleware:
    """Set ``request.user`` and ``request.auth`` from ``backend.authenticate(conn)``."""

    def __init__(
        self,
        app: ASGIApp,
        backend: AuthenticationBackend,
        on_error: OnError | None = None,
    ) -> None:
        """Wrap ``app``; ``on_error(conn, exc)`` may answer an ``AuthenticationError``."""
        if not is_async_callable(getattr(backend, "authenticate", None)):
            raise TypeError(
                f"backend must have an 'async def authenticate(self, conn)' method: {backend!r}"
            )
        if on_error is not None and not callable(on_error):
            raise TypeError(f"on_error must be a function (conn, exc) -> Response: {on_error!r}")
        self.app = app
        self.backend = backend
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate an http or websocket connection, then run the app."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        try:
            result = await self.backend.authenticate(conn)
        except AuthenticationError as exc:
            await answer(scope, receive, send, await self._error_response(conn, exc))
            return
        if result is None:  # anonymous: fresh credentials, since a handler may change them
            result = AuthCredentials(), UnauthenticatedUser()
        scope["auth"], scope["user"] = result
        await self.app(scope, receive, send)

    async def _error_response(self, conn: HTTPConnection, exc: AuthenticationError) -> Response:
        """``on_error``'s response, or a 400 with the error's message."""
        if self.on_error is not None:
            response = self.on_error(conn, exc)
            if inspect.isawaitable(response):
                response = await response
            if response is not None:
                return response
        return PlainTextResponse(str(exc) or "Invalid authentication credentials", 400)
