"""How a middleware answers a connection itself, without the app: HTTP or WebSocket alike."""

from __future__ import annotations

import contextlib

from microasgi._types import Receive, Scope, Send
from microasgi.responses import Response
from microasgi.websockets import WebSocket, WebSocketDisconnect


async def answer(scope: Scope, receive: Receive, send: Send, response: Response) -> None:
    """Send ``response``; a WebSocket handshake is denied with it instead.

    The denial carries the response where the server offers ``websocket.http.response``;
    elsewhere the handshake is closed, which the server answers with a 403.
    """
    if scope["type"] == "http":
        await response(scope, receive, send)
        return
    with contextlib.suppress(WebSocketDisconnect):  # the client left before its handshake
        await WebSocket(scope, receive, send).deny(response)
