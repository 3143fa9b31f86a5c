"""A framework-free ASGI app that reports what a server puts in the scope.

It lets the interop suite learn each server's behaviour (extensions, paths, lifespan,
state) independently of microasgi, so the facts microasgi is built around are checked
even before the framework exists. Every endpoint answers JSON describing what it saw.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

# Its own ASGI types: this app must not import microasgi, so it runs before the core does.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Kept alive on purpose: comparing against the previous request's objects with `is`
# is only meaningful while they cannot be freed and their ids reused.
_previous: dict[str, Any] = {}
_startups = 0
PATHSEND_FILE = Path(__file__).with_name("raw_app.py")


def _describe(scope: Scope) -> dict[str, Any]:
    """Summarise the parts of a scope microasgi's behaviour depends on."""
    extensions = scope.get("extensions")
    facts = {
        "type": scope["type"],
        "pid": os.getpid(),
        "asgi": dict(scope.get("asgi", {})),
        "http_version": scope.get("http_version"),
        "scheme": scope.get("scheme"),
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1") if scope.get("raw_path") else None,
        "root_path": scope.get("root_path"),
        "query_string": scope.get("query_string", b"").decode("latin-1"),
        "has_extensions_key": "extensions" in scope,
        "extensions": sorted(extensions) if extensions else [],
        "has_state": "state" in scope,
        "state": dict(scope["state"]) if "state" in scope else None,
        "extensions_reused": extensions is not None and extensions is _previous.get("extensions"),
        "asgi_reused": scope.get("asgi") is not None and scope.get("asgi") is _previous.get("asgi"),
        "server": list(scope["server"]) if scope.get("server") else None,
        "client_present": scope.get("client") is not None,
        "subprotocols": scope.get("subprotocols"),
    }
    _previous["extensions"] = extensions
    _previous["asgi"] = scope.get("asgi")
    return facts


async def _send_json(send: Send, data: Any, status: int = 200) -> None:
    body = json.dumps(data).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    global _startups
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _startups += 1
            if "state" in scope:
                scope["state"]["started_by"] = os.getpid()
            mark_dir = os.environ.get("INTEROP_MARK_DIR")
            if mark_dir:
                # Once per process at startup: a blocking touch is harmless here.
                Path(mark_dir, f"raw-{os.getpid()}-{_startups}").touch()  # noqa: ASYNC240
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"].removeprefix(scope.get("root_path", ""))
    facts = _describe(scope)
    extensions = scope.get("extensions") or {}
    if path == "/body":
        body = await _read_body(receive)
        facts["body_length"] = len(body)
        await _send_json(send, facts)
    elif path == "/early-hint":
        # Before the response starts, where the spec allows it.
        facts["early_hint_sent"] = False
        if "http.response.early_hint" in extensions:
            await send(
                {
                    "type": "http.response.early_hint",
                    "links": [b"</raw.css>; rel=preload; as=style"],
                }
            )
            facts["early_hint_sent"] = True
        await _send_json(send, facts)
    elif path == "/early-hint-late":
        # After the response starts: servers are expected to refuse; report how.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send({"type": "http.response.early_hint", "links": [b"</raw.css>; rel=preload"]})
            outcome = "accepted"
        except Exception as exc:  # report what the server raised instead of dying
            outcome = type(exc).__name__
        await send({"type": "http.response.body", "body": outcome.encode()})
    elif path == "/push":
        facts["pushed"] = False
        if "http.response.push" in extensions:
            await send({"type": "http.response.push", "path": "/raw-pushed", "headers": []})
            facts["pushed"] = True
        await _send_json(send, facts)
    elif path == "/pathsend":
        if "http.response.pathsend" in extensions:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.pathsend", "path": str(PATHSEND_FILE)})
        else:
            await _send_json(send, {"pathsend": False}, status=501)
    else:
        await _send_json(send, facts)


async def _deny(send: Send, mode: str) -> None:
    # mode "split": the body over two messages; "nobody": a body message without "body".
    body = b"" if mode == "nobody" else b'{"error":"unauthorized"}'
    await send(
        {
            "type": "websocket.http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    if mode == "split":
        await send({"type": "websocket.http.response.body", "body": body[:10], "more_body": True})
        await send({"type": "websocket.http.response.body", "body": body[10:]})
    elif mode == "nobody":
        await send({"type": "websocket.http.response.body"})
    else:
        await send({"type": "websocket.http.response.body", "body": body})


async def _websocket(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"].removeprefix(scope.get("root_path", ""))
    message = await receive()
    assert message["type"] == "websocket.connect"
    if path == "/ws-deny":
        if "websocket.http.response" in (scope.get("extensions") or {}):
            await _deny(send, scope.get("query_string", b"").decode())
        else:
            await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps(_describe(scope))})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Dispatch on the scope type; unknown types are refused as the spec asks."""
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
    elif scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "websocket":
        await _websocket(scope, receive, send)
    else:
        raise RuntimeError(f"unsupported scope type {scope['type']!r}")
