"""A WebSocket guarded by a token: without the right one, a 401 with a JSON body.

Run it with ``python -m microasgi examples.deny:app`` and connect to
``ws://127.0.0.1:8000/ws?token=s3cret`` (or send ``Authorization: Bearer s3cret``): it
echoes text and bytes. A missing or wrong token gets an HTTP 401 whose JSON body says
why, where the server supports ``websocket.http.response`` (uvicorn, hypercorn,
granian); elsewhere (daphne) the client sees a plain 403.
"""

from __future__ import annotations

import os
import secrets

from microasgi import App, JSONResponse, WebSocket

app = App()

# In a real app: look the token up in your user store.
TOKEN = os.environ.get("ECHO_TOKEN", "s3cret")


def token_of(websocket: WebSocket) -> str:
    """The token a client sent: a ``token`` query parameter (browsers) or a Bearer header."""
    scheme, _, credentials = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    return websocket.query.get("token", "")


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    """Echo every message back, text as text and bytes as bytes, once the token checks."""
    token = token_of(websocket)
    if not secrets.compare_digest(token.encode(), TOKEN.encode()):
        error = "missing token" if not token else "invalid token"
        await websocket.deny(
            JSONResponse(
                {"error": error},
                401,
                headers={"www-authenticate": 'Bearer realm="echo"'},
            )
        )
        return
    await websocket.accept()
    while True:  # ends with WebSocketDisconnect when the client leaves: a normal end
        message = await websocket.receive()
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        else:
            await websocket.send_bytes(message.get("bytes") or b"")
