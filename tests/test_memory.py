"""Per-request work stays flat: many requests leave no growing pile of live objects."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest

from microasgi import App, Request
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

    return app


async def _drive(app: App, count: int) -> None:
    body_message: Message = {"type": "http.request", "body": b"payload", "more_body": False}

    async def receive() -> Message:
        return body_message

    async def send(message: Message) -> None:
        pass

    for n in range(count):
        post = n % 2
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST" if post else "GET",
            "scheme": "http",
            "path": "/echo" if post else f"/users/{n % 1000}",
            "raw_path": b"/",
            "root_path": "",
            "query_string": b"q=1",
            "headers": [(b"host", b"h"), (b"ua", b"t"), (b"content-length", b"7")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)


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
