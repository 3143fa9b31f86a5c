"""BlackSheep apps for each scenario, written as its documentation shows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from blacksheep import Application, Request, Response, StreamedContent, json, text
from blacksheep.server.responses import file
from blacksheep.server.routing import Router
from blacksheep.server.websocket import WebSocket

from benchmarks import scenarios as sc
from benchmarks.harness import ASGIApp
from benchmarks.scenarios import Fixtures

QUERY_NAMES = tuple(name for name, _ in sc.QUERY)
FORM_NAMES = tuple(name for name, _ in sc.FORM)


async def plaintext() -> Response:
    """Answer the plaintext greeting."""
    return text("Hello, World!")


async def json_view() -> Response:
    """Answer the JSON greeting."""
    return json({"message": "Hello, World!"})


async def user(user_id: int) -> Response:
    """Answer the converted path param."""
    return text(str(user_id))


async def other(x: int) -> Response:
    """One of the 1,000 routes that never match."""
    return text("other")


async def query(request: Request) -> Response:
    """Read 10 query params by name."""
    params = request.query
    return text(",".join([params[name][0] for name in QUERY_NAMES]))


async def form(request: Request) -> Response:
    """Parse the urlencoded form, answer its 10 values."""
    data: Any = await request.form()
    return text(",".join([data[name] for name in FORM_NAMES]))


async def upload(request: Request) -> Response:
    """Parse the multipart body, read the file, answer its size."""
    files = await request.files("file")
    return text(str(len(files[0].data)))


async def websocket(ws: WebSocket) -> None:
    """Accept, echo 100 text messages, close."""
    await sc.echo(ws)


async def _chunks() -> AsyncIterator[bytes]:
    async for chunk in sc.stream_chunks():
        yield chunk
    yield b""  # BlackSheep's StreamedContent ends on an empty chunk


async def stream() -> Response:
    """Stream 16 chunks from an async generator."""
    return Response(200, content=StreamedContent(b"text/plain", _chunks))


def _app(*routes: tuple[str, str, Callable[..., Any]]) -> ASGIApp:
    # Its own router: by default BlackSheep apps share one global router.
    app = Application(router=Router(), show_error_details=False)
    for method, path, handler in routes:
        if method == "WS":
            app.router.add_ws(path, handler)
        else:
            app.router.add(method, path, handler)
    return app


def _user_app(extra: int) -> ASGIApp:
    routes = [("GET", p.replace("{x}", "{int:x}"), other) for p in sc.extra_route_paths()[:extra]]
    return _app(*routes, ("GET", "/users/{int:user_id}", user))


def _file_app(fixtures: Fixtures) -> ASGIApp:
    path = str(fixtures.file_path)

    async def serve() -> Response:
        return file(path, "application/octet-stream")

    return _app(("GET", sc.FILE_URL, serve))


APPS = {
    "plaintext": lambda fx: _app(("GET", "/plaintext", plaintext)),
    "json": lambda fx: _app(("GET", "/json", json_view)),
    "param_1": lambda fx: _user_app(0),
    "param_1000": lambda fx: _user_app(sc.N_EXTRA_ROUTES),
    "query_10": lambda fx: _app(("GET", "/query", query)),
    "form_10": lambda fx: _app(("POST", "/form", form)),
    "multipart_1mib": lambda fx: _app(("POST", "/upload", upload)),
    "websocket_100": lambda fx: _app(("WS", "/ws", websocket)),
    "streaming": lambda fx: _app(("GET", "/stream", stream)),
    "file_1mib": _file_app,
}
# Its handlers answer with response objects in both: the same apps serve both.
APPS["plaintext_object"] = APPS["plaintext"]
APPS["json_object"] = APPS["json"]


def e2e_app() -> ASGIApp:
    """The plaintext + JSON app served end to end."""
    return _app(("GET", "/plaintext", plaintext), ("GET", "/json", json_view))
