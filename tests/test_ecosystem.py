"""microasgi with the real packages users combine it with: error reporting (sentry-sdk),
tracing (OpenTelemetry), asgi-lifespan, asgiref's WSGI adapter (Flask), and a user's test
suite that treats warnings as errors.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import sentry_sdk
from asgi_harness import DISCONNECT, body_of, http_scope, run
from asgi_lifespan import LifespanManager
from asgiref.wsgi import WsgiToAsgi
from flask import Flask
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sentry_sdk.envelope import Envelope
from sentry_sdk.integrations.asgi import SentryAsgiMiddleware
from sentry_sdk.transport import Transport

from microasgi import App, Request, WebSocket, WebSocketDisconnect
from microasgi.testing import TestClient

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

pytestmark = pytest.mark.anyio


class OrderFailed(Exception):
    """The error a handler raises in these stories."""


def shop() -> App:
    """An app whose /order fails and whose /live WebSocket fails after accept."""
    app = App()

    @app.post("/order")
    async def order(request: Request) -> str:
        raise OrderFailed("payment service down")

    @app.get("/ok")
    async def ok(request: Request) -> str:
        return "fine"

    @app.websocket("/live")
    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        raise OrderFailed("live feed broke")

    return app


# --- sentry-sdk ------------------------------------------------------------------------


class Captured(Transport):
    """sentry-sdk's transport, keeping the events in memory instead of sending them."""

    events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        """Keep each event of ``envelope``."""
        for item in envelope.items:
            event = item.get_event()
            if event is not None:
                Captured.events.append(event)


@pytest.fixture
def sentry() -> Iterator[list[dict[str, Any]]]:
    """sentry-sdk initialised with an in-memory transport; the events it captured."""
    Captured.events = []
    sentry_sdk.init(
        dsn="https://public@sentry.invalid/1",
        transport=Captured,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    try:
        yield Captured.events
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


def exception_types(events: list[dict[str, Any]]) -> list[str]:
    return [value["type"] for e in events for value in e.get("exception", {}).get("values", [])]


@pytest.mark.parametrize("how", ["wrapping the app", "add_middleware"])
async def test_sentry_sees_a_handlers_error_and_the_client_still_gets_its_500(
    sentry: list[dict[str, Any]], how: str
) -> None:
    app: Any = shop()
    if how == "add_middleware":
        app.add_middleware(SentryAsgiMiddleware)
    else:
        app = SentryAsgiMiddleware(app)
    async with TestClient(app, raise_server_exceptions=False) as client:
        failed = await client.post("/order")
        fine = await client.get("/ok")
    assert (failed.status_code, failed.text) == (500, "Internal Server Error")
    assert fine.text == "fine"
    assert exception_types(sentry) == ["OrderFailed"]  # one event, for the one error


async def test_sentry_sees_a_websocket_handlers_error_after_its_1011(
    sentry: list[dict[str, Any]],
) -> None:
    app = SentryAsgiMiddleware(shop())
    codes: list[int] = []
    async with (
        TestClient(app, raise_server_exceptions=False) as client,
        client.websocket_connect("/live") as ws,
    ):
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
        codes.append(closed.value.code)
    assert codes == [1011]
    assert exception_types(sentry) == ["OrderFailed"]


# --- OpenTelemetry ------------------------------------------------------------------------


async def test_opentelemetry_records_the_error_and_passes_it_on() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = OpenTelemetryMiddleware(shop(), tracer_provider=provider)
    async with TestClient(app) as client:
        # Through the middleware to the server: what an APM agent further out sees too.
        with pytest.raises(OrderFailed, match="payment service down"):
            await client.post("/order")
    (server,) = [s for s in exporter.get_finished_spans() if s.parent is None]
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes is not None
    assert server.attributes["http.status_code"] == 500


# --- asgi-lifespan ------------------------------------------------------------------------


@pytest.mark.parametrize("with_mounts", [False, True])
async def test_asgi_lifespan_raises_a_failed_startups_error_at_once(with_mounts: bool) -> None:
    app = App()
    if with_mounts:
        app.mount("/admin", App())
        app.mount("/api", App())

    @app.on_startup
    async def connect() -> None:
        raise ConnectionError("database unreachable")

    # The manager's own timeout would say nothing of the cause: the error comes first.
    with anyio.fail_after(3), pytest.raises(Exception) as raised:  # noqa: PT011
        async with LifespanManager(app, startup_timeout=30):
            pass
    error = raised.value
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]  # on trio, the manager's nursery wraps it
    assert isinstance(error, ConnectionError)
    assert str(error) == "database unreachable"


async def test_asgi_lifespan_runs_startup_and_shutdown() -> None:
    app = App()
    events: list[str] = []

    @app.lifespan
    async def lifespan(app: App) -> Any:
        events.append("up")
        yield {"pool": "ready"}
        events.append("down")

    @app.get("/pool")
    async def pool(request: Request) -> str:
        return str(request.state.pool)

    async with LifespanManager(app) as manager:
        assert events == ["up"]
        # A request through the manager's app sees the state the lifespan yielded.
        sent = await run(manager.app, http_scope("/pool"), then=DISCONNECT, after_response=True)
        assert body_of(sent) == b"ready"
    assert events == ["up", "down"]


# --- Flask, mounted through asgiref's WsgiToAsgi -----------------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # asgiref runs on asyncio only
async def test_flask_mounted_through_wsgi_to_asgi_raises_no_warning() -> None:
    legacy = Flask("legacy")

    @legacy.get("/hello")
    def hello() -> str:
        return "hello from Flask"

    app = App()
    app.mount("/legacy", WsgiToAsgi(legacy))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as a project that treats warnings as errors
        async with TestClient(app) as client:
            response = await client.get("/legacy/hello")
    assert (response.status_code, response.text) == (200, "hello from Flask")


# --- a user's own test suite, with warnings as errors -----------------------------------

USER_TESTS = """
import anyio
import pytest

from microasgi import App, Request, WebSocket
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio

admin = App()


@admin.on_startup
async def admin_up() -> None:
    pass


app = App()
app.mount("/admin", admin)


@app.lifespan
async def lifespan(app):
    yield {"greeting": "hello"}


@app.get("/")
async def index(request: Request) -> str:
    return request.state.greeting


@app.websocket("/echo")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


async def test_the_whole_app():
    async with TestClient(app) as client:
        assert (await client.get("/")).text == "hello"
        async with client.websocket_connect("/echo") as ws:
            await ws.send_text("hi")
            assert await ws.receive_text() == "hi"


async def test_a_test_that_leaves_a_websocket_early():
    async with TestClient(app) as client:
        async with client.websocket_connect("/echo") as ws:
            await ws.send_text("bye")
"""


def test_a_users_suite_with_warnings_as_errors_passes(tmp_path: Path) -> None:
    test_file = tmp_path / "test_users_app.py"
    test_file.write_text(textwrap.dedent(USER_TESTS))
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "4 passed" in result.stdout
