"""Starlette apps for each scenario, written as its documentation shows."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
    requires,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
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
from benchmarks.harness import ASGIApp, Message, Receive, Scope, Send, Unavailable
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


def _sse_app(fixtures: Fixtures) -> ASGIApp:
    try:  # Starlette's server-sent events come from the sse-starlette package
        from sse_starlette import EventSourceResponse, ServerSentEvent
    except ImportError as exc:
        raise Unavailable(f"sse-starlette: {exc}") from exc

    async def events(request: Request) -> Response:
        """Stream 16 events from an async generator (with the default ping)."""
        return EventSourceResponse(
            sc.sse_events(lambda event_id, data: ServerSentEvent(data=data, id=event_id))
        )

    return _app(Route("/events", events))


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


async def session_user(request: Request) -> Response:
    """Answer the user the signed session names."""
    return PlainTextResponse(request.session["user"])


def _session_app(fixtures: Fixtures) -> ASGIApp:
    try:  # Starlette's sessions need itsdangerous
        from starlette.middleware.sessions import SessionMiddleware
    except ImportError as exc:
        raise Unavailable(f"starlette's SessionMiddleware: {exc}") from exc
    middleware = Middleware(
        SessionMiddleware, secret_key=sc.SESSION_SECRET, session_cookie=sc.STARLETTE_SESSION_COOKIE
    )
    return Starlette(routes=[Route("/session", session_user)], middleware=[middleware])


USERS = {sc.BEARER_TOKEN: (AuthCredentials(["authenticated"]), SimpleUser("ada"))}


class TokenBackend(AuthenticationBackend):
    """The bearer token's user, from a table."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """Look the token up."""
        kind, _, token = conn.headers.get("authorization", "").partition(" ")
        return USERS.get(token) if kind.lower() == "bearer" else None


@requires("authenticated")
async def me(request: Request) -> Response:
    """Answer the authenticated user's name."""
    return PlainTextResponse(request.user.display_name)


def _auth_app(fixtures: Fixtures) -> ASGIApp:
    middleware = Middleware(AuthenticationMiddleware, backend=TokenBackend())
    return Starlette(routes=[Route("/me", me)], middleware=[middleware])


class Hooks:
    """A before and an after hook as Starlette users write them: pure ASGI middleware
    (not BaseHTTPMiddleware, which costs far more), setting state and adding a header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Set the greeting, then add the header to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["greeting"] = "Hello, World!"

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), sc.HOOK_HEADER]
            await send(message)

        await self.app(scope, receive, stamped)


async def hooked(request: Request) -> Response:
    """Answer the greeting the middleware put in the request's state."""
    return PlainTextResponse(request.state.greeting)


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
    "sse": _sse_app,
    "file_1mib": _file_app,
    "session_read": _session_app,
    "auth_requires": _auth_app,
    "hooks": lambda fx: Starlette(routes=[Route("/hooks", hooked)], middleware=[Middleware(Hooks)]),
}
# Its handlers answer with response objects in both: the same apps serve both.
APPS["plaintext_object"] = APPS["plaintext"]
APPS["json_object"] = APPS["json"]


def e2e_app() -> ASGIApp:
    """The plaintext + JSON app served end to end."""
    return _app(Route("/plaintext", plaintext), Route("/json", json_view))
