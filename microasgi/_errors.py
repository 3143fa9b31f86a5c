"""The error layer: exceptions become responses (or close codes), once, correctly.

For HTTP, an exception before the response started becomes a response: the user's
handler for its status or class, else a plain one (a 500 is logged once, with its
traceback). An exception after the response started is re-raised untouched: the spec
asks the server to see it, and the client must not take a truncated body as complete.
For WebSockets, an error before accept denies the connection (a real HTTP response where
the server supports it, else a close that the server turns into a 403): the user's
handler, called with the ``WebSocket``, may return that response. After accept an error
closes with 1011.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from microasgi._types import ASGIApp, Message, Receive, Scope, Send
from microasgi.exceptions import HTTPException
from microasgi.requests import ClientDisconnect, Request
from microasgi.responses import PlainTextResponse, Response, StartWatch, to_response
from microasgi.websockets import WebSocket, WebSocketDisconnect, WebSocketState, send_denial

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
    """Turns exceptions into the ending the protocol wants, once.

    As an ASGI wrapper (``ErrorLayer(app, ...)``) it guards any app; the dispatcher also
    calls its methods directly, so the hot path has no wrapper frame of its own.
    """

    def __init__(
        self,
        app: ASGIApp | None = None,
        handlers: Mapping[HandlerKey, ExceptionHandler] | None = None,
        debug: bool = False,
    ) -> None:
        self.app = app
        self.handlers = handlers if handlers is not None else {}
        self.debug = debug

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the wrapped app, turning exceptions into responses or close codes."""
        assert self.app is not None, "ErrorLayer used as a wrapper needs an app"
        kind = scope["type"]
        if kind == "http":
            await self.guard_http(self.app, scope, receive, send)
        elif kind == "websocket":
            await self.guard_websocket(self.app, scope, receive, send)
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

    async def guard_http(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Run ``app``; an exception before its response started is answered here."""
        watched = StartWatch(send)
        try:
            await app(scope, receive, watched)
        except ClientDisconnect:
            return  # the client left while its body was read: nobody to answer or blame
        except Exception as exc:
            if watched.started:
                raise
            await self.answer_http(exc, scope, receive, send)

    async def answer_http(self, exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a request whose response has not started, because of ``exc``."""
        if isinstance(exc, ClientDisconnect):
            return  # nobody is listening
        response = await self._response_for(exc, scope, receive, send)
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception, what: str) -> ExceptionHandler | None:
        """The user's handler for ``exc``; an unexpected error is logged unless handled."""
        handler = self._find(exc)
        unexpected = not isinstance(exc, HTTPException)
        if unexpected and handler is None:
            handler = self.handlers.get(500)
        if unexpected and (handler is None or handler is self.handlers.get(500)):
            logger.error(what, exc_info=exc)
        return handler

    def _default_response(self, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return http_exception_response(exc)
        return _server_error(exc, self.debug)

    async def _response_for(
        self, exc: Exception, scope: Scope, receive: Receive, send: Send
    ) -> Response:
        handler = self._handler_for(exc, "Exception in ASGI application")
        try:
            if handler is None:
                # May raise too: an HTTPException whose headers hold a CR or LF.
                return self._default_response(exc)
            return to_response(await _call(handler, Request(scope, receive, send), exc))
        except Exception as handler_exc:
            logger.error("Exception in exception handler", exc_info=handler_exc)
            return _server_error(handler_exc, self.debug)

    async def guard_websocket(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run ``app`` on a WebSocket scope, watching its messages to end it correctly."""
        # What a WebSocket of ours would know of itself, read off the messages.
        state = WebSocketState.CONNECTING
        connect_received = False

        async def watched_send(message: Message) -> None:
            nonlocal state
            kind = message["type"]
            await send(message)
            if kind == "websocket.accept":
                state = WebSocketState.CONNECTED
            elif kind in ("websocket.close", "websocket.http.response.start"):
                state = WebSocketState.CLOSED

        async def watched_receive() -> Message:
            nonlocal state, connect_received
            message = await receive()
            if message["type"] == "websocket.connect":
                connect_received = True
            elif message["type"] == "websocket.disconnect":
                state = WebSocketState.CLOSED
            return message

        def connection() -> WebSocket:
            websocket = WebSocket(scope, watched_receive, watched_send)
            # The app's own WebSocket may have read the connect message already.
            websocket._connect_received = connect_received
            return websocket

        try:
            await app(scope, watched_receive, watched_send)
        except WebSocketDisconnect:
            pass  # the client left (or the handler gave up): a normal end, closed below
        except Exception as exc:
            if state is WebSocketState.CLOSED:
                raise
            await self.end_websocket(state, exc, connection, scope, send)
            return
        await self.end_websocket(state, None, connection, scope, send)

    async def end_websocket(
        self,
        state: WebSocketState,
        exc: Exception | None,
        connection: Callable[[], WebSocket],
        scope: Scope,
        send: Send,
    ) -> None:
        """End a connection the app left in ``state``, after ``exc`` (if any).

        Open: closed with 1000, or 1011 after an error (logged). Never accepted: denied,
        with the response for ``exc`` where there is one.
        """
        if state is WebSocketState.CONNECTED:
            if exc is not None and not isinstance(exc, HTTPException):
                logger.error("Exception in WebSocket handler", exc_info=exc)
            await _close_quietly(send, 1000 if exc is None else 1011)
            return
        if state is not WebSocketState.CONNECTING:  # already closed or denied
            return
        websocket = connection()
        response: Response | None = None
        if exc is not None:
            response = await self._denial_for(exc, websocket)
            if websocket.connection_state is not WebSocketState.CONNECTING:
                return  # the user's handler accepted, denied or closed it itself
        try:
            # The denial extension answers after websocket.connect, not before.
            await websocket._await_connect()
        except WebSocketDisconnect:
            return  # the client left before its handshake was answered
        await send_denial(scope, send, response)

    async def _denial_for(self, exc: Exception, connection: WebSocket) -> Response | None:
        """What to refuse the handshake with; None when the handler refused it itself."""
        handler = self._handler_for(exc, "Exception in WebSocket handler")
        if handler is None:
            return self._default_response(exc)
        try:
            result = await _call(handler, connection, exc)
            return None if result is None else to_response(result)
        except Exception as handler_exc:
            logger.error("Exception in exception handler", exc_info=handler_exc)
            return _server_error(handler_exc, self.debug)


async def _call(handler: ExceptionHandler, connection: Any, exc: Exception) -> Any:
    result = handler(connection, exc)
    if isinstance(result, Awaitable):
        result = await result
    return result


async def _close_quietly(send: Send, code: int) -> None:
    with contextlib.suppress(OSError):  # the client is already gone
        await send({"type": "websocket.close", "code": code, "reason": ""})
