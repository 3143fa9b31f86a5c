"""A hand-made WebSocket harness: feed an app scripted messages, record what it sends.

The scripted ``receive`` waits forever once the script is used up, so a test bounded
with ``anyio.fail_after`` fails (instead of passing) when the app asks for more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import anyio

from microasgi._types import ASGIApp, Message, Scope

WS_RESPONSE: dict[str, Any] = {"websocket.http.response": {}}


def ws_scope(
    path: str = "/ws",
    *,
    extensions: Mapping[str, Any] | None = None,
    subprotocols: Iterable[str] = (),
    headers: Iterable[tuple[str, str]] = (),
) -> Scope:
    """A websocket scope as a server builds it (``extensions`` empty unless given)."""
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")]
        + [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": list(subprotocols),
        "extensions": dict(extensions or {}),
    }


async def run_ws(
    app: ASGIApp, scope: Scope, script: Iterable[Message] = ({"type": "websocket.connect"},)
) -> list[Message]:
    """Run ``app`` with ``script`` as what the client sends; return every message it sent."""
    pending = list(script)
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await app(scope, receive, send)
    return sent
