"""The scale app as raw ASGI: each route's work done by hand, the floor of the others.

Its streams stop when the client leaves, as the frameworks' do: a task of the stream's
own waits for ``http.disconnect`` and cancels it (``/stream-nowatch`` is the same stream
without that watch, to show what the watch itself costs; on a server before ASGI 2.4 it
runs to its end for a client long gone). Files are read on the event loop, or handed to
the server with ``http.response.pathsend`` where it advertises that.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

from benchmarks.harness import ASGIApp, Message, Receive, Scope, Send
from benchmarks.scale_apps import HELLO, Counts, chunk, file_path, ticks

TEXT = b"text/plain; charset=utf-8"
READ_SIZE = 64 * 1024
PATHSEND = "http.response.pathsend"
ROOMS: dict[str, set[asyncio.Queue[str]]] = {}


async def _respond(send: Send, body: bytes, status: int = 200) -> None:
    headers = [(b"content-type", TEXT), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _until_disconnect(receive: Receive, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body()``, cancelled by a watcher task once the client disconnects."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        await body()
    except asyncio.CancelledError:
        if not gone:
            raise
        if sys.version_info >= (3, 11):
            task.uncancel()  # the cancel was ours: the request ends normally
    finally:
        watcher.cancel()


async def _stream(send: Send, content_type: bytes, items: AsyncIterator[bytes]) -> None:
    headers = [(b"content-type", content_type)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    try:
        async for item in items:
            await send({"type": "http.response.body", "body": item, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await items.aclose()  # type: ignore[attr-defined]


async def _send_file(scope: Scope, send: Send, path: str) -> None:
    size = os.stat(path).st_size
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % size)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if PATHSEND in scope.get("extensions", {}):
        await send({"type": PATHSEND, "path": path})
        return
    with open(path, "rb") as f:  # noqa: ASYNC230 - the floor: no thread hop
        while data := f.read(READ_SIZE):
            await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _file(scope: Scope, send: Send, name: str) -> None:
    path = file_path(name)
    if path is None:
        await _respond(send, b"Not Found", 404)
        return
    await _send_file(scope, send, str(path))


async def _static(scope: Scope, send: Send, name: str) -> None:
    # What a static route checks by hand: a plain file name, inside the directory, a file.
    stem, dot, ext = name.partition(".")
    path = file_path(stem) if dot and ext == "bin" else None
    if path is None or not os.path.isfile(path):  # noqa: ASYNC240 - the floor: no thread hop
        await _respond(send, b"Not Found", 404)
        return
    await _send_file(scope, send, str(path))


async def _echo(receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text", "")})


async def _room(receive: Receive, send: Send, name: str) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    inbox: asyncio.Queue[str] = asyncio.Queue()
    members = ROOMS.setdefault(name, set())
    members.add(inbox)

    async def relay() -> None:
        while True:
            await send({"type": "websocket.send", "text": await inbox.get()})

    relaying = asyncio.ensure_future(relay())
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is not None:
                for member in members:
                    member.put_nowait(text)
    finally:
        members.discard(inbox)
        relaying.cancel()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _event(i: int) -> bytes:
    return b"data: %d\n\n" % i


def app() -> ASGIApp:
    """The raw scale app (a dispatch on the path by hand)."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        kind, path = scope["type"], scope["path"]
        if kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "websocket":
            if path == "/ws":
                await _echo(receive, send)
            elif path.startswith("/room/"):
                await _room(receive, send, path.removeprefix("/room/"))
            else:
                await send({"type": "websocket.close", "code": 1000})
        elif path == "/plaintext":
            await _respond(send, HELLO)
        elif path == "/stats":
            await _respond(send, Counts.text().encode())
        elif path == "/extensions":  # what the server offers: pathsend or not
            await _respond(send, " ".join(scope.get("extensions") or {}).encode())
        elif path == "/stream":
            await _until_disconnect(receive, lambda: _stream(send, TEXT, ticks(chunk)))
        elif path == "/stream-nowatch":
            await _stream(send, TEXT, ticks(chunk))
        elif path == "/sse":
            content_type = b"text/event-stream; charset=utf-8"
            await _until_disconnect(receive, lambda: _stream(send, content_type, ticks(_event)))
        elif path.startswith("/file/"):
            await _file(scope, send, path.removeprefix("/file/"))
        elif path.startswith("/static/"):
            await _static(scope, send, path.removeprefix("/static/"))
        else:
            await _respond(send, b"Not Found", 404)

    return asgi
