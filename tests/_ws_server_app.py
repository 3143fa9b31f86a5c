"""What the WebSocket server tests run: examples/deny.py, plus a probe of the scope.

``/__extensions__`` answers, over a WebSocket, the extensions the server advertised in
the websocket scope; every other connection goes to the example unchanged, so the
example sees exactly the scope the server built.
"""

from __future__ import annotations

import json

from examples.deny import app as deny_app
from microasgi._types import Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer the probe, or hand the connection to the deny example."""
    if scope["type"] == "websocket" and scope["path"] == "/__extensions__":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        advertised = sorted(scope.get("extensions") or {})
        await send({"type": "websocket.send", "text": json.dumps(advertised)})
        # Let the client close: when both ends close at once, hypercorn's trio worker can
        # send on the socket from two tasks, and a trio.BusyResourceError kills the worker.
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    await deny_app(scope, receive, send)
