"""Per-request work stays flat: many requests leave no growing pile of live objects."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from microasgi import App, Request, StreamingResponse
from microasgi._types import Message, Scope

pytestmark = pytest.mark.anyio

REQUESTS = 100_000
WARMUP = 2_000
# Live allocations allowed to remain after all the requests, beyond the warmed-up state
# (interning, caches of the event loop). A leak of one object per request is 100,000.
BOUND = 500


def _app() -> App:
    app = App()

    @app.get("/users/{user_id:int}")
    async def user(request: Request, user_id: int) -> dict[str, Any]:
        return {"id": user_id, "q": request.query.get("q"), "agent": request.headers.get("ua")}

    @app.post("/echo")
    async def echo(request: Request) -> bytes:
        return await request.body()

    @app.get("/stream")
    async def stream(request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"from memory"
            if request.query.get("wait"):
                await anyio.lowlevel.checkpoint()  # a wait: the watcher starts, then stops
            yield b"after"

        return StreamingResponse(chunks())

    return app


# Which request each of twenty is: mostly the routed hot path, and one stream of each kind.
# The one that waits starts a watcher task and costs ten times the others under tracemalloc;
# 5,000 of them still show a leak of one object each ten times over BOUND.
_KINDS = (0,) * 12 + (1,) * 6 + (2, 3)


async def _drive(app: App, count: int) -> None:
    body_message: Message = {"type": "http.request", "body": b"payload", "more_body": False}
    never = anyio.Event()

    async def receive() -> Message:
        return body_message

    async def receive_once() -> Message:
        # As uvicorn does: the body, then nothing until the client leaves.
        nonlocal given
        if given:
            await never.wait()
        given = True
        return body_message

    async def send(message: Message) -> None:
        pass

    for n in range(count):
        kind = _KINDS[n % len(_KINDS)]
        given = False
        method, path, query = [
            ("GET", f"/users/{n % 1000}", b"q=1"),
            ("POST", "/echo", b""),
            ("GET", "/stream", b""),
            ("GET", "/stream", b"wait=1"),
        ][kind]
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": b"/",
            "root_path": "",
            "query_string": query,
            "headers": [(b"host", b"h"), (b"ua", b"t"), (b"content-length", b"7")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive_once if kind >= 2 else receive, send)


async def test_a_hundred_thousand_requests_leave_no_growth_in_live_objects() -> None:
    app = _app()
    await _drive(app, WARMUP)
    gc.collect()
    tracemalloc.start()
    try:
        await _drive(app, 100)  # let tracemalloc's own first allocations settle
        gc.collect()
        before = sum(stat.count for stat in tracemalloc.take_snapshot().statistics("filename"))
        await _drive(app, REQUESTS)
        gc.collect()
        after = sum(stat.count for stat in tracemalloc.take_snapshot().statistics("filename"))
    finally:
        tracemalloc.stop()
    assert after - before < BOUND, f"{after - before} live allocations more after {REQUESTS:,}"
