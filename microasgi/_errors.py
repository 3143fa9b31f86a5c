"""The error layer: what an exception becomes, for HTTP and for WebSockets, in one place.

The App's exception handlers are looked up by status (for ``HTTPException``) and by class.
An error is *handled* when it is an ``HTTPException`` or a handler other than the 500 one
answers it: it becomes that response, and goes no further. Any other error is
*unexpected*: it is answered with a 500 (shaped by the 500 handler, if any) and then
propagates to the server and to the ASGI middleware around the App (Sentry, OpenTelemetry,
APM agents), which log and report it; microasgi does not log it itself.

An error after the response started cannot be answered: it propagates, and no closing
body message is sent, so the client does not take a truncated body for a complete one.

The dispatcher answers what its handlers raise, inside the user's middleware, so they
see (and may decorate: CORS) the error response as well as the error going up; with user
middleware, the App puts this layer's guard outermost (``ErrorLayer.guard``), which
answers what the middleware themselves raise. For WebSockets an error before accept
denies the handshake (with the handler's or the default response where the server
supports it, else a close the server turns into a 403); after accept it closes with 1011.
A ``WebSocketDisconnect`` is a normal end; a ``WebSocketException`` is the handler's
chosen end, a close with its code (before accept too: the server then answers 403).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import traceback
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from microasgi._concurrency import run_callable
from microasgi._types import ASGIApp, Message, Receive, Scope, Send
from microasgi.datastructures import DEFAULT_LIMITS, Limits
from microasgi.exceptions import ClientDisconnect, HTTPException, WebSocketException
from microasgi.exchange import Exchange
from microasgi.requests import Request
from microasgi.responses import PlainTextResponse, Response
from microasgi.returns import to_response
from microasgi.websockets import WebSocket, WebSocketDisconnect, WebSocketState

if sys.version_info < (3, 11):  # pragma: no cover - the backport anyio depends on
    from exceptiongroup import BaseExceptionGroup

ExceptionHandler = Callable[[Any, Any], Awaitable[Any] | Any]
HandlerKey = int | type[BaseException]
Kind = Literal["http", "websocket"]

__all__ = ["ErrorLayer", "ExceptionHandler", "HandlerKey", "http_exception_response"]


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


def _the_one_error(exc: Exception) -> Exception:
    """The single error inside (nested) exception groups, or ``exc`` itself.

    An ``HTTPException`` raised in a task group comes out wrapped in a group of one: it is
    still that HTTPException.
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        inner = exc.exceptions[0]
        if not isinstance(inner, Exception):
            break
        exc = inner
    return exc


@functools.lru_cache(maxsize=256)
def handler_kind(handler: ExceptionHandler) -> Kind | None:
    """What a handler answers, read off its first parameter's annotation: ``Request``
    (http only), ``WebSocket`` (websocket only), or anything else (both)."""
    try:
        parameters = list(inspect.signature(handler, eval_str=True).parameters.values())
    except (NameError, TypeError, ValueError, SyntaxError):
        try:  # an annotation naming what the module cannot resolve: read it as text
            parameters = list(inspect.signature(handler).parameters.values())
        except (TypeError, ValueError):
            return None
    if not parameters:
        return None
    annotation = parameters[0].annotation
    if isinstance(annotation, str):
        name = annotation.partition("[")[0].rpartition(".")[2]  # "Request[MyState]" too
        return "http" if name == "Request" else "websocket" if name == "WebSocket" else None
    annotation = typing.get_origin(annotation) or annotation  # Request[MyState]: Request
    if isinstance(annotation, type):
        if issubclass(annotation, Request):
            return "http"
        if issubclass(annotation, WebSocket):
            return "websocket"
    return None


class ErrorLayer:
    """The App's exception handlers, and what an error becomes for each kind of scope."""

    def __init__(
        self,
        handlers: Mapping[HandlerKey, ExceptionHandler],
        debug: bool,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.handlers = handlers
        self.debug = debug
        self.limits = limits

    def handler_for(self, exc: Exception, kind: Kind) -> ExceptionHandler | None:
        """The user's handler for ``exc`` on a ``kind`` scope (by status, then class)."""
        handlers = self.handlers
        if not handlers:
            return None
        found: ExceptionHandler | None = None
        if isinstance(exc, HTTPException):
            found = handlers.get(exc.status_code)
        if found is None:
            found = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
        if found is None and not isinstance(exc, HTTPException):
            found = handlers.get(500)
        if found is not None and handler_kind(found) not in (None, kind):
            return None
        return found

    def _is_handled(self, exc: Exception, handler: ExceptionHandler | None) -> bool:
        """Handled errors end with their response; unexpected ones propagate after it."""
        return isinstance(exc, HTTPException) or (
            handler is not None and handler is not self.handlers.get(500)
        )

    async def _response_for(
        self,
        error: Exception,
        handler: ExceptionHandler | None,
        connection: Callable[[], Request | WebSocket],
    ) -> Response | None:
        """The handler's response to ``error`` (None: it ended a WebSocket itself), or the
        default one; raises what the handler raises."""
        if handler is None:
            if isinstance(error, HTTPException):
                return http_exception_response(error)  # may raise: a CR or LF in a header
            return _server_error(error, self.debug)
        conn = connection()
        result = await run_callable(handler, conn, error)
        if result is None and isinstance(conn, WebSocket):
            return None
        return to_response(result)

    # HTTP

    async def handled_response(self, exc: Exception, request: Request) -> Response | None:
        """The response a handled error (an ``HTTPException``, or one a handler other
        than the 500 one answers) ends the request with; None for any other error, which
        ``answer_http`` then answers. Raises what the error's handler raises."""
        if isinstance(exc, ClientDisconnect) or request.exchange.started:
            return None
        error = _the_one_error(exc)
        handler = self.handler_for(error, "http")
        if not self._is_handled(error, handler):
            return None
        return await self._response_for(error, handler, lambda: request)

    async def answer_http(self, exc: Exception, exchange: Exchange) -> bool:
        """Answer a request that failed with ``exc``; True when ``exc`` must propagate."""
        if isinstance(exc, ClientDisconnect):
            return False  # the client left while its body was read: nobody to answer
        if exchange.started:
            return True
        error = _the_one_error(exc)
        handler = self.handler_for(error, "http")
        handled = self._is_handled(error, handler)
        try:
            response = await self._response_for(
                error, handler, lambda: Request.for_exchange(exchange.scope, exchange)
            )
            assert response is not None  # an http handler's None is a 204
            await response.respond(exchange)
        except Exception:  # the handler failed, or headers held a CR or LF: a plain 500
            if exchange.started:
                raise
            await _server_error(error, self.debug).respond(exchange)
            raise
        return not handled

    # WebSockets

    async def answer_websocket(self, exc: Exception, websocket: WebSocket) -> bool:
        """End a connection whose handler failed with ``exc``; True when ``exc`` must
        propagate."""
        error = _the_one_error(exc)
        handler = self.handler_for(error, "websocket")
        handled = self._is_handled(error, handler) or isinstance(error, WebSocketException)
        state = websocket.connection_state
        if isinstance(error, WebSocketException) and (
            state is WebSocketState.CONNECTED or handler in (None, self.handlers.get(500))
        ):
            # The handler's chosen close. Before accept too, as Starlette does: the server
            # refuses with a 403 whatever extensions it offers (no client sees the code).
            with contextlib.suppress(WebSocketDisconnect):  # the client already left
                await websocket.close(error.code, error.reason)
        elif state is WebSocketState.CONNECTED:
            await websocket.close(1011)
        elif state is WebSocketState.CONNECTING:
            try:
                response = await self._response_for(error, handler, lambda: websocket)
            except Exception:
                await _deny(websocket, _server_error(error, self.debug))
                raise
            if response is not None or websocket.connection_state is WebSocketState.CONNECTING:
                # A handler returning None refused (or accepted) the connection itself.
                await _deny(websocket, response)
        return not handled

    async def end_websocket(self, websocket: WebSocket) -> None:
        """End a connection its handler returned from: closed (1000), or never accepted
        and so denied (403)."""
        state = websocket.connection_state
        if state is WebSocketState.CONNECTED:
            await websocket.close(1000)
        elif state is WebSocketState.CONNECTING:
            await _deny(websocket, None)

    # the guard, outermost

    def guard(self, app: ASGIApp) -> ASGIApp:
        """``app`` (the user's middleware around the dispatcher), its errors answered."""
        return _Guard(app, self)

    async def guard_websocket(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run an ASGI ``app`` on a WebSocket scope, watching its messages, and end the
        connection as the protocol wants when the app fails or returns."""
        watched = _Watched(receive, send)
        try:
            await app(scope, watched.receive, watched.send)
        except WebSocketDisconnect:
            pass  # the client left (or the handler gave up): a normal end, closed below
        except Exception as exc:
            if isinstance(exc, OSError) and watched.client_gone:
                return  # an ASGI 2.4 server's send said the client left: nobody to answer
            websocket = watched.websocket(scope)
            if websocket is None:  # already closed or denied: nothing to answer
                raise
            if await self.answer_websocket(exc, websocket):
                raise
            return
        websocket = watched.websocket(scope)
        if websocket is not None:
            await self.end_websocket(websocket)


async def _deny(websocket: WebSocket, response: Response | None) -> None:
    """Refuse a handshake, unless the client has already left."""
    with contextlib.suppress(WebSocketDisconnect):
        await websocket.deny(response)


class _Guard:
    """The outermost layer of an App with user middleware: answers what they raise."""

    __slots__ = ("app", "errors")

    def __init__(self, app: ASGIApp, errors: ErrorLayer) -> None:
        self.app = app
        self.errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the middleware stack; answer an error before the response started."""
        kind = scope["type"]
        if kind == "http":
            exchange = Exchange(scope, receive, send, self.errors.limits)
            try:
                await self.app(scope, receive, exchange.asgi_send)
            except Exception as exc:
                if await self.errors.answer_http(exc, exchange):
                    raise
        elif kind == "websocket":
            await self.errors.guard_websocket(self.app, scope, receive, send)
        else:
            await self.app(scope, receive, send)


class _Watched:
    """The channels of a WebSocket app we do not own, read for where the connection is."""

    __slots__ = ("_receive", "_send", "client_gone", "connect_received", "state")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.state = WebSocketState.CONNECTING
        self.connect_received = False
        self.client_gone = False

    async def receive(self) -> Message:
        """The server's receive, noting the connect and a disconnect."""
        message = await self._receive()
        kind = message["type"]
        if kind == "websocket.connect":
            self.connect_received = True
        elif kind == "websocket.disconnect":
            self.state = WebSocketState.CLOSED
        return message

    async def send(self, message: Message) -> None:
        """The server's send, noting the accept, a close or a denial, and a client gone."""
        try:
            await self._send(message)
        except OSError:
            self.state = WebSocketState.CLOSED
            self.client_gone = True
            raise
        kind = message["type"]
        if kind == "websocket.accept":
            self.state = WebSocketState.CONNECTED
        elif kind in ("websocket.close", "websocket.http.response.start"):
            self.state = WebSocketState.CLOSED

    def websocket(self, scope: Scope) -> WebSocket | None:
        """A WebSocket where the app left the connection; None when it is over."""
        if self.state is WebSocketState.CLOSED:
            return None
        return WebSocket(
            scope,
            self._receive,
            self._send,
            state=self.state,
            connect_received=self.connect_received,
        )
