"""microasgi apps for each scenario, written against the public API (shared/API.md).

Handlers return plain values where API.md allows it (str, dict), since that is how users write
them. A scenario whose feature has not landed raises ``Unavailable`` instead of being faked.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from benchmarks import scenarios as sc
from benchmarks.harness import ASGIApp, Unavailable
from benchmarks.scenarios import Fixtures
from microasgi import App, JSONResponse, PlainTextResponse, Request, StreamingResponse
from microasgi.authentication import AuthCredentials, AuthenticationBackend, SimpleUser, requires
from microasgi.middleware.authentication import AuthenticationMiddleware

QUERY_NAMES = tuple(name for name, _ in sc.QUERY)
FORM_NAMES = tuple(name for name, _ in sc.FORM)


def _require(module: str, name: str | None = None) -> Any:
    """Import a microasgi feature or report the scenario as not available."""
    try:
        mod = importlib.import_module(module)
        return getattr(mod, name) if name else mod
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"{module}{'.' + name if name else ''} not available: {exc}") from exc


async def plaintext(request: Request) -> str:
    """Answer the plaintext greeting."""
    return "Hello, World!"


async def json_view(request: Request) -> dict[str, str]:
    """Answer the JSON greeting."""
    return {"message": "Hello, World!"}


async def plaintext_object(request: Request) -> PlainTextResponse:
    """Answer the plaintext greeting as a response object, as many users write it."""
    return PlainTextResponse("Hello, World!")


async def json_object(request: Request) -> JSONResponse:
    """Answer the JSON greeting as a response object."""
    return JSONResponse({"message": "Hello, World!"})


async def user(request: Request, user_id: int) -> str:
    """Answer the converted path param."""
    return str(user_id)


async def other(request: Request, x: int) -> str:
    """One of the 1,000 routes that never match."""
    return "other"


async def query(request: Request) -> str:
    """Read 10 query params by name."""
    params = request.query
    return ",".join([params[name] for name in QUERY_NAMES])


async def form(request: Request) -> str:
    """Parse the urlencoded form, answer its 10 values."""
    data: Any = await request.form()  # looked up as every other app does: no str() per value
    return ",".join([data[name] for name in FORM_NAMES])


async def upload(request: Request) -> str:
    """Parse the multipart body, read the file, answer its size."""
    data = await request.form()
    file = data["file"]
    assert not isinstance(file, str)
    content = await file.read()
    await file.close()
    return str(len(content))


async def stream(request: Request) -> StreamingResponse:
    """Stream 16 chunks from an async generator."""
    return StreamingResponse(sc.stream_chunks(), media_type="text/plain")


def _sse_app(fixtures: Fixtures) -> ASGIApp:
    sse = _require("microasgi.sse")

    async def events(request: Request) -> Any:
        """Stream 16 events from an async generator (with the default ping)."""
        return sse.EventSourceResponse(
            sc.sse_events(lambda event_id, data: sse.ServerSentEvent(data, id=event_id))
        )

    return _app("GET", "/events", events)


def _app(method: str, path: str, handler: Callable[..., Any]) -> App:
    app = App()
    app.route(path, methods=[method])(handler)
    return app


def _user_app(extra: int) -> ASGIApp:
    app = App()
    for i, path in enumerate(sc.extra_route_paths()[:extra]):
        app.get(path.replace("{x}", "{x:int}"), name=f"other{i}")(other)
    app.get("/users/{user_id:int}")(user)
    return app


def _forms_app(path: str, handler: Callable[..., Any]) -> Callable[[Fixtures], ASGIApp]:
    def build(fixtures: Fixtures) -> ASGIApp:
        _require("microasgi.formparsers")
        if not hasattr(Request, "form"):
            raise Unavailable("Request.form not available")
        return _app("POST", path, handler)

    return build


def _websocket_app(fixtures: Fixtures) -> ASGIApp:
    _require("microasgi.websockets", "WebSocket")
    if not hasattr(App, "websocket"):
        raise Unavailable("App.websocket not available")
    app = App()

    @app.websocket("/ws")
    async def websocket(ws: Any) -> None:
        await sc.echo(ws)

    return app


def _file_app(fixtures: Fixtures) -> ASGIApp:
    file_response = _require("microasgi", "FileResponse")
    path = fixtures.file_path

    async def serve(request: Request) -> Any:
        return file_response(path)

    return _app("GET", sc.FILE_URL, serve)


async def session_user(request: Request) -> str:
    """Answer the user the signed session names."""
    return str(request.session["user"])


def _session_app(fixtures: Fixtures) -> ASGIApp:
    middleware = _require("microasgi.middleware.sessions", "SessionMiddleware")
    app = _app("GET", "/session", session_user)
    app.add_middleware(middleware, secret_key=sc.SESSION_SECRET)
    return app


def _auth_app(fixtures: Fixtures) -> ASGIApp:
    users = {sc.BEARER_TOKEN: (AuthCredentials(["authenticated"]), SimpleUser("ada"))}

    class TokenBackend(AuthenticationBackend):
        async def authenticate(self, conn: Any) -> Any:
            kind, _, token = conn.headers.get("authorization", "").partition(" ")
            return users.get(token) if kind.lower() == "bearer" else None

    @requires("authenticated")
    async def me(request: Request) -> str:
        return str(request.user.display_name)

    app = _app("GET", "/me", me)
    app.add_middleware(AuthenticationMiddleware, backend=TokenBackend())
    return app


def _hooks_app(fixtures: Fixtures) -> ASGIApp:
    app = App()
    if not hasattr(app, "before_request"):
        raise Unavailable("App.before_request not available")

    @app.before_request
    async def greet(request: Request) -> None:
        request.state.greeting = "Hello, World!"

    @app.after_request
    async def stamp(request: Request, response: Any) -> Any:
        response.headers[sc.HOOK_HEADER[0].decode()] = sc.HOOK_HEADER[1].decode()
        return response

    @app.get("/hooks")
    async def hooked(request: Request) -> str:
        return str(request.state.greeting)

    return app


APPS: dict[str, Callable[[Fixtures], ASGIApp]] = {
    "plaintext": lambda fx: _app("GET", "/plaintext", plaintext),
    "json": lambda fx: _app("GET", "/json", json_view),
    "plaintext_object": lambda fx: _app("GET", "/plaintext", plaintext_object),
    "json_object": lambda fx: _app("GET", "/json", json_object),
    "param_1": lambda fx: _user_app(0),
    "param_1000": lambda fx: _user_app(sc.N_EXTRA_ROUTES),
    "query_10": lambda fx: _app("GET", "/query", query),
    "form_10": _forms_app("/form", form),
    "multipart_1mib": _forms_app("/upload", upload),
    "websocket_100": _websocket_app,
    "streaming": lambda fx: _app("GET", "/stream", stream),
    "sse": _sse_app,
    "file_1mib": _file_app,
    "session_read": _session_app,
    "auth_requires": _auth_app,
    "hooks": _hooks_app,
}


def e2e_app() -> ASGIApp:
    """The plaintext + JSON app served end to end."""
    app = App()
    app.get("/plaintext")(plaintext)
    app.get("/json")(json_view)
    return app
