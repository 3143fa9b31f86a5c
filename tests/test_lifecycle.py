"""A request's life from App.__call__ to the last send: the reproduced failures of the
lifecycle, each as a user meets it (in process; tests/interop/test_lifecycle.py runs the
same under real servers).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import trio
import trio.testing
from asgi_harness import (
    DISCONNECT,
    Recorder,
    body_of,
    drive_lifespan,
    http_scope,
    request_body,
    run,
    start_of,
)

from microasgi import App, HTTPException, PlainTextResponse, Request, Router, WebSocket
from microasgi._types import Message, Receive, Scope, Send
from microasgi.middleware.cors import CORSMiddleware
from microasgi.testing import TestClient, WebSocketDenied

pytestmark = pytest.mark.anyio


# --- 1. no response waits on a body its handler did not read ---------------------------


def in_virtual_time(body: Callable[[], Awaitable[None]]) -> float:
    """Run ``body`` on trio with a clock that jumps whenever every task waits; return
    the virtual seconds it took: any wait on a timer shows, and costs no real time."""
    clock = trio.testing.MockClock(autojump_threshold=0)

    async def timed() -> float:
        start = trio.current_time()
        await body()
        return trio.current_time() - start

    return trio.run(timed, clock=clock)


def a_client_that_sends_its_body_after_the_response(
    chunks: list[Message],
) -> tuple[Receive, Recorder]:
    """A server's receive for a client whose body (``chunks``) arrives only once the
    response is complete (then it leaves); and the recording send."""
    send = Recorder()
    waiting = list(chunks)

    async def receive() -> Message:
        await send.finished.wait()
        return waiting.pop(0) if waiting else dict(DISCONNECT)

    return receive, send


def test_a_401_to_a_slow_upload_is_not_held_until_its_body_comes() -> None:
    app = App()

    @app.post("/upload")
    async def upload(request: Request) -> str:
        raise HTTPException(401)

    scope = http_scope("/upload", "POST", headers=[("content-length", "5")])
    receive, send = a_client_that_sends_its_body_after_the_response(request_body(b"hello"))

    async def request() -> None:
        await app(scope, receive, send)

    assert in_virtual_time(request) == 0  # it waited on no timer
    assert start_of(send.messages)["status"] == 401


def test_a_handler_reading_through_request_receive_is_not_held_at_the_end() -> None:
    app = App()

    @app.post("/raw")
    async def raw(request: Request) -> str:
        received = b""
        while True:  # as a user reading the ASGI channel directly does
            message = await request.receive()
            received += message.get("body", b"")
            if not message.get("more_body", False):
                return f"{len(received)} bytes"

    scope = http_scope("/raw", "POST", headers=[("content-length", "10")])
    messages = request_body(b"hello", b"world")
    send = Recorder()

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await send.finished.wait()  # as uvicorn does once the body is over
        return dict(DISCONNECT)

    async def request() -> None:
        await app(scope, receive, send)

    assert in_virtual_time(request) == 0
    assert body_of(send.messages) == b"10 bytes"


# --- 2. is_disconnected sees a client that left, on asyncio and on trio ------------------


def servers_channel() -> tuple[Callable[[Message], None], Receive]:
    """A real server's queue of client messages: trio's channel (hypercorn -k trio) on
    trio, asyncio's Queue (uvicorn, hypercorn -k asyncio) on asyncio."""
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        queue: asyncio.Queue[Message] = asyncio.Queue()
        return queue.put_nowait, queue.get
    put, take = trio.open_memory_channel[Message](10)
    return put.send_nowait, take.receive


async def test_is_disconnected_sees_the_client_leave() -> None:
    app = App()
    seen: list[bool] = []
    waiting = anyio.Event()

    @app.get("/poll")
    async def poll(request: Request) -> str:
        for _ in range(200):  # a long-poll, bounded
            if await request.is_disconnected():
                seen.append(True)
                return "gone"
            waiting.set()
            await anyio.sleep(0.01)
        seen.append(False)
        return "still there?"

    put, receive = servers_channel()
    put({"type": "http.request", "body": b"", "more_body": False})
    send = Recorder()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(app, http_scope("/poll"), receive, send)
            await waiting.wait()
            put(dict(DISCONNECT))
    assert seen == [True]


# --- 3. errors are answered, then reach the server ----------------------------------------


async def test_an_error_is_answered_then_reaches_the_server() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        raise ZeroDivisionError("bug")

    sent = await run(app, http_scope("/"), then=DISCONNECT, raises=ZeroDivisionError)
    assert start_of(sent)["status"] == 500
    assert body_of(sent) == b"Internal Server Error"


# --- 4. one error layer for the whole App ------------------------------------------------


class Failing:
    """A user's middleware with a bug."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/broken-middleware":
            raise PermissionError("middleware said no")
        await self.app(scope, receive, send)


async def test_the_apps_handlers_answer_errors_raised_in_its_middleware() -> None:
    app = App()
    app.add_middleware(Failing)

    @app.exception_handler(PermissionError)
    async def forbidden(request: Request, exc: PermissionError) -> tuple[str, int]:
        return f"forbidden: {exc}", 403

    async with TestClient(app) as client:
        response = await client.get("/broken-middleware")
    assert (response.status_code, response.text) == (403, "forbidden: middleware said no")


async def test_the_apps_500_handler_shapes_an_error_raised_in_middleware() -> None:
    app = App()
    app.add_middleware(Failing)

    @app.exception_handler(500)
    async def oops(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("the app's 500", 500)

    async with TestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/broken-middleware")
    assert (response.status_code, response.text) == (500, "the app's 500")


async def test_a_mounted_routers_errors_meet_the_apps_handlers_and_debug() -> None:
    api = Router()

    @api.get("/gone")
    async def gone(request: Request) -> str:
        raise LookupError("no such thing")

    @api.get("/bug")
    async def bug(request: Request) -> str:
        raise ZeroDivisionError("visible with debug")

    app = App(debug=True)
    app.mount("/api", api)

    @app.exception_handler(LookupError)
    async def missing(request: Request, exc: LookupError) -> tuple[str, int]:
        return "handled by the app", 404

    async with TestClient(app, raise_server_exceptions=False) as client:
        handled = await client.get("/api/gone")
        failed = await client.get("/api/bug")
    assert (handled.status_code, handled.text) == (404, "handled by the app")
    assert failed.status_code == 500
    assert "ZeroDivisionError: visible with debug" in failed.text


async def test_a_handler_typed_for_requests_is_not_given_a_websocket() -> None:
    app = App()

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError) -> tuple[str, int]:
        return f"bad value at {request.url.path}", 400

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        raise ValueError("in a websocket")

    @app.get("/page")
    async def page(request: Request) -> str:
        raise ValueError("in a page")

    async with TestClient(app, raise_server_exceptions=False) as client:
        assert (await client.get("/page")).text == "bad value at /page"
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/ws"):
                pass
    assert denied.value.response.status_code == 500  # the default, not the handler's


async def test_an_http_exception_raised_in_a_task_group_keeps_its_status() -> None:
    app = App()

    @app.get("/items/{n:int}")
    async def item(request: Request, n: int) -> str:
        async def check() -> None:
            raise HTTPException(404, f"no item {n}")

        async with anyio.create_task_group() as group:
            group.start_soon(check)
        return "found"

    async with TestClient(app) as client:
        response = await client.get("/items/7")
    assert (response.status_code, response.text) == (404, "no item 7")


# --- 5. configuration errors fail startup, not the first request -------------------------


async def lifespan_replies(app: App) -> tuple[list[Message], Exception | None]:
    """What the app answered a server's lifespan startup, and what it raised."""
    run = await drive_lifespan(app, shutdown=False)
    return run.replies, run.error


async def test_an_unknown_converter_fails_startup() -> None:
    app = App()

    @app.get("/items/{item_id:slug}")
    async def item(request: Request, item_id: str) -> str:
        return item_id

    replies, error = await lifespan_replies(app)
    assert [m["type"] for m in replies] == ["lifespan.startup.failed"]
    assert "slug" in replies[0]["message"]
    assert isinstance(error, LookupError)


async def test_a_middleware_option_typo_fails_startup() -> None:
    app = App()
    app.add_middleware(CORSMiddleware, allow_orgins=["https://example.com"])
    replies, error = await lifespan_replies(app)
    assert [m["type"] for m in replies] == ["lifespan.startup.failed"]
    assert "allow_orgins" in replies[0]["message"]
    assert isinstance(error, TypeError)
    with pytest.raises(TypeError, match="allow_orgins"):
        async with TestClient(app):
            pass


# --- 6. a failed startup ends the lifespan call at once -----------------------------------


async def test_a_failed_startup_with_mounted_apps_ends_the_call_at_once() -> None:
    child = App()
    app = App()
    app.mount("/child", child)

    @app.on_startup
    async def connect() -> None:
        raise ConnectionError("database unreachable")

    replies, error = await lifespan_replies(app)
    assert [m["type"] for m in replies] == ["lifespan.startup.failed"]
    assert isinstance(error, ConnectionError)


# --- 9. sync startup and shutdown hooks ----------------------------------------------------


async def test_sync_startup_and_shutdown_hooks_run() -> None:
    app = App()
    events: list[str] = []

    @app.on_startup
    def open_pool() -> None:
        events.append("opened")

    @app.on_shutdown
    def close_pool() -> None:
        events.append("closed")

    async with TestClient(app) as client:
        assert events == ["opened"]
        assert (await client.get("/nothing")).status_code == 404
    assert events == ["opened", "closed"]


# --- a sync decorator around an async handler (issue 15, item 5) -------------------------


def login_required(handler: Callable[..., Any]) -> Callable[..., Any]:
    """A typical decorator, written as a plain function around an async handler."""

    @functools.wraps(handler)
    def wrapper(connection: Any, *args: Any, **kwargs: Any) -> Any:
        if connection.headers.get("authorization") != "Bearer ok":
            raise HTTPException(401)
        return handler(connection, *args, **kwargs)

    return wrapper


async def test_a_sync_decorator_around_an_async_handler_works() -> None:
    app = App()

    @app.get("/me/{name}")
    @login_required
    async def me(request: Request, name: str) -> str:
        await anyio.lowlevel.checkpoint()
        return f"hello {name}"

    @app.websocket("/live")
    @login_required
    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("live")

    headers = {"authorization": "Bearer ok"}
    async with TestClient(app) as client:
        assert (await client.get("/me/ada", headers=headers)).text == "hello ada"
        assert (await client.get("/me/ada")).status_code == 401
        async with client.websocket_connect("/live", headers=headers) as ws:
            assert await ws.receive_text() == "live"
