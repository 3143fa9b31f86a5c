"""Lifespan: hooks, the generator, state, failures, and mounted apps' lifespans."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from asgi_harness import drive_lifespan, http_scope, run

from microasgi import App, Request
from microasgi._types import Message, Receive, Scope, Send
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio


async def drive(app: Any, *, shutdown: bool = True) -> tuple[list[str], dict[str, Any]]:
    """Play the server's part of the lifespan protocol; return what the app sent."""
    run = await drive_lifespan(app, shutdown=shutdown)
    return run.summary(), run.state


async def test_order_of_generator_hooks_and_mounted_apps() -> None:
    events: list[str] = []
    app = App()
    child = App()

    @app.lifespan
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        events.append("gen-start")
        yield {"pool": "P"}
        events.append("gen-stop")

    @app.on_startup
    async def up() -> None:
        events.append("hook-start")

    @app.on_shutdown
    async def down() -> None:
        events.append("hook-stop")

    @child.on_startup
    async def child_up() -> None:
        events.append("child-start")

    @child.on_shutdown
    async def child_down() -> None:
        events.append("child-stop")

    app.mount("/child", child)
    replies, state = await drive(app)
    assert replies == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == [
        "gen-start",
        "hook-start",
        "child-start",
        "child-stop",
        "hook-stop",
        "gen-stop",
    ]
    assert state == {"pool": "P"}


async def test_state_reaches_requests_including_a_mounted_apps() -> None:
    app = App()
    child = App()

    @app.lifespan
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        yield {"pool": "parent-pool"}

    @child.lifespan
    async def child_lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        yield {"cache": "child-cache"}

    @child.get("/")
    async def read(request: Request) -> dict[str, str]:
        return {"pool": request.state.pool, "cache": request.state.cache}

    app.mount("/child", child)
    async with TestClient(app) as client:
        response = await client.get("/child/")
    assert response.json() == {"pool": "parent-pool", "cache": "child-cache"}


async def test_async_context_manager_lifespan_via_constructor() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        events.append("enter")
        yield {"x": 1}
        events.append("exit")

    app = App(lifespan=lifespan)
    replies, state = await drive(app)
    assert replies == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["enter", "exit"]
    assert state == {"x": 1}


async def test_startup_failure_sends_failed_with_the_message() -> None:
    app = App()

    @app.on_startup
    async def broken() -> None:
        raise RuntimeError("database unreachable")

    replies, _ = await drive(app, shutdown=False)
    assert replies == ["lifespan.startup.failed:database unreachable"]


async def test_hook_failing_after_the_generator_yielded_runs_its_cleanup() -> None:
    events: list[str] = []
    app = App()

    @app.lifespan
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append("open")
        yield
        events.append("cleanup")

    @app.on_startup
    async def broken() -> None:
        raise RuntimeError("hook failed")

    replies, _ = await drive(app, shutdown=False)
    assert replies == ["lifespan.startup.failed:hook failed"]
    assert events == ["open", "cleanup"]


async def test_generator_failure_at_startup_and_at_shutdown() -> None:
    app = App()

    @app.lifespan
    async def early(app: App) -> AsyncIterator[None]:
        raise ValueError("no config")
        yield  # pragma: no cover

    replies, _ = await drive(app, shutdown=False)
    assert replies == ["lifespan.startup.failed:no config"]

    late = App()

    @late.lifespan
    async def fails_late(app: App) -> AsyncIterator[None]:
        yield
        raise ValueError("close failed")

    replies, _ = await drive(late)
    assert replies == ["lifespan.startup.complete", "lifespan.shutdown.failed:close failed"]


async def test_shutdown_hook_failure_still_runs_the_generator_cleanup() -> None:
    events: list[str] = []
    app = App()

    @app.lifespan
    async def lifespan(app: App) -> AsyncIterator[None]:
        yield
        events.append("cleanup")

    @app.on_shutdown
    async def broken() -> None:
        raise RuntimeError("flush failed")

    replies, _ = await drive(app)
    assert replies == ["lifespan.startup.complete", "lifespan.shutdown.failed:flush failed"]
    assert events == ["cleanup"]


async def test_generator_yielding_twice_is_a_clear_shutdown_failure() -> None:
    app = App()

    @app.lifespan
    async def twice(app: App) -> AsyncIterator[None]:
        yield
        yield

    replies, _ = await drive(app)
    assert replies[1].startswith("lifespan.shutdown.failed:")
    assert "more than once" in replies[1]


async def test_mounted_app_startup_failure_fails_the_parent() -> None:
    app = App()
    child = App()

    @child.on_startup
    async def broken() -> None:
        raise RuntimeError("child broke")

    app.mount("/c", child)
    replies, _ = await drive(app, shutdown=False)
    assert replies == ["lifespan.startup.failed:child broke"]


async def test_mounted_app_without_lifespan_support_is_tolerated() -> None:
    async def http_only(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http", "this app knows only http"

    async def returns_at_once(scope: Scope, receive: Receive, send: Send) -> None:
        return

    app = App()
    app.mount("/a", http_only)
    app.mount("/b", returns_at_once)
    replies, _ = await drive(app)
    assert replies == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_lifespan_yielding_a_non_dict_fails_startup() -> None:
    app = App()

    @app.lifespan
    async def bad(app: App) -> AsyncIterator[Any]:
        yield 42

    replies, _ = await drive(app, shutdown=False)
    assert replies[0].startswith("lifespan.startup.failed:")


async def test_test_client_raises_when_startup_fails() -> None:
    app = App()

    @app.on_startup
    async def broken() -> None:
        raise RuntimeError("nope")

    # The app's own error, as Starlette's TestClient raises it.
    with pytest.raises(RuntimeError, match=r"^nope$"):
        async with TestClient(app):
            pass
    with pytest.raises(RuntimeError, match="lifespan startup failed: nope") as info:
        async with TestClient(app, raise_server_exceptions=False):
            pass
    assert str(info.value.__cause__) == "nope"


async def test_state_without_server_support_falls_back_to_the_apps_copy() -> None:
    # A server whose lifespan scope has no "state" (older servers): requests still see it.
    app = App()

    @app.lifespan
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        yield {"pool": "P"}

    @app.get("/")
    async def read(request: Request) -> str:
        return str(request.state.pool)

    incoming = [{"type": "lifespan.startup"}]
    started = anyio.Event()

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        assert message["type"] == "lifespan.startup.complete"
        started.set()

    async with anyio.create_task_group() as group:
        group.start_soon(app, {"type": "lifespan"}, receive, send)
        with anyio.fail_after(5):
            await started.wait()
        http = await run(app, http_scope("/"))  # no "state" in the scope either
        group.cancel_scope.cancel()
    assert http[1]["body"] == b"P"
