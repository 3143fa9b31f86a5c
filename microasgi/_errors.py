"""The error layer: exceptions become responses (or close codes), once, correctly.

For HTTP, an exception before the response started becomes a response: the user's
handler for its status or class, else a plain one (a 500 is logged once, with its
traceback). An exception after the response started is re-raised untouched: the spec
asks the server to see it, and the client must not take a truncated body as complete.
For WebSockets, an error before accept denies the connection (a real HTTP response where
the server supports it, else a close that the server turns into a 403); after accept it
closes with 1011.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from microasgi import _extensions
from microasgi._types import ASGIApp, Message, Receive, Scope, Send
from microasgi.exceptions import HTTPException
from microasgi.requests import ClientDisconnect, Request
from microasgi.responses import PlainTextResponse, Response, to_response
from microasgi.websockets import WebSocketDisconnect

logger = logging.getLogger("microasgi")

ExceptionHandler = Callable[[Request, Any], Awaitable[Any] | Any]
HandlerKey = int | type[BaseException]


def http_exception_response(exc: HTTPException) -> Response:
    """The default response for an ``HTTPException``."""
    if exc.status_code in (204, 304) or exc.status_code < 200:
        return Response(None, exc.status_code, exc.headers)
    return PlainTextResponse(exc.detail, exc.status_code, exc.headers)


def _server_error(exc: BaseException, debug: bool) -> Response:
    if debug:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return PlainTextResponse(text, 500)
    return PlainTextResponse("Internal Server Error", 500)


class ErrorLayer:
    """Wraps the app so every exception ends the request the way the protocol wants."""

    def __init__(
        self,
        app: ASGIApp,
        handlers: Mapping[HandlerKey, ExceptionHandler] | None = None,
        debug: bool = False,
    ) -> None:
        self.app = app
        self.handlers = handlers if handlers is not None else {}
        self.debug = debug

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, turning exceptions into responses or close codes."""
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _find(self, exc: BaseException) -> ExceptionHandler | None:
        if not self.handlers:
            return None
        if isinstance(exc, HTTPException) and exc.status_code in self.handlers:
            return self.handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in self.handlers:
                return self.handlers[cls]
        return None

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            if started:
                raise
            if isinstance(exc, ClientDisconnect):
                return  # nobody is listening
            response = await self._response_for(exc, scope, receive, send)
            await response(scope, receive, send)

    async def _response_for(
        self, exc: Exception, scope: Scope, receive: Receive, send: Send
    ) -> Response:
        handler = self._find(exc)
        unexpected = not isinstance(exc, HTTPException)
        if unexpected and handler is None:
            handler = self.handlers.get(500)
        if unexpected and (handler is None or handler is self.handlers.get(500)):
            logger.error("Exception in ASGI application", exc_info=exc)
        if handler is None:
            if isinstance(exc, HTTPException):
                return http_exception_response(exc)
            return _server_error(exc, self.debug)
        try:
            result = handler(Request(scope, receive, send), exc)
            if isinstance(result, Awaitable):
                result = await result
            return to_response(result)
        except Exception as handler_exc:
            logger.error("Exception in exception handler", exc_info=handler_exc)
            return _server_error(handler_exc, self.debug)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        # "connecting" until the app accepts, then "open", then "closed".
        state = "connecting"

        async def watched_send(message: Message) -> None:
            nonlocal state
            kind = message["type"]
            await send(message)
            if kind == "websocket.accept":
                state = "open"
            elif kind in ("websocket.close", "websocket.http.response.start"):
                state = "closed"

        async def watched_receive() -> Message:
            nonlocal state
            message = await receive()
            if message["type"] == "websocket.disconnect":
                state = "closed"
            return message

        try:
            await self.app(scope, watched_receive, watched_send)
        except WebSocketDisconnect:
            return  # the client left: a normal end
        except Exception as exc:
            if state == "closed":
                raise
            if isinstance(exc, HTTPException):
                response = http_exception_response(exc)
            else:
                logger.error("Exception in WebSocket handler", exc_info=exc)
                response = _server_error(exc, self.debug)
            if state == "open":
                await _close_quietly(send, 1011)
            else:
                await _deny(scope, receive, send, response)
            return
        if state == "open":
            await _close_quietly(send, 1000)
        elif state == "connecting":
            await _deny(scope, receive, send, None)


async def _close_quietly(send: Send, code: int) -> None:
    with contextlib.suppress(OSError):  # the client is already gone
        await send({"type": "websocket.close", "code": code, "reason": ""})


async def _deny(scope: Scope, receive: Receive, send: Send, response: Response | None) -> None:
    """Refuse a connection that was never accepted."""
    if response is not None and _extensions.supports(scope, _extensions.WEBSOCKET_HTTP_RESPONSE):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers(),
            }
        )
        await send({"type": "websocket.http.response.body", "body": response.body})
    else:
        await _close_quietly(send, 1008)
