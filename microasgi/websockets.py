"""``WebSocket``: the connection's state machine over ASGI's websocket messages."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import anyio

from microasgi import _extensions, _json
from microasgi._types import Message, Receive, Scope, Send
from microasgi.datastructures import HeadersArg, encode_header, encode_headers
from microasgi.requests import HTTPConnection, StateT
from microasgi.responses import Response


class WebSocketDisconnect(Exception):
    """The connection is over: the client left, or it was closed."""

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason or ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r})"


class WebSocketState(enum.Enum):
    """Where a connection is in its life."""

    CONNECTING = 0
    CONNECTED = 1
    CLOSED = 2
    DENIED = 3


_CONNECTED = WebSocketState.CONNECTED  # read on every message: one global lookup


class WebSocket(HTTPConnection[StateT]):
    """A WebSocket connection: accept or deny it, then exchange messages."""

    __slots__ = (
        "_close_code",
        "_close_reason",
        "_connect_received",
        "_connection_state",
        "_receive",
        "_send",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        state: WebSocketState = WebSocketState.CONNECTING,
        connect_received: bool = False,
    ) -> None:
        """A connection over ``scope``; ``state`` and ``connect_received`` pick up one
        that other code began (an error layer ending a mounted app's connection)."""
        if scope["type"] != "websocket":
            raise ValueError(f"WebSocket needs a websocket scope, not {scope['type']!r}")
        super().__init__(scope)
        self._receive = receive
        self._send = send
        self._connect_received = connect_received
        # Set once the client or we closed: later calls raise with the same code and reason.
        self._close_code: int | None = None
        self._close_reason = ""
        self._connection_state = state

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return list(self.scope.get("subprotocols", ()))

    @property
    def connection_state(self) -> WebSocketState:
        """Where this connection is: connecting, connected, closed or denied."""
        return self._connection_state

    async def _await_connect(self) -> None:
        if not self._connect_received:
            message = await self._receive()
            self._connect_received = True
            if message["type"] == "websocket.disconnect":
                self._disconnected(message)
            if message["type"] != "websocket.connect":
                raise RuntimeError(f"expected websocket.connect, got {message['type']!r}")

    def _disconnected(self, message: Message) -> NoReturn:
        self._connection_state = WebSocketState.CLOSED
        self._close_code = int(message.get("code") or 1005)
        self._close_reason = message.get("reason") or ""
        raise self._gone()

    def _gone(self) -> WebSocketDisconnect:
        return WebSocketDisconnect(self._close_code or 1000, self._close_reason)

    async def accept(
        self, subprotocol: str | None = None, headers: HeadersArg | None = None
    ) -> None:
        """Complete the handshake, choosing ``subprotocol`` among those offered."""
        raw = encode_headers(headers)
        if subprotocol is not None:
            encode_header("sec-websocket-protocol", subprotocol)  # refuses CR/LF
        if self._connection_state is not WebSocketState.CONNECTING:
            raise RuntimeError(
                f"cannot accept a connection that is {self._connection_state.name.lower()}"
            )
        await self._await_connect()
        message: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
        if raw:
            message["headers"] = raw
        try:
            await self._send(message)
        except OSError:  # ASGI 2.4 servers raise once the client is gone
            raise self._lost() from None
        self._connection_state = WebSocketState.CONNECTED

    async def deny(self, response: Response | None = None) -> None:
        """Refuse the handshake with ``response`` where the server can, else (or with no
        response) a plain close, which the server answers with 403."""
        if self._connection_state is not WebSocketState.CONNECTING:
            raise RuntimeError("deny() must come before accept()")
        await self._await_connect()
        self._connection_state = WebSocketState.DENIED
        self._close_code = 1008
        await send_denial(self.scope, self._send, response)

    def _not_connected(self, doing: str) -> NoReturn:
        if self._connection_state is WebSocketState.CONNECTING:
            raise RuntimeError(f"accept() the connection before {doing}")
        raise self._gone()

    async def receive(self) -> Message:
        """The next raw message: ``websocket.receive`` (raises on disconnect)."""
        if self._connection_state is not _CONNECTED:
            self._not_connected("receiving")
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self._disconnected(message)
        return message

    async def _refuse(self, code: int, reason: str) -> NoReturn:
        await self.close(code, reason)
        raise WebSocketDisconnect(code, reason)

    async def receive_text(self) -> str:
        """The next text message (a binary one closes the connection with 1003)."""
        text = (await self.receive()).get("text")
        if not isinstance(text, str):
            await self._refuse(1003, "expected a text message")
        return text

    async def receive_bytes(self) -> bytes:
        """The next binary message (a text one closes the connection with 1003)."""
        data = (await self.receive()).get("bytes")
        if not isinstance(data, bytes):
            await self._refuse(1003, "expected a binary message")
        return data

    async def receive_json(self) -> Any:
        """The next message parsed as JSON (invalid JSON closes with 1007)."""
        message = await self.receive()
        data = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
        try:
            return _json.loads(data)
        except (ValueError, RecursionError):
            await self._refuse(1007, "invalid JSON")

    async def iter_text(self) -> AsyncIterator[str]:
        """Yield text messages until the client disconnects."""
        try:
            while True:
                yield await self.receive_text()
        except WebSocketDisconnect:
            pass

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Yield binary messages until the client disconnects."""
        try:
            while True:
                yield await self.receive_bytes()
        except WebSocketDisconnect:
            pass

    async def iter_json(self) -> AsyncIterator[Any]:
        """Yield JSON messages until the client disconnects."""
        try:
            while True:
                yield await self.receive_json()
        except WebSocketDisconnect:
            pass

    async def send(self, message: Message) -> None:
        """Send a raw ``websocket.send`` message (raises once the client has left)."""
        if self._connection_state is not _CONNECTED:
            self._not_connected("sending")
        try:
            await self._send(message)
        except OSError:  # ASGI 2.4 servers raise once the client is gone
            raise self._lost() from None

    def _lost(self) -> WebSocketDisconnect:
        self._connection_state = WebSocketState.CLOSED
        self._close_code = 1006
        return self._gone()

    async def send_text(self, data: str) -> None:
        """Send a text message."""
        await self.send({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        await self.send({"type": "websocket.send", "bytes": data})

    async def send_json(self, data: Any, mode: str = "text") -> None:
        """Send ``data`` as JSON, in a text (default) or binary message."""
        encoded = _json.dumps(data)
        if mode == "binary":
            await self.send_bytes(encoded)
        else:
            await self.send_text(encoded.decode("utf-8"))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (before accept: the server answers 403)."""
        if self._connection_state in (WebSocketState.CLOSED, WebSocketState.DENIED):
            return
        if self._connection_state is WebSocketState.CONNECTING:
            await self._await_connect()
        self._connection_state = WebSocketState.CLOSED
        self._close_code, self._close_reason = code, reason
        with contextlib.suppress(OSError):  # the client already left
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


async def send_denial(scope: Scope, send: Send, response: Response | None) -> None:
    """Refuse a handshake: ``response`` over ``websocket.http.response``, else a close (403).

    The body goes in one message with its length, whatever the response class: granian
    refuses a chunked denial body, and uvicorn wants ``body`` present.
    """
    if response is None or not _extensions.supports(scope, _extensions.WEBSOCKET_HTTP_RESPONSE):
        with contextlib.suppress(OSError):  # the client already left
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
        return
    # Render it as an http response would be (a streaming body collected), but with no
    # extensions: a denial has no pathsend or trailers.
    http_scope: Scope = {**scope, "type": "http", "method": "GET", "extensions": {}}
    start: Message = {}
    chunks: list[bytes] = []

    async def collect(message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            start.update(message)
        elif kind == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                body = b"".join(chunks)
                headers = list(start.get("headers", []))
                if all(name.lower() != b"content-length" for name, _ in headers):
                    headers.append((b"content-length", str(len(body)).encode()))
                await send(
                    {
                        "type": "websocket.http.response.start",
                        "status": start["status"],
                        "headers": headers,
                    }
                )
                await send(
                    {"type": "websocket.http.response.body", "body": body, "more_body": False}
                )

    async def no_receive() -> Message:  # a denial reads nothing from the client
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    with contextlib.suppress(OSError):  # the client already left
        await response(http_scope, no_receive, collect)
