"""Falcon (ASGI) apps for each scenario, written as its documentation shows."""

from __future__ import annotations

from typing import Any, cast

import falcon
import falcon.asgi

from benchmarks import scenarios as sc
from benchmarks.harness import ASGIApp
from benchmarks.scenarios import Fixtures

QUERY_NAMES = tuple(name for name, _ in sc.QUERY)
FORM_NAMES = tuple(name for name, _ in sc.FORM)
Req = falcon.asgi.Request
Resp = falcon.asgi.Response


class Plaintext:
    """Answer the plaintext greeting."""

    async def on_get(self, req: Req, resp: Resp) -> None:
        """GET."""
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "Hello, World!"


class Json:
    """Answer the JSON greeting."""

    async def on_get(self, req: Req, resp: Resp) -> None:
        """GET."""
        resp.media = {"message": "Hello, World!"}


class User:
    """Answer the converted path param."""

    async def on_get(self, req: Req, resp: Resp, user_id: int) -> None:
        """GET."""
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = str(user_id)


class Other:
    """One of the 1,000 routes that never match."""

    async def on_get(self, req: Req, resp: Resp, x: int) -> None:
        """GET."""
        resp.text = "other"


class Query:
    """Read 10 query params by name."""

    async def on_get(self, req: Req, resp: Resp) -> None:
        """GET."""
        get = req.get_param
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = ",".join([get(name) or "" for name in QUERY_NAMES])


class Form:
    """Parse the urlencoded form, answer its 10 values."""

    async def on_post(self, req: Req, resp: Resp) -> None:
        """POST."""
        data: Any = await req.get_media()
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = ",".join([data[name] for name in FORM_NAMES])


class Upload:
    """Parse the multipart body, read the file, answer its size."""

    async def on_post(self, req: Req, resp: Resp) -> None:
        """POST."""
        form: Any = await req.get_media()
        size = -1
        async for part in form:
            if part.name == "file":
                size = len(await part.stream.read())
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = str(size)


class Echo:
    """Accept, echo 100 text messages, close."""

    async def on_websocket(self, req: Req, ws: falcon.asgi.WebSocket) -> None:
        """WebSocket."""
        await sc.echo(ws)


class Stream:
    """Stream 16 chunks from an async generator."""

    async def on_get(self, req: Req, resp: Resp) -> None:
        """GET."""
        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = sc.stream_chunks()


def _app(*routes: tuple[str, object]) -> ASGIApp:
    app: falcon.asgi.App[Any, Any] = falcon.asgi.App()
    for path, resource in routes:
        app.add_route(path, resource)
    return cast(ASGIApp, app)


def _user_app(extra: int) -> ASGIApp:
    other = Other()
    routes = [(p.replace("{x}", "{x:int}"), other) for p in sc.extra_route_paths()[:extra]]
    return _app(*routes, ("/users/{user_id:int}", User()))


def _file_app(fixtures: Fixtures) -> ASGIApp:
    # Falcon has no FileResponse; a static route is how it serves a file.
    app: falcon.asgi.App[Any, Any] = falcon.asgi.App()
    app.add_static_route(sc.FILE_URL.rsplit("/", 1)[0], fixtures.directory)
    return cast(ASGIApp, app)


APPS = {
    "plaintext": lambda fx: _app(("/plaintext", Plaintext())),
    "json": lambda fx: _app(("/json", Json())),
    "param_1": lambda fx: _user_app(0),
    "param_1000": lambda fx: _user_app(sc.N_EXTRA_ROUTES),
    "query_10": lambda fx: _app(("/query", Query())),
    "form_10": lambda fx: _app(("/form", Form())),
    "multipart_1mib": lambda fx: _app(("/upload", Upload())),
    "websocket_100": lambda fx: _app(("/ws", Echo())),
    "streaming": lambda fx: _app(("/stream", Stream())),
    "file_1mib": _file_app,
}
# Its handlers answer with response objects in both: the same apps serve both.
APPS["plaintext_object"] = APPS["plaintext"]
APPS["json_object"] = APPS["json"]


def e2e_app() -> ASGIApp:
    """The plaintext + JSON app served end to end."""
    return _app(("/plaintext", Plaintext()), ("/json", Json()))
