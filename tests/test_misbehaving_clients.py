"""Clients that leave at the worst moment: the server keeps serving, nothing is logged as
an app error, nothing keeps running (in process; tests/interop/test_misbehaviour.py runs
the same against real servers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from asgi_harness import CONNECT, http_scope, request_body, websocket_scope

from microasgi import App, HTTPException, Request, StreamingResponse, WebSocket
from microasgi._types import Message
from microasgi.staticfiles import StaticFiles

pytestmark = pytest.mark.anyio

CHUNK = b"x" * 1024


class GoneAfter:
    """A server's channels for a client that reads ``chunks`` body messages and resets.

    As uvicorn and hypercorn (ASGI 2.3) do, sends to a gone client are dropped without
    suspending, and the disconnect is reported through receive; as ASGI 2.4 servers do,
    ``raises=True`` makes sends to a gone client raise OSError instead.
    """

    def __init__(self, chunks: int, *, raises: bool = False) -> None:
        self.left = chunks
        self.raises = raises
        self.gone = anyio.Event()
        self.dropped = 0

    async def receive(self) -> Message:
        if self.left is not None and not hasattr(self, "_body_sent"):
            self._body_sent = True
            return request_body(b"")[0]
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.gone.is_set():
            if self.raises:
                raise OSError("client gone")
            self.dropped += 1
            return
        if message["type"] == "http.response.body":
            self.left -= 1
            if self.left <= 0:
                self.gone.set()


@pytest.mark.parametrize("raises", [False, True], ids=["asgi-2.3", "asgi-2.4"])
async def test_a_source_that_never_waits_stops_when_its_client_leaves(raises: bool) -> None:
    stopped = anyio.Event()

    async def forever() -> AsyncIterator[bytes]:
        try:
            while True:  # never awaits anything
                yield CHUNK
        finally:
            stopped.set()

    app = App()

    @app.get("/firehose")
    async def firehose(request: Request) -> StreamingResponse:
        return StreamingResponse(forever())

    client = GoneAfter(5, raises=raises)
    version = "2.4" if raises else "2.3"
    with anyio.fail_after(5):
        await app(http_scope("/firehose", spec_version=version), client.receive, client.send)
    assert stopped.is_set()


async def test_a_long_list_of_chunks_lets_other_requests_run() -> None:
    others_ran = anyio.Event()
    seen_while_streaming: list[bool] = []

    app = App()

    @app.get("/list")
    async def listed(request: Request) -> StreamingResponse:
        return StreamingResponse([CHUNK] * 1000)

    async def send(message: Message) -> None:  # a server whose sends never suspend
        if message.get("more_body"):
            seen_while_streaming.append(others_ran.is_set())

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError

    async def another_request() -> None:
        others_ran.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(another_request)
            await app(http_scope("/list", spec_version="2.3"), receive, send)
    assert any(seen_while_streaming)


# --- a WebSocket client that leaves before the handshake completes (ASGI 2.4) ------------


class LeavesDuringHandshake:
    """A 2.4 server's channels for a client that sent its handshake, then went away."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.connected = False

    async def receive(self) -> Message:
        if not self.connected:
            self.connected = True
            return dict(CONNECT)
        return {"type": "websocket.disconnect", "code": 1006}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        raise OSError("the client went away")


def a_websocket_app(tmp_path: Path) -> App:
    app = App()

    @app.websocket("/accepts")
    async def accepts(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("never delivered")

    @app.websocket("/refuses")
    async def refuses(websocket: WebSocket) -> None:
        raise HTTPException(403)

    app.mount("/static", StaticFiles(directory=tmp_path))
    return app


@pytest.mark.parametrize("path", ["/accepts", "/refuses", "/nowhere", "/static/x"])
@pytest.mark.parametrize("denial", [True, False], ids=["denial-extension", "no-extension"])
async def test_a_websocket_client_leaving_before_the_handshake_is_no_error(
    tmp_path: Path, path: str, denial: bool
) -> None:
    extensions: dict[str, Any] = {"websocket.http.response": {}} if denial else {}
    client = LeavesDuringHandshake()
    scope = websocket_scope(
        path, extensions=extensions, asgi={"version": "3.0", "spec_version": "2.4"}
    )
    with anyio.fail_after(5):
        await a_websocket_app(tmp_path)(scope, client.receive, client.send)  # raises nothing
    starts = [
        m
        for m in client.sent
        if m["type"] in ("websocket.accept", "websocket.close", "websocket.http.response.start")
    ]
    assert len(starts) == 1, client.sent  # one answer, not a second one after it failed
