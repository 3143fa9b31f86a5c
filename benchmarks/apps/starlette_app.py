"""Starlette apps for each scenario, written as its documentation shows."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from benchmarks import scenarios as sc
from benchmarks.harness import ASGIApp
from benchmarks.scenarios import Fixtures

QUERY_NAMES = tuple(name for name, _ in sc.QUERY)
FORM_NAMES = tuple(name for name, _ in sc.FORM)


async def plaintext(request: Request) -> Response:
    """Answer the plaintext greeting."""
    return PlainTextResponse("Hello, World!")


async def json_view(request: Request) -> Response:
    """Answer the JSON greeting."""
    return JSONResponse({"message": "Hello, World!"})


async def user(request: Request) -> Response:
    """Answer the converted path param."""
    return PlainTextResponse(str(request.path_params["user_id"]))


async def other(request: Request) -> Response:
    """One of the 1,000 routes that never match."""
    return PlainTextResponse("other")


async def query(request: Request) -> Response:
    """Read 10 query params by name."""
    params = request.query_params
    return PlainTextResponse(",".join([params[name] for name in QUERY_NAMES]))


async def form(request: Request) -> Response:
    """Parse the urlencoded form, answer its 10 values."""
    async with request.form() as form:
        data: Any = form  # looked up as every other app does: no str() per value
        return PlainTextResponse(",".join([data[name] for name in FORM_NAMES]))


async def upload(request: Request) -> Response:
    """Parse the multipart body, read the file, answer its size."""
    async with request.form() as data:
        file = data["file"]
        assert not isinstance(file, str)
        content = await file.read()
    return PlainTextResponse(str(len(content)))


async def websocket(ws: WebSocket) -> None:
    """Accept, echo 100 text messages, close."""
    await sc.echo(ws)


async def stream(request: Request) -> Response:
    """Stream 16 chunks from an async generator."""
    return StreamingResponse(sc.stream_chunks(), media_type="text/plain")


def _app(*routes: Route | WebSocketRoute | Mount) -> ASGIApp:
    return Starlette(routes=list(routes))


def _user_app(extra: int) -> ASGIApp:
    routes = [Route(p.replace("{x}", "{x:int}"), other) for p in sc.extra_route_paths()[:extra]]
    return _app(*routes, Route("/users/{user_id:int}", user))


def _file_app(fixtures: Fixtures) -> ASGIApp:
    path = fixtures.file_path

    async def serve(request: Request) -> Response:
        return FileResponse(path)

    return _app(Route(sc.FILE_URL, serve))


APPS = {
    "plaintext": lambda fx: _app(Route("/plaintext", plaintext)),
    "json": lambda fx: _app(Route("/json", json_view)),
    "param_1": lambda fx: _user_app(0),
    "param_1000": lambda fx: _user_app(sc.N_EXTRA_ROUTES),
    "query_10": lambda fx: _app(Route("/query", query)),
    "form_10": lambda fx: _app(Route("/form", form, methods=["POST"])),
    "multipart_1mib": lambda fx: _app(Route("/upload", upload, methods=["POST"])),
    "websocket_100": lambda fx: _app(WebSocketRoute("/ws", websocket)),
    "streaming": lambda fx: _app(Route("/stream", stream)),
    "file_1mib": _file_app,
}


def e2e_app() -> ASGIApp:
    """The plaintext + JSON app served end to end."""
    return _app(Route("/plaintext", plaintext), Route("/json", json_view))
