"""The public contract (API.md), promise by promise, as an outside tester reads it.

Only public imports; TestClient, or hand-made scope/receive/send where the promise is
about the ASGI messages themselves. Sections follow API.md top to bottom. Every wait
is bounded so that a hang fails instead of stalling the run.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from asgi_harness import (
    CONNECT,
    DISCONNECT,
    Recorder,
    body_of,
    drive_lifespan,
    http_scope,
    request_body,
    run,
    scripted,
    start_of,
    websocket_scope,
)
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy
from yarl import URL

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the 3.10 session
    import tomli as tomllib

from microasgi import (
    App,
    FileResponse,
    FormData,
    HTMLResponse,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Request,
    Response,
    Router,
    StreamingResponse,
    UploadFile,
    WebSocket,
    WebSocketDisconnect,
)
from microasgi.middleware.cors import CORSMiddleware
from microasgi.middleware.gzip import GZipMiddleware
from microasgi.staticfiles import StaticFiles
from microasgi.testing import TestClient, TestResponse, WebSocketDenied

pytestmark = pytest.mark.anyio

Message = dict[str, Any]
Scope = dict[str, Any]
ROOT = Path(__file__).resolve().parent.parent
WS_RESPONSE = {"websocket.http.response": {}}


# --- raw ASGI helpers ---------------------------------------------------------------


async def call(
    app: Any, scope: Scope, body: list[bytes] | None = None, *, disconnect_early: bool = False
) -> list[Message]:
    """Run ``app`` on ``scope``; the body arrives in ``body`` chunks; returns what it sent.

    The client leaves once the response has ended, or with ``disconnect_early`` right
    after its body.
    """
    chunks = request_body(*(body if body is not None else [b""]))
    return await run(app, scope, chunks, then=DISCONNECT, after_response=not disconnect_early)


def header(message: Message, name: bytes) -> bytes | None:
    for key, value in message["headers"]:
        if key.lower() == name:
            return bytes(value)
    return None


async def lifespan(app: Any) -> list[str]:
    """Run startup then shutdown; return what the app sent, each type with its message
    (a failure reported, the app's call must end at once by raising the error)."""
    return (await drive_lifespan(app)).summary()


async def get(
    app: Any, path: str = "/", *, raise_server_exceptions: bool = True, **kwargs: Any
) -> TestResponse:
    async with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        return await client.get(path, **kwargs)


def says(text: str) -> Any:
    """A handler answering ``text`` whatever its path parameters."""

    async def handler(request: Request, **params: Any) -> str:
        return text

    return handler


# --- imports ------------------------------------------------------------------------


def test_every_documented_name_imports() -> None:
    import microasgi
    import microasgi.testing

    for name in [
        "App",
        "Router",
        "Request",
        "WebSocket",
        "WebSocketDisconnect",
        "HTTPException",
        "Response",
        "PlainTextResponse",
        "HTMLResponse",
        "JSONResponse",
        "RedirectResponse",
        "StreamingResponse",
        "FileResponse",
        "UploadFile",
        "FormData",
    ]:
        assert hasattr(microasgi, name), name
    for name in ("TestClient", "TestResponse", "WebSocketDenied"):
        assert hasattr(microasgi.testing, name), name
    assert callable(StaticFiles)
    assert callable(CORSMiddleware)
    assert callable(GZipMiddleware)


# --- App and routing ----------------------------------------------------------------


async def test_app_is_an_asgi3_callable() -> None:
    app = App(debug=False)

    @app.route("/")
    async def index(request: Request) -> Response:
        return PlainTextResponse("hi")

    sent = await call(app, http_scope("/"))
    assert start_of(sent)["status"] == 200
    assert body_of(sent) == b"hi"


async def test_route_methods_default_to_get_with_head_implied() -> None:
    app = App()

    @app.route("/")
    async def index(request: Request) -> str:
        return "get"

    async with TestClient(app) as client:
        assert (await client.get("/")).text == "get"
        head = await client.head("/")
        assert head.status_code == 200
        assert head.content == b""
        assert (await client.post("/")).status_code == 405


async def test_route_with_explicit_methods() -> None:
    app = App()

    @app.route("/", methods=["POST", "put"])
    async def index(request: Request) -> str:
        return request.method

    async with TestClient(app) as client:
        assert (await client.post("/")).text == "POST"
        assert (await client.put("/")).text == "PUT"
        assert (await client.get("/")).status_code == 405


async def test_method_decorators() -> None:
    app = App()
    for method in ("get", "post", "put", "patch", "delete"):

        async def handler(request: Request) -> str:
            return request.method

        getattr(app, method)(f"/{method}", name=method)(handler)
    async with TestClient(app) as client:
        for method in ("get", "post", "put", "patch", "delete"):
            response = await client.request(method.upper(), f"/{method}")
            assert response.text == method.upper()
            other = "post" if method != "post" else "get"
            assert (await client.request(other.upper(), f"/{method}")).status_code == 405


async def test_path_params_arrive_converted_as_keyword_arguments() -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.get("/users/{user_id:int}", name="user")
    async def user(request: Request, user_id: int) -> dict[str, Any]:
        seen["path_params"] = request.path_params
        return {"id": user_id}

    @app.get("/f/{x:float}")
    async def f(request: Request, x: float) -> str:
        assert isinstance(x, float)
        return repr(x)

    @app.get("/u/{u:uuid}")
    async def u(request: Request, u: uuid.UUID) -> str:
        assert isinstance(u, uuid.UUID)
        return str(u)

    @app.get("/s/{s}")
    async def s(request: Request, s: str) -> str:
        return s

    @app.get("/p/{rest:path}")
    async def p(request: Request, rest: str) -> str:
        return rest

    async with TestClient(app) as client:
        response = await client.get("/users/42")
        assert response.json() == {"id": 42}
        assert seen["path_params"] == {"user_id": 42}
        assert (await client.get("/users/abc")).status_code == 404
        assert (await client.get("/f/1.5")).text == "1.5"
        ident = uuid.uuid4()
        assert (await client.get(f"/u/{ident}")).text == str(ident)
        assert (await client.get("/u/not-a-uuid")).status_code == 404
        assert (await client.get("/s/hello")).text == "hello"
        assert (await client.get("/s/a/b")).status_code == 404
        assert (await client.get("/p/a/b/c.txt")).text == "a/b/c.txt"


class TwoLetters:
    regex = "[a-z]{2}"

    def convert(self, value: str) -> str:
        return value.upper()

    def to_string(self, value: Any) -> str:
        return str(value).lower()


async def test_custom_converter_on_app_and_router() -> None:
    app = App()

    @app.get("/lang/{code:two}", name="lang")
    async def lang(request: Request, code: str) -> str:
        return code

    app.register_converter("two", TwoLetters())  # after the route: still applies
    router = Router()
    router.register_converter("two", TwoLetters())

    @router.get("/r/{code:two}", name="rlang")
    async def rlang(request: Request, code: str) -> str:
        return "r" + code

    app.include_router(router)
    async with TestClient(app) as client:
        assert (await client.get("/lang/fr")).text == "FR"
        assert (await client.get("/lang/fra")).status_code == 404
        assert (await client.get("/r/de")).text == "rDE"
    assert app.url_path_for("lang", code="EN") == "/lang/en"


async def test_app_converter_serves_included_routers_whenever_registered() -> None:
    app = App()
    router = Router()

    @router.get("/x/{code:two}")
    async def x(request: Request, code: str) -> str:
        return code

    app.include_router(router, prefix="/api")
    app.register_converter("two", TwoLetters())
    assert (await get(app, "/api/x/ab")).text == "AB"


@pytest.mark.parametrize(
    ("value", "status", "content_type", "body"),
    [
        ("text", 200, "text/plain; charset=utf-8", b"text"),
        (b"\x00raw", 200, "application/octet-stream", b"\x00raw"),
        ({"a": 1}, 200, "application/json", b'{"a":1}'),
        ([1, "b"], 200, "application/json", b'[1,"b"]'),
        (None, 204, None, b""),
        (("made", 201), 201, "text/plain; charset=utf-8", b"made"),
        (({"a": 1}, 202), 202, "application/json", b'{"a":1}'),
        ((b"x", 203), 203, "application/octet-stream", b"x"),
        (([], 200), 200, "application/json", b"[]"),
        ((None, 202), 202, None, b""),
    ],
)
async def test_return_conversion(
    value: Any, status: int, content_type: str | None, body: bytes
) -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> Any:
        return value

    response = await get(app)
    assert response.status_code == status
    assert response.headers.get("content-type") == content_type
    assert response.content == body


@pytest.mark.parametrize(
    "headers", [{"x-a": "1"}, [("x-a", "1"), ("x-b", "2")], CIMultiDict([("X-A", "1")])]
)
async def test_tuple_return_with_headers_as_mapping_or_pairs(headers: Any) -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> Any:
        return "ok", 201, headers

    response = await get(app)
    assert response.status_code == 201
    assert response.headers["x-a"] == "1"
    assert response.text == "ok"


async def test_sync_handler() -> None:
    app = App()

    @app.get("/")
    def index(request: Request) -> str:
        return "sync"

    assert (await get(app)).text == "sync"


async def test_404_405_head_and_options() -> None:
    app = App()

    @app.get("/items")
    async def items(request: Request) -> Response:
        return PlainTextResponse("list", headers={"x-kind": "list"})

    @app.post("/items")
    async def create(request: Request) -> str:
        return "made"

    async with TestClient(app) as client:
        assert (await client.get("/nope")).status_code == 404
        refused = await client.delete("/items")
        assert refused.status_code == 405
        allow = {m.strip() for m in refused.headers["allow"].split(",")}
        assert {"GET", "HEAD", "POST"} <= allow
        full = await client.get("/items")
        head = await client.head("/items")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["x-kind"] == "list"
        assert head.headers["content-length"] == full.headers["content-length"] == "4"
        assert head.headers["content-type"] == full.headers["content-type"]
        options = await client.options("/items")
        assert options.status_code == 204
        assert {"GET", "POST"} <= {m.strip() for m in options.headers["allow"].split(",")}
        assert (await client.options("/nope")).status_code == 404


async def test_head_on_a_plain_return_has_no_body() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> dict[str, int]:
        return {"a": 1}

    sent = await call(app, http_scope("/", "HEAD"))
    assert start_of(sent)["status"] == 200
    assert header(start_of(sent), b"content-length") == b"7"
    assert body_of(sent) == b""


async def test_redirect_slashes_keeps_the_query() -> None:
    app = App()
    app.get("/a")(says("a"))
    app.get("/b/")(says("b"))
    async with TestClient(app) as client:
        response = await client.get("/a/?x=1&y=2")
        assert response.status_code == 308
        assert response.headers["location"] == "/a?x=1&y=2"
        response = await client.get("/b")
        assert response.status_code == 308
        assert response.headers["location"] == "/b/"
    strict = App(redirect_slashes=False)
    strict.get("/a")(says("a"))
    assert (await get(strict, "/a/")).status_code == 404


async def test_url_path_for_and_url_for() -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.get("/users/{user_id:int}", name="user")
    async def user(request: Request, user_id: int) -> str:
        seen["url"] = request.url_for("user", user_id=7)
        with pytest.raises(LookupError):
            request.url_for("nope")
        return ""

    assert app.url_path_for("user", user_id=3) == "/users/3"
    with pytest.raises(LookupError):
        app.url_path_for("missing")
    with pytest.raises(LookupError):
        app.url_path_for("user")
    with pytest.raises(LookupError):
        app.url_path_for("user", user_id=3, extra=1)
    await get(app, "/users/1")
    assert isinstance(seen["url"], URL)
    assert seen["url"] == URL("http://testserver/users/7")
    assert seen["url"].is_absolute()


async def test_default_route_name_is_the_handler_name() -> None:
    app = App()

    @app.get("/here")
    async def my_handler(request: Request) -> str:
        return ""

    assert app.url_path_for("my_handler") == "/here"


async def test_routing_backtracks() -> None:
    app = App()

    @app.get("/a/b/{y:int}")
    async def first(request: Request, y: int) -> str:
        return "first"

    @app.get("/a/{x}/d")
    async def second(request: Request, x: str) -> str:
        return "second:" + x

    async with TestClient(app) as client:
        assert (await client.get("/a/b/d")).text == "second:b"
        assert (await client.get("/a/b/5")).text == "first"


async def test_405_allow_is_the_union_of_every_route_for_the_path() -> None:
    app = App()
    app.get("/things/{name}")(says(""))
    app.put("/things/special")(says(""))
    app.post("/things/{name:path}")(says(""))
    async with TestClient(app) as client:
        response = await client.request("DELETE", "/things/special")
    assert response.status_code == 405
    allow = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "HEAD", "PUT", "POST"} <= allow


async def test_matching_a_route_accepting_the_method_wins() -> None:
    app = App()

    @app.get("/users/me")
    async def me(request: Request) -> str:
        return "me"

    @app.post("/users/{id}")
    async def update(request: Request, id: str) -> str:
        return "update:" + id

    async with TestClient(app) as client:
        assert (await client.post("/users/me")).text == "update:me"
        assert (await client.get("/users/me")).text == "me"
        assert (await client.get("/users/3")).status_code == 405


async def test_matching_specificity_whatever_the_registration_order() -> None:
    app = App()
    app.get("/k/{rest:path}")(says("path"))
    app.get("/k/{s}")(says("str"))
    app.get("/k/{n:int}")(says("int"))
    app.get("/k/{c:two}")(says("custom"))
    app.get("/k/me")(says("literal"))
    app.register_converter("two", TwoLetters())
    async with TestClient(app) as client:
        assert (await client.get("/k/me")).text == "literal"
        assert (await client.get("/k/12")).text == "int"
        assert (await client.get("/k/ab")).text == "custom"
        assert (await client.get("/k/abc")).text == "str"
        assert (await client.get("/k/a/b")).text == "path"


async def test_matching_ties_go_to_registration_order() -> None:
    app = App()
    app.get("/t/{a}")(says("one"))
    app.get("/t/{b}")(says("two"))
    assert (await get(app, "/t/x")).text == "one"


async def test_router_and_include_router_with_prefix_without_namespacing() -> None:
    router = Router()

    @router.route("/items", methods=["GET", "POST"])
    async def items(request: Request) -> str:
        return "items:" + request.method

    @router.get("/items/{n:int}", name="item")
    async def item(request: Request, n: int) -> int | str:
        return str(n)

    @router.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("routed")
        await websocket.close()

    app = App()
    app.include_router(router, prefix="/api")
    async with TestClient(app) as client:
        assert (await client.get("/api/items")).text == "items:GET"
        assert (await client.post("/api/items")).text == "items:POST"
        assert (await client.get("/api/items/4")).text == "4"
        assert (await client.get("/items")).status_code == 404
        async with client.websocket_connect("/api/ws") as session:
            assert await session.receive_text() == "routed"
    assert app.url_path_for("item", n=5) == "/api/items/5"


def scope_recorder() -> tuple[list[Scope], Any]:
    scopes: list[Scope] = []

    async def child(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan here")
        scopes.append(dict(scope))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"child"})

    return scopes, child


async def test_mount_scope_rule() -> None:
    scopes, child = scope_recorder()
    app = App()
    app.mount("/static", child)
    scope = http_scope("/static/css/a.css", raw_path=b"/static/css/a%2Ecss")
    before = copy.deepcopy(scope)
    sent = await call(app, scope)
    assert body_of(sent) == b"child"
    (seen,) = scopes
    assert seen["root_path"] == "/static"
    assert seen["path"] == "/static/css/a.css"
    assert seen["raw_path"] == b"/static/css/a%2Ecss"
    # The parent's own scope keeps every key the server set, unchanged.
    for key, value in before.items():
        assert scope[key] == value, key


async def test_mount_under_a_root_path() -> None:
    scopes, child = scope_recorder()
    app = App()
    app.mount("/static", child)
    await call(app, http_scope("/prefix/static/x", root_path="/prefix"))
    assert scopes[-1]["root_path"] == "/prefix/static"
    assert scopes[-1]["path"] == "/prefix/static/x"


async def test_a_path_not_starting_with_root_path_is_taken_as_relative() -> None:
    scopes, child = scope_recorder()
    app = App()
    app.mount("/static", child)
    # hypercorn/daphne/granian style: path relative to root_path
    await call(app, http_scope("/static/x", root_path="/prefix", raw_path=b"/static/x"))
    seen = scopes[-1]
    assert seen["root_path"] == "/prefix/static"
    assert seen["path"] == "/prefix/static/x"
    assert seen["raw_path"] == b"/prefix/static/x"


async def test_relative_path_rewrite_in_the_apps_own_request() -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.get("/x")
    async def x(request: Request) -> str:
        seen["path"] = request.path
        seen["raw_path"] = request.scope["raw_path"]
        seen["url"] = request.url
        return ""

    scope = http_scope("/x", root_path="/pre fix", raw_path=b"/x", host="example.org")
    sent = await call(app, scope)
    assert start_of(sent)["status"] == 200
    assert seen["path"] == "/pre fix/x"
    assert seen["raw_path"] == b"/pre%20fix/x"
    assert str(seen["url"]) == "http://example.org/pre%20fix/x"
    assert scope["path"] == "/x"  # the server's own dict is not changed


async def test_root_path_equal_to_path_routes_as_slash() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        return "root"

    sent = await call(app, http_scope("/prefix", root_path="/prefix"))
    assert body_of(sent) == b"root"


async def test_mount_matches_only_at_a_slash_boundary() -> None:
    _, child = scope_recorder()
    app = App()
    app.mount("/static", child)
    async with TestClient(app) as client:
        assert (await client.get("/staticx")).status_code == 404
        assert (await client.get("/static")).text == "child"
        assert (await client.get("/static/")).text == "child"


async def test_mounted_app_route_names_resolve_as_mount_colon_route() -> None:
    sub = App()
    seen: dict[str, Any] = {}

    @sub.get("/leaf/{n:int}", name="leaf")
    async def leaf(request: Request, n: int) -> str:
        seen["url"] = request.url_for("sub:leaf", n=n + 1)
        return str(n)

    app = App()
    app.mount("/sub", sub, name="sub")
    assert app.url_path_for("sub:leaf", n=2) == "/sub/leaf/2"
    with pytest.raises(LookupError):
        app.url_path_for("sub:nope")
    async with TestClient(app, root_path="/server") as client:
        response = await client.get("/sub/leaf/2")  # TestClient prefixes root_path
        assert response.text == "2"
    assert seen["url"] == URL("http://testserver/server/sub/leaf/3")


async def test_url_for_includes_the_servers_root_path() -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.get("/a", name="a")
    async def a(request: Request) -> str:
        seen["url"] = request.url_for("a")
        return ""

    async with TestClient(app, root_path="/pre") as client:
        await client.get("/a")
    assert seen["url"] == URL("http://testserver/pre/a")


async def test_mounted_app_applies_its_own_settings() -> None:
    sub = App(max_body_size=10)

    @sub.post("/up")
    async def up(request: Request) -> str:
        return str(len(await request.body()))

    app = App()
    app.mount("/sub", sub)

    @app.post("/up")
    async def parent_up(request: Request) -> str:
        return str(len(await request.body()))

    async with TestClient(app) as client:
        assert (await client.post("/sub/up", content=b"x" * 11)).status_code == 413
        assert (await client.post("/sub/up", content=b"x" * 10)).text == "10"
        assert (await client.post("/up", content=b"x" * 11)).text == "11"


async def test_add_middleware_last_added_is_outermost() -> None:
    order: list[str] = []

    class Mark:
        def __init__(self, app: Any, name: str) -> None:
            self.app = app
            self.name = name

        async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                order.append(self.name)
            await self.app(scope, receive, send)

    app = App()
    app.add_middleware(Mark, name="first")
    app.add_middleware(Mark, name="second")

    @app.get("/")
    async def index(request: Request) -> str:
        order.append("handler")
        return ""

    await get(app)
    assert order == ["second", "first", "handler"]


def test_http_exception_attributes() -> None:
    exc = HTTPException(404)
    assert exc.status_code == 404
    assert exc.detail == "Not Found"
    assert exc.headers is None
    exc = HTTPException(418, detail="teapot", headers={"x-a": "1"})
    assert (exc.status_code, exc.detail, exc.headers) == (418, "teapot", {"x-a": "1"})


async def test_http_exception_becomes_its_response() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        raise HTTPException(402, headers={"x-why": "pay"})

    response = await get(app)
    assert response.status_code == 402
    assert response.text == "Payment Required"
    assert response.headers["x-why"] == "pay"


async def test_exception_handlers_by_status_and_by_class() -> None:
    class Oops(Exception):
        pass

    class BigOops(Oops):
        pass

    app = App()

    @app.exception_handler(404)
    async def not_found(request: Request, exc: HTTPException) -> Response:
        return JSONResponse({"missing": request.path}, status_code=404)

    @app.exception_handler(Oops)
    async def oops(request: Request, exc: Oops) -> Response:
        return PlainTextResponse(f"handled {type(exc).__name__}", status_code=409)

    @app.get("/raise")
    async def raising(request: Request) -> str:
        raise BigOops

    @app.get("/abort")
    async def abort(request: Request) -> str:
        raise HTTPException(404)

    async with TestClient(app) as client:
        response = await client.get("/nowhere")
        assert response.status_code == 404
        assert response.json() == {"missing": "/nowhere"}
        assert (await client.get("/abort")).json() == {"missing": "/abort"}
        response = await client.get("/raise")
        assert (response.status_code, response.text) == (409, "handled BigOops")


class SecretError(Exception):
    pass


def failing_app(debug: bool = False) -> App:
    app = App(debug=debug)

    @app.get("/")
    async def index(request: Request) -> str:
        raise SecretError("the-password-is-hunter2")

    return app


async def test_500_body_names_neither_exception_nor_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="microasgi"):
        sent = await run(
            failing_app(), http_scope("/"), then=DISCONNECT, after_response=True, raises=SecretError
        )
    assert start_of(sent)["status"] == 500
    body = body_of(sent)
    assert b"SecretError" not in body
    assert b"hunter2" not in body
    assert (header(start_of(sent), b"content-type") or b"").startswith(b"text/plain")
    # Answered, then propagated to the server, which logs it: microasgi does not.
    assert not [r for r in caplog.records if r.name.startswith("microasgi")]


async def test_500_with_debug_shows_the_traceback() -> None:
    response = await get(failing_app(debug=True), raise_server_exceptions=False)
    assert response.status_code == 500
    assert "SecretError" in response.text
    assert "Traceback" in response.text


@pytest.mark.parametrize("spec_version", ["2.4", "2.3"])
async def test_error_after_start_propagates_without_closing_the_body(
    spec_version: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"partial"
            raise SecretError("mid-body")

        return StreamingResponse(chunks())

    sent: list[Message] = []

    async def receive() -> Message:
        if not sent:
            return {"type": "http.request", "body": b""}
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    scope = http_scope("/", spec_version=spec_version)
    with (
        caplog.at_level(logging.DEBUG, logger="microasgi"),
        anyio.fail_after(5),
        pytest.raises(SecretError),
    ):
        await app(scope, receive, send)
    assert start_of(sent)["status"] == 200
    assert all(m.get("more_body", False) for m in sent if m["type"] == "http.response.body")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_error_after_start_through_middleware_is_not_a_second_response() -> None:
    class Passthrough:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
            await self.app(scope, receive, send)

    app = App()
    app.add_middleware(Passthrough)

    @app.get("/")
    async def index(request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"partial"
            raise SecretError

        return StreamingResponse(chunks())

    with pytest.raises(SecretError):
        await call(app, http_scope("/"))


# --- the scope ----------------------------------------------------------------------


async def test_microasgi_never_changes_what_the_server_set() -> None:
    sub = App()

    @sub.post("/h/{n:int}")
    async def handler(request: Request, n: int) -> str:
        request.state.mark = 1
        await request.body()
        _ = (request.headers, request.cookies, request.url, request.query, request.client)
        return "ok"

    app = App()
    app.mount("/sub", sub)
    state: dict[str, Any] = {"shared": 1}
    scope = http_scope(
        "/h/1",
        "POST",
        root_path="/r",
        raw_path=b"/h/1",
        query_string=b"a=1",
        headers=[(b"cookie", b"a=b")],
        extensions={"http.response.push": {}},
    )
    scope["path"] = "/sub/h/1"
    scope["raw_path"] = b"/sub/h/1"
    scope["state"] = state
    before = copy.deepcopy(scope)
    sent = await call(app, scope, [b"abc"])
    assert body_of(sent) == b"ok"
    for key, value in before.items():
        if key != "state":
            assert scope[key] == value, key
    assert state == {"shared": 1, "mark": 1}  # writes go to scope["state"] only


async def test_request_state_writes_stay_in_that_request() -> None:
    app = App()

    @app.lifespan
    async def life(app: App) -> AsyncIterator[dict[str, Any]]:
        yield {"pool": "P"}

    @app.get("/w")
    async def write(request: Request) -> str:
        request.state.mine = "set"
        return request.state.pool

    @app.get("/r")
    async def read(request: Request) -> str:
        return str(hasattr(request.state, "mine"))

    async with TestClient(app) as client:
        assert (await client.get("/w")).text == "P"
        assert (await client.get("/r")).text == "False"


async def test_request_state_without_server_state() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        request.state.x = 1
        return str(request.scope["state"])

    sent = await call(app, http_scope("/"))
    assert body_of(sent) == b"{'x': 1}"


# --- lifespan -----------------------------------------------------------------------


def lifespan_app(events: list[str], name: str = "app") -> App:
    app = App()

    @app.lifespan
    async def life(app: App) -> AsyncIterator[dict[str, Any]]:
        events.append(f"{name}:gen-start")
        yield {f"{name}_pool": f"{name}-pool"}
        events.append(f"{name}:gen-end")

    @app.on_startup
    async def up() -> None:
        events.append(f"{name}:startup-hook")

    @app.on_shutdown
    async def down() -> None:
        events.append(f"{name}:shutdown-hook")

    return app


async def test_lifespan_hooks_generator_and_mounts_in_order() -> None:
    events: list[str] = []
    app = lifespan_app(events)
    app.mount("/sub", lifespan_app(events, "sub"))
    _, plain = scope_recorder()
    app.mount("/plain", plain)  # does not support lifespan: tolerated

    @app.get("/")
    async def index(request: Request) -> str:
        return request.state.app_pool + "," + request.state.sub_pool

    async with TestClient(app) as client:
        assert events == ["app:gen-start", "app:startup-hook", "sub:gen-start", "sub:startup-hook"]
        assert (await client.get("/")).text == "app-pool,sub-pool"
    assert events[4:] == ["sub:shutdown-hook", "sub:gen-end", "app:shutdown-hook", "app:gen-end"]


async def test_lifespan_raw_protocol() -> None:
    events: list[str] = []
    assert await lifespan(lifespan_app(events)) == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


async def test_lifespan_argument_and_state_in_websocket() -> None:
    async def life(app: App) -> AsyncIterator[dict[str, Any]]:
        yield {"pool": "the-pool"}

    app = App(lifespan=life)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.state.pool)
        await websocket.close()

    async with TestClient(app) as client, client.websocket_connect("/ws") as session:
        assert await session.receive_text() == "the-pool"


async def test_lifespan_state_reaches_asgi_state() -> None:
    async def life(app: App) -> AsyncIterator[dict[str, Any]]:
        yield {"pool": 1}

    state: dict[str, Any] = {}
    await drive_lifespan(App(lifespan=life), state=state)
    assert state == {"pool": 1}


async def test_startup_failure_sends_failed_with_the_message() -> None:
    app = App()

    @app.on_startup
    async def boom() -> None:
        raise RuntimeError("database unreachable")

    replies = await lifespan(app)
    assert replies == ["lifespan.startup.failed:database unreachable"]


async def test_shutdown_failure_sends_shutdown_failed() -> None:
    app = App()

    @app.on_shutdown
    async def boom() -> None:
        raise RuntimeError("flush failed")

    replies = await lifespan(app)
    assert replies[0] == "lifespan.startup.complete"
    assert replies[1] == "lifespan.shutdown.failed:flush failed"


async def test_startup_hook_failing_after_yield_closes_the_generator() -> None:
    events: list[str] = []
    app = App()

    @app.lifespan
    async def life(app: App) -> AsyncIterator[None]:
        events.append("open")
        try:
            yield
        finally:
            events.append("cleanup")

    @app.on_startup
    async def boom() -> None:
        raise RuntimeError("hook failed")

    replies = await lifespan(app)
    assert replies == ["lifespan.startup.failed:hook failed"]
    assert events == ["open", "cleanup"]


async def test_mounted_startup_failure_fails_the_parent() -> None:
    sub = App()

    @sub.on_startup
    async def boom() -> None:
        raise RuntimeError("child failed")

    app = App()
    app.mount("/sub", sub)
    replies = await lifespan(app)
    assert len(replies) == 1
    assert replies[0].startswith("lifespan.startup.failed")
    assert "child failed" in replies[0]


async def test_testclient_raises_on_failed_startup() -> None:
    app = App()

    @app.on_startup
    async def boom() -> None:
        raise RuntimeError("nope")

    with pytest.raises(Exception, match="nope"):
        async with TestClient(app):
            pass


def test_app_state_is_a_plain_namespace() -> None:
    app = App()
    app.state.config = {"a": 1}
    assert app.state.config == {"a": 1}


# --- Request ------------------------------------------------------------------------


async def test_request_attributes_and_types() -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.route("/items/{n:int}", methods=["POST"])
    async def item(request: Request, n: int) -> str:
        seen.update(
            method=request.method,
            url=request.url,
            path=request.path,
            query=request.query,
            headers=request.headers,
            cookies=request.cookies,
            client=request.client,
            scheme=request.scheme,
            http_version=request.http_version,
            path_params=request.path_params,
            state=request.state,
            app=request.app,
            scope=request.scope,
        )
        return ""

    async with TestClient(app) as client:
        await client.post(
            "/items/3?a=1&a=2&b=%C3%A9",
            headers={"X-Thing": "v"},
            cookies={"sid": "abc", "theme": "dark"},
        )
    assert seen["method"] == "POST"
    assert isinstance(seen["url"], URL)
    assert seen["url"].is_absolute()
    assert str(seen["url"]) == "http://testserver/items/3?a=1&a=2&b=%C3%A9"
    assert seen["path"] == "/items/3"
    assert isinstance(seen["query"], MultiDictProxy)
    assert seen["query"].getall("a") == ["1", "2"]
    assert seen["query"]["b"] == "é"
    assert isinstance(seen["headers"], CIMultiDictProxy)
    assert seen["headers"]["x-thing"] == "v"
    assert type(seen["cookies"]) is dict
    assert seen["cookies"] == {"sid": "abc", "theme": "dark"}
    assert tuple(seen["client"]) == ("testclient", 50000)
    assert seen["scheme"] == "http"
    assert seen["http_version"] == "1.1"
    assert seen["path_params"] == {"n": 3}
    assert seen["app"] is app
    assert seen["scope"]["type"] == "http"
    assert seen["scope"]["path"] == seen["path"]


async def test_request_built_in_middleware_shares_the_cached_body() -> None:
    class Peek:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                request = Request(scope, receive)
                assert await request.body() == b"payload"
            await self.app(scope, receive, send)

    app = App()
    app.add_middleware(Peek)

    @app.post("/")
    async def index(request: Request) -> str:
        first = await request.body()
        again = await Request(request.scope, request.receive).body()
        assert first == again
        return await request.text()

    async with TestClient(app) as client:
        with anyio.fail_after(5):
            response = await client.post("/", content=b"payload")
    assert response.text == "payload"


async def test_request_with_send_none_reads_the_body() -> None:
    scope = http_scope("/", "POST")
    messages = [{"type": "http.request", "body": b"abc"}]

    async def receive() -> Message:
        return messages.pop(0)

    request = Request(scope, receive, None)
    assert await request.body() == b"abc"
    assert await Request(scope, receive).body() == b"abc"  # cached in the scope


async def test_body_twice_and_text_and_json() -> None:
    app = App()

    @app.post("/")
    async def index(request: Request) -> dict[str, Any]:
        assert await request.body() == await request.body()
        data = await request.json()
        return {"text": await request.text(), "json": data}

    async with TestClient(app) as client:
        response = await client.post("/", json={"a": [1, 2]})
    assert response.json() == {"text": '{"a": [1, 2]}', "json": {"a": [1, 2]}}


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000])
async def test_invalid_or_too_deep_json_is_400(body: bytes) -> None:
    app = App()

    @app.post("/")
    async def index(request: Request) -> str:
        await request.json()
        return "parsed"

    async with TestClient(app) as client:
        response = await client.post("/", content=body)
    assert response.status_code == 400


async def test_request_json_raises_http_exception_400() -> None:
    app = App()
    caught: list[Any] = []

    @app.post("/")
    async def index(request: Request) -> str:
        try:
            await request.json()
        except HTTPException as exc:
            caught.append(exc.status_code)
        return ""

    async with TestClient(app) as client:
        await client.post("/", content=b"nope")
    assert caught == [400]


async def test_form_urlencoded_and_multipart() -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.post("/")
    async def index(request: Request) -> str:
        form = await request.form()
        seen["form"] = form
        upload = form["f"]
        assert isinstance(upload, UploadFile)
        seen["file"] = (
            upload.filename,
            upload.content_type,
            upload.headers.get("content-type"),
            upload.size,
            await upload.read(3),
            await upload.read(),
        )
        await upload.seek(0)
        seen["again"] = await upload.read()
        await upload.close()
        return ""

    @app.post("/plain")
    async def plain(request: Request) -> dict[str, Any]:
        form = await request.form()
        assert isinstance(form, FormData)
        assert isinstance(form, MultiDict)
        return {"a": form.getall("a"), "b": form["b"]}

    async with TestClient(app) as client:
        response = await client.post("/plain", data={"a": ["1", "2"], "b": "é &"})
        assert response.json() == {"a": ["1", "2"], "b": "é &"}
        await client.post(
            "/", data={"name": "x"}, files={"f": ("a.txt", b"hello world", "text/plain")}
        )
    form = seen["form"]
    assert isinstance(form, FormData)
    assert isinstance(form, MultiDict)
    assert form["name"] == "x"
    assert isinstance(form["name"], str)
    assert seen["file"] == ("a.txt", "text/plain", "text/plain", 11, b"hel", b"lo world")
    assert seen["again"] == b"hello world"


async def test_stream_and_is_disconnected() -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.post("/")
    async def index(request: Request) -> str:
        seen["chunks"] = [chunk async for chunk in request.stream()]
        seen["connected"] = await request.is_disconnected()
        return ""

    await call(app, http_scope("/", "POST"), [b"ab", b"cd", b"ef"])
    assert b"".join(seen["chunks"]) == b"abcdef"
    assert seen["connected"] is False

    @app.post("/gone")
    async def gone(request: Request) -> str:
        await request.body()
        with anyio.fail_after(1):
            while not await request.is_disconnected():  # noqa: ASYNC110 - the API polls
                await anyio.sleep(0.01)
        seen["gone"] = True
        return ""

    await call(app, http_scope("/gone", "POST"), [b"x"], disconnect_early=True)
    assert seen["gone"] is True


def upload_app(**limits: Any) -> App:
    app = App(**limits)

    @app.post("/")
    async def index(request: Request) -> dict[str, Any]:
        form = await request.form()
        return {k: v if isinstance(v, str) else v.size for k, v in form.items()}

    @app.post("/body")
    async def body(request: Request) -> str:
        return str(len(await request.body()))

    @app.post("/stream")
    async def stream(request: Request) -> str:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
        return str(total)

    return app


async def test_max_body_size_on_body_and_on_stream_with_and_without_length() -> None:
    app = upload_app(max_body_size=10)
    async with TestClient(app) as client:
        assert (await client.post("/body", content=b"x" * 10)).text == "10"
        assert (await client.post("/body", content=b"x" * 11)).status_code == 413
        assert (await client.post("/stream", content=b"x" * 10)).text == "10"
        assert (await client.post("/stream", content=b"x" * 11)).status_code == 413
    for path in ("/body", "/stream"):  # chunked: no Content-Length
        sent = await call(app, http_scope(path, "POST"), [b"x" * 6, b"x" * 5])
        assert start_of(sent)["status"] == 413


async def test_max_body_size_default_is_bounded() -> None:
    # A safe default: something, and not unbounded.
    app = upload_app()
    sent = await call(
        app,
        http_scope("/body", "POST", headers=[(b"content-length", str(10**12).encode())]),
        [b"x"],
    )
    assert start_of(sent)["status"] == 413


async def test_form_field_count_is_inclusive_and_counts_urlencoded() -> None:
    app = upload_app(max_form_fields=3)
    async with TestClient(app) as client:
        ok = await client.post("/", data={"a": "1", "b": "2", "c": "3"})
        assert ok.status_code == 200
        assert (
            await client.post("/", data={"a": "1", "b": "2", "c": "3", "d": "4"})
        ).status_code in (
            400,
            413,
        )
        multi = {"a": "1", "b": "2", "c": "3"}
        files = {"f1": ("x", b"1"), "f2": ("y", b"2")}  # files do not count as fields
        assert (await client.post("/", data=multi, files=files)).status_code == 200
        multi["d"] = "4"
        assert (await client.post("/", data=multi, files=files)).status_code in (400, 413)


async def test_form_file_count_is_inclusive() -> None:
    app = upload_app(max_form_files=2)
    async with TestClient(app) as client:
        files = {"f1": ("x", b"1"), "f2": ("y", b"2")}
        assert (await client.post("/", files=files)).status_code == 200
        files["f3"] = ("z", b"3")
        assert (await client.post("/", files=files)).status_code in (400, 413)


async def test_part_size_file_size_and_part_header_size_are_413() -> None:
    async with TestClient(upload_app(max_part_size=5)) as client:
        assert (
            await client.post("/", data={"a": "x" * 5}, files={"f": ("f", b"1")})
        ).status_code == 200
        big = await client.post("/", data={"a": "x" * 6}, files={"f": ("f", b"1")})
        assert big.status_code == 413
        assert (await client.post("/", data={"a": "x" * 5})).status_code == 200
        assert (await client.post("/", data={"a": "x" * 6})).status_code == 413  # urlencoded
        assert (await client.post("/", data={"a": "%" * 6})).status_code == 413
    async with TestClient(upload_app(max_file_size=5)) as client:
        assert (await client.post("/", files={"f": ("f", b"x" * 5)})).json() == {"f": 5}
        assert (await client.post("/", files={"f": ("f", b"x" * 6)})).status_code == 413
    async with TestClient(upload_app(max_part_header_size=200)) as client:
        ok = await client.post("/", files={"f": ("f", b"x")})
        assert ok.status_code == 200
        long_name = "n" * 300
        assert (await client.post("/", files={"f": (long_name, b"x")})).status_code == 413


async def test_spool_threshold() -> None:
    app = App(spool_threshold=10)
    rolled: dict[str, bool] = {}

    @app.post("/")
    async def index(request: Request) -> str:
        form = await request.form()
        for name, upload in form.items():
            assert isinstance(upload, UploadFile)
            rolled[name] = not upload._in_memory
            assert await upload.read() == b"x" * upload.size
        return ""

    async with TestClient(app) as client:
        await client.post("/", files={"at": ("a", b"x" * 10), "over": ("b", b"x" * 11)})
    assert rolled == {"at": False, "over": True}


async def test_spool_threshold_default_is_one_mib() -> None:
    app = App()
    rolled: dict[str, bool] = {}

    @app.post("/")
    async def index(request: Request) -> str:
        for name, upload in (await request.form()).items():
            assert isinstance(upload, UploadFile)
            rolled[name] = not upload._in_memory
        return ""

    mib = 1024 * 1024
    async with TestClient(app) as client:
        await client.post("/", files={"at": ("a", b"x" * mib), "over": ("b", b"x" * (mib + 1))})
    assert rolled == {"at": False, "over": True}


@pytest.mark.parametrize(
    "body",
    [
        b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue',  # truncated
        b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n',  # no close
        b"garbage without boundary",
        b"--B\r\nNo-Colon-Header\r\n\r\nv\r\n--B--\r\n",
        b"--B\r\nContent-Type: text/plain\r\n\r\nv\r\n--B--\r\n",  # no name
    ],
)
async def test_truncated_or_malformed_multipart_is_400(body: bytes) -> None:
    app = upload_app()
    async with TestClient(app) as client:
        response = await client.post(
            "/", content=body, headers={"content-type": "multipart/form-data; boundary=B"}
        )
    assert response.status_code == 400


async def test_multipart_without_boundary_is_400() -> None:
    async with TestClient(upload_app()) as client:
        response = await client.post(
            "/", content=b"x", headers={"content-type": "multipart/form-data"}
        )
    assert response.status_code == 400


def extension_app() -> App:
    app = App()

    @app.get("/")
    async def index(request: Request) -> dict[str, Any]:
        return {
            "supports": request.supports("http.response.push"),
            "push": await request.push("/style.css", headers={"Accept": "text/css"}),
            "hints": await request.send_early_hints(["</style.css>; rel=preload; as=style"]),
        }

    return app


async def test_push_and_early_hints_with_and_without_the_extension() -> None:
    async with TestClient(extension_app()) as client:
        response = await client.get("/")
    assert response.json() == {"supports": True, "push": True, "hints": True}
    assert response.pushes == [("/style.css", [("accept", "text/css")])]
    assert response.early_hints == ["</style.css>; rel=preload; as=style"]
    async with TestClient(extension_app(), extensions={}) as client:
        response = await client.get("/")
    assert response.json() == {"supports": False, "push": False, "hints": False}
    assert response.pushes == []
    assert response.early_hints == []


async def test_push_with_header_pairs_and_raw_messages() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        await request.send_early_hints(["</a.css>; rel=preload"])
        await request.push("/a.css", [("Accept", "text/css"), ("X-A", "1")])
        return "x"

    sent = await call(
        app,
        http_scope("/", extensions={"http.response.push": {}, "http.response.early_hint": {}}),
    )
    kinds = [m["type"] for m in sent]
    assert kinds.index("http.response.early_hint") < kinds.index("http.response.start")
    (push,) = [m for m in sent if m["type"] == "http.response.push"]
    assert push["path"] == "/a.css"
    assert [(bytes(n).lower(), bytes(v)) for n, v in push["headers"]] == [
        (b"accept", b"text/css"),
        (b"x-a", b"1"),
    ]
    sent = await call(app, http_scope("/"))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


async def test_push_any_time_before_the_body_is_complete() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"a"
            assert await request.push("/late.js") is True
            yield b"b"

        return StreamingResponse(chunks())

    response = await get(app)
    assert response.content == b"ab"
    assert response.pushes == [("/late.js", [])]


async def test_push_and_hints_refuse_cr_lf() -> None:
    app = App()
    errors: list[str] = []

    @app.get("/")
    async def index(request: Request) -> str:
        for attempt in (
            request.push("/a", {"x": "1\r\nInjected: yes"}),
            request.push("/a", [("x", "1\nb")]),
            request.send_early_hints(["</a>; rel=preload\r\nX: y"]),
        ):
            try:
                await attempt
            except ValueError:
                errors.append("refused")
        return ""

    response = await get(app)
    assert errors == ["refused"] * 3
    assert response.pushes == []
    assert response.early_hints == []


async def test_early_hints_are_flat_across_several_messages() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        await request.send_early_hints(["</a.css>; rel=preload", "</b.js>; rel=preload"])
        await request.send_early_hints(["</c.png>; rel=preload"])
        return ""

    response = await get(app)
    assert response.early_hints == [
        "</a.css>; rel=preload",
        "</b.js>; rel=preload",
        "</c.png>; rel=preload",
    ]
    assert all(isinstance(v, str) for v in response.early_hints)


def trailers_app(pairs: bool = False) -> App:
    app = App()

    @app.get("/")
    async def index(request: Request) -> StreamingResponse:
        async def trailers() -> Any:
            return [("x-checksum", "abc")] if pairs else {"x-checksum": "abc"}

        async def body() -> AsyncIterator[bytes]:
            yield b"data"

        return StreamingResponse(body(), trailers=trailers)

    return app


@pytest.mark.parametrize("pairs", [False, True])
async def test_trailers_only_when_advertised_and_asked_for(pairs: bool) -> None:
    async with TestClient(trailers_app(pairs)) as client:
        asked = await client.get("/", headers={"TE": "trailers"})
        assert asked.content == b"data"
        assert isinstance(asked.trailers, CIMultiDictProxy)
        assert asked.trailers["x-checksum"] == "abc"
        not_asked = await client.get("/")
        assert not_asked.content == b"data"
        assert len(not_asked.trailers) == 0
    no_ext = {"http.response.push": {}}
    async with TestClient(trailers_app(pairs), extensions=no_ext) as client:
        response = await client.get("/", headers={"TE": "trailers"})
        assert response.content == b"data"
        assert len(response.trailers) == 0


async def test_trailers_raw_messages() -> None:
    sent = await call(
        trailers_app(),
        http_scope("/", headers=[(b"te", b"trailers")], extensions={"http.response.trailers": {}}),
    )
    kinds = [m["type"] for m in sent]
    assert kinds[0] == "http.response.start"
    assert sent[0].get("trailers") is True
    assert kinds[-1] == "http.response.trailers"
    assert sent[-1]["headers"] == [(b"x-checksum", b"abc")]
    sent = await call(trailers_app(), http_scope("/", extensions={"http.response.trailers": {}}))
    assert "http.response.trailers" not in [m["type"] for m in sent]
    assert not sent[0].get("trailers", False)


# --- responses ----------------------------------------------------------------------


async def test_response_constructor_arguments() -> None:
    ran: list[str] = []

    def sync_task() -> None:
        ran.append("sync")

    app = App()

    @app.get("/")
    async def index(request: Request) -> Response:
        return Response(
            content="héllo",
            status_code=201,
            headers={"x-a": "1"},
            media_type="text/x-custom",
            background=sync_task,
        )

    response = await get(app)
    assert response.status_code == 201
    assert response.content == "héllo".encode()
    assert response.headers["x-a"] == "1"
    assert response.headers["content-type"].startswith("text/x-custom")
    assert response.headers["content-length"] == str(len("héllo".encode()))
    assert ran == ["sync"]


async def test_response_positional_arguments() -> None:
    response = Response(b"x", 202, [("x-a", "1")], "application/x-thing")
    assert response.status_code == 202
    assert response.headers["x-a"] == "1"
    assert response.headers["content-type"] == "application/x-thing"


async def test_response_headers_are_a_mutable_cimultidict() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> Response:
        response = PlainTextResponse("x")
        assert isinstance(response.headers, CIMultiDict)
        response.headers["X-Late"] = "yes"
        response.headers.add("x-multi", "1")
        response.headers.add("x-multi", "2")
        return response

    response = await get(app)
    assert response.headers["x-late"] == "yes"
    assert response.headers.getall("x-multi") == ["1", "2"]


async def test_set_cookie_and_delete_cookie() -> None:
    response = Response()
    response.set_cookie(
        "sid",
        "abc",
        max_age=60,
        expires=datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc),
        path="/app",
        domain="example.org",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie("plain", "v")
    response.delete_cookie("old", path="/x", domain="example.org")
    cookies = response.headers.getall("set-cookie")
    assert len(cookies) == 3
    first = cookies[0].lower()
    for part in (
        "sid=abc",
        "max-age=60",
        "expires=tue, 01 jan 2030 00:00:00 gmt",
        "path=/app",
        "domain=example.org",
        "secure",
        "httponly",
        "samesite=strict",
    ):
        assert part in first, part
    assert "path=/" in cookies[1].lower()
    assert "samesite=lax" in cookies[1].lower()
    assert "httponly" not in cookies[1].lower()
    assert "secure" not in cookies[1].lower()
    deleted = cookies[2].lower()
    assert deleted.startswith("old=")
    assert "max-age=0" in deleted
    assert "path=/x" in deleted
    assert "domain=example.org" in deleted


@pytest.mark.parametrize(
    "make",
    [
        lambda: Response(headers={"x": "a\r\nb"}),
        lambda: Response(headers=[("x", "a\nb")]),
        lambda: PlainTextResponse("x", headers={"x": "a\rb"}),
        lambda: JSONResponse({}, headers={"x": "a\rb"}),
        lambda: StreamingResponse(iter([b""]), headers={"x": "a\r\nb"}),
        lambda: RedirectResponse("/x", headers={"x": "a\r\nb"}),
        lambda: FileResponse(__file__, headers={"x": "a\r\nb"}),
        lambda: Response().set_cookie("a", "b\r\nSet-Cookie: evil=1"),
        lambda: Response().set_cookie("a", "b", path="/\r\nx"),
        lambda: Response().set_cookie("a", "b", domain="x\ny"),
        lambda: Response().delete_cookie("a", path="/\r\n"),
    ],
)
def test_cr_lf_refused_at_construction(make: Any) -> None:
    with pytest.raises(ValueError, match="CR"):
        make()


async def test_cr_lf_set_later_never_reaches_the_wire() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> Response:
        response = PlainTextResponse("x")
        response.headers["x-bad"] = "a\r\nInjected: 1"
        return response

    @app.get("/stream")
    async def stream(request: Request) -> Response:
        response = StreamingResponse(iter([b"x"]))
        response.headers["x-bad"] = "a\r\nInjected: 1"
        return response

    for path in ("/", "/stream"):
        sent = await run(app, http_scope(path), then=DISCONNECT, raises=ValueError)
        start = start_of(sent)
        assert start["status"] == 500
        assert all(b"\r" not in v and b"\n" not in v for _, v in start["headers"])


async def test_background_async_runs_after_the_body_is_sent() -> None:
    order: list[str] = []

    async def task() -> None:
        order.append("background")

    app = App()

    @app.get("/")
    async def index(request: Request) -> Response:
        return PlainTextResponse("x", background=task)

    receive = scripted(then={"type": "http.request", "body": b""})
    await app(http_scope("/"), receive, Recorder(log=order))
    assert order == ["http.response.start", "http.response.body", "background"]


async def test_response_classes() -> None:
    app = App()

    @app.get("/text")
    async def text(request: Request) -> Response:
        return PlainTextResponse("t")

    @app.get("/html")
    async def html(request: Request) -> Response:
        return HTMLResponse("<p>h</p>")

    @app.get("/json")
    async def as_json(request: Request) -> Response:
        return JSONResponse({"é": [1, None]})

    @app.get("/redirect")
    async def redirect(request: Request) -> Response:
        return RedirectResponse("/elsewhere?a=1")

    @app.get("/moved")
    async def moved(request: Request) -> Response:
        return RedirectResponse("https://example.org/x", status_code=301)

    async with TestClient(app) as client:
        response = await client.get("/text")
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        response = await client.get("/html")
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        response = await client.get("/json")
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"é": [1, None]}
        response = await client.get("/redirect")
        assert response.status_code == 307
        assert response.headers["location"] == "/elsewhere?a=1"
        response = await client.get("/moved")
        assert response.status_code == 301
        assert response.headers["location"] == "https://example.org/x"


async def test_streaming_response_sync_and_async_iterators() -> None:
    app = App()

    @app.get("/async")
    async def stream_async(request: Request) -> Response:
        async def chunks() -> AsyncIterator[str]:
            yield "a"
            yield "b"

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/sync")
    async def stream_sync(request: Request) -> Response:
        def chunks() -> Iterator[bytes]:
            yield b"c"
            yield b"d"

        return StreamingResponse(chunks())

    async with TestClient(app) as client:
        response = await client.get("/async")
        assert response.content == b"ab"
        assert response.headers["content-type"].startswith("text/plain")
        assert (await client.get("/sync")).content == b"cd"


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_streaming_response_stops_cleanly_when_the_client_disconnects(
    spec_version: str,
) -> None:
    closed = anyio.Event()
    app = App()

    @app.get("/")
    async def index(request: Request) -> Response:
        async def forever() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"tick"
                    await anyio.sleep(0.001)
            finally:
                closed.set()

        return StreamingResponse(forever())

    sent: list[Message] = []
    gone = anyio.Event()

    async def receive() -> Message:
        if not sent:
            return {"type": "http.request", "body": b""}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if gone.is_set() and spec_version == "2.4":
            raise OSError("client gone")
        sent.append(message)
        if len(sent) >= 3:
            gone.set()

    with anyio.fail_after(5):
        await app(http_scope("/", spec_version=spec_version), receive, send)  # no error
        await closed.wait()


# --- FileResponse and StaticFiles ---------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "hello.txt").write_bytes(b"0123456789")
    (tmp_path / "public" / "page.html").write_text("<p>page</p>")
    (tmp_path / "public" / "sub").mkdir()
    (tmp_path / "public" / "sub" / "index.html").write_text("<p>index</p>")
    (tmp_path / "secret.txt").write_text("secret")
    return tmp_path


def file_app(path: Path) -> App:
    app = App()

    @app.get("/file")
    async def file(request: Request) -> Response:
        return FileResponse(path)

    @app.get("/download")
    async def download(request: Request) -> Response:
        return FileResponse(path, filename="report.txt")

    @app.get("/typed")
    async def typed(request: Request) -> Response:
        return FileResponse(path, media_type="application/x-custom")

    return app


async def test_file_response_basics(site: Path) -> None:
    app = file_app(site / "public" / "hello.txt")
    async with TestClient(app) as client:
        response = await client.get("/file")
        assert response.status_code == 200
        assert response.content == b"0123456789"
        assert response.headers["content-type"].startswith("text/plain")
        assert response.headers["content-length"] == "10"
        assert "content-disposition" not in response.headers
        etag, modified = response.headers["etag"], response.headers["last-modified"]
        download = await client.get("/download")
        assert download.headers["content-disposition"].startswith("attachment")
        assert 'filename="report.txt"' in download.headers["content-disposition"]
        assert (await client.get("/typed")).headers["content-type"] == "application/x-custom"
        assert (await client.get("/file", headers={"if-none-match": etag})).status_code == 304
        not_modified = await client.get("/file", headers={"if-modified-since": modified})
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        head = await client.head("/file")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == "10"


async def test_file_response_ranges(site: Path) -> None:
    app = file_app(site / "public" / "hello.txt")
    async with TestClient(app) as client:
        one = await client.get("/file", headers={"range": "bytes=2-4"})
        assert one.status_code == 206
        assert one.content == b"234"
        assert one.headers["content-range"] == "bytes 2-4/10"
        many = await client.get("/file", headers={"range": "bytes=0-1,5-6"})
        assert many.status_code == 206
        assert many.headers["content-type"].startswith("multipart/byteranges")
        assert b"01" in many.content
        assert b"56" in many.content
        assert b"Content-Range: bytes 0-1/10" in many.content
        assert b"Content-Range: bytes 5-6/10" in many.content
        assert many.headers["content-length"] == str(len(many.content))
        bad = await client.get("/file", headers={"range": "bytes=50-60"})
        assert bad.status_code == 416
        assert bad.headers["content-range"] == "bytes */10"


async def test_file_response_pathsend_when_advertised(site: Path) -> None:
    app = file_app(site / "public" / "hello.txt")
    sent = await call(app, http_scope("/file", extensions={"http.response.pathsend": {}}))
    kinds = [m["type"] for m in sent]
    assert kinds == ["http.response.start", "http.response.pathsend"]
    assert Path(sent[1]["path"]).is_absolute()
    assert Path(sent[1]["path"]) == (site / "public" / "hello.txt").resolve()
    sent = await call(app, http_scope("/file"))
    assert "http.response.pathsend" not in [m["type"] for m in sent]
    assert body_of(sent) == b"0123456789"


async def test_static_files_serves_and_never_escapes(site: Path) -> None:
    app = App()
    app.mount("/static", StaticFiles(site / "public"))
    app.mount("/site", StaticFiles(site / "public", html=True))
    async with TestClient(app) as client:
        response = await client.get("/static/hello.txt")
        assert response.content == b"0123456789"
        assert "etag" in response.headers
        assert "last-modified" in response.headers
        ranged = await client.get("/static/hello.txt", headers={"range": "bytes=0-0"})
        assert ranged.status_code == 206  # served through FileResponse
        for attack in (
            "/static/../secret.txt",
            "/static/%2e%2e/secret.txt",
            "/static/..%2fsecret.txt",
            "/static/sub/../../secret.txt",
            "/static/%2e%2e%2fsecret.txt",
            "/static/..\\secret.txt",
            "/static//etc/passwd",
            f"/static/{site}/secret.txt",
        ):
            attempt = await client.get(attack)
            assert attempt.status_code == 404, attack
            assert b"secret" not in attempt.content
        assert (await client.get("/static/sub/")).status_code == 404
        assert (await client.get("/site/sub/")).text == "<p>index</p>"
        assert (await client.get("/static/missing.txt")).status_code == 404


async def test_static_files_raw_traversal(site: Path) -> None:
    static = StaticFiles(site / "public")
    for path, raw in (
        ("/../secret.txt", b"/../secret.txt"),
        ("/sub/../../secret.txt", b"/sub/%2e%2e/%2e%2e/secret.txt"),
    ):
        sent = await call(static, http_scope(path, raw_path=raw))
        assert start_of(sent)["status"] == 404
        assert b"secret" not in body_of(sent)


# --- WebSocket ----------------------------------------------------------------------


async def test_websocket_attributes_and_messages() -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.websocket("/ws/{room}")
    async def ws(websocket: WebSocket, room: str) -> None:
        seen.update(
            path=websocket.path,
            url=websocket.url,
            headers=websocket.headers,
            query=websocket.query,
            cookies=websocket.cookies,
            client=websocket.client,
            subprotocols=websocket.subprotocols,
            path_params=websocket.path_params,
            room=room,
            scope=websocket.scope,
        )
        await websocket.accept(subprotocol="chat", headers={"x-hello": "1"})
        await websocket.send_text(await websocket.receive_text())
        await websocket.send_bytes(await websocket.receive_bytes())
        await websocket.send_json(await websocket.receive_json())
        await websocket.close(code=4001, reason="bye")

    async with (
        TestClient(app) as client,
        client.websocket_connect(
            "/ws/lobby?x=1",
            subprotocols=["chat", "other"],
            cookies={"c": "v"},
            headers={"x-h": "h"},
        ) as session,
    ):
        assert session.accepted_subprotocol == "chat"
        await session.send_text("hi")
        assert await session.receive_text() == "hi"
        await session.send_bytes(b"\x00")
        assert await session.receive_bytes() == b"\x00"
        await session.send_json({"a": 1})
        assert await session.receive_json() == {"a": 1}
        with pytest.raises(WebSocketDisconnect) as info:
            await session.receive_text()
        assert (info.value.code, info.value.reason) == (4001, "bye")
    assert seen["path"] == "/ws/lobby"
    assert isinstance(seen["url"], URL)
    assert seen["url"].scheme == "ws"
    assert isinstance(seen["headers"], CIMultiDictProxy)
    assert seen["headers"]["x-h"] == "h"
    assert isinstance(seen["query"], MultiDictProxy)
    assert seen["query"]["x"] == "1"
    assert seen["cookies"] == {"c": "v"}
    assert seen["client"] is not None
    assert seen["subprotocols"] == ["chat", "other"]
    assert seen["path_params"] == {"room": "lobby"}
    assert seen["room"] == "lobby"
    assert seen["scope"]["type"] == "websocket"


@pytest.mark.parametrize("kind", ["text", "bytes", "json"])
async def test_websocket_iterators_end_when_the_client_disconnects(kind: str) -> None:
    app = App()
    got: list[Any] = []
    finished = anyio.Event()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        async for message in getattr(websocket, f"iter_{kind}")():
            got.append(message)
        finished.set()

    values = {"text": ["a", "b"], "bytes": [b"a", b"b"], "json": [{"a": 1}, [2]]}[kind]
    async with TestClient(app) as client, client.websocket_connect("/ws") as session:
        for value in values:
            await getattr(session, f"send_{kind}")(value)
        await session.close()
    with anyio.fail_after(2):
        await finished.wait()
    assert got == values


async def test_websocket_disconnect_code_and_reason() -> None:
    app = App()
    caught: list[tuple[int, str]] = []

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.receive_text()
        except WebSocketDisconnect as exc:
            caught.append((exc.code, exc.reason))
            raise

    async with TestClient(app) as client, client.websocket_connect("/ws") as session:
        await session.close(code=4002, reason="leaving")
    assert caught == [(4002, "leaving")]


async def denial(
    app: App,
    path: str,
    extensions: dict[str, Any] | None = None,
    *,
    raise_server_exceptions: bool = True,
) -> TestResponse:
    """Connect to ``path``, expect the handshake refused, return the refusal."""
    async with TestClient(
        app, extensions=extensions, raise_server_exceptions=raise_server_exceptions
    ) as client:
        with pytest.raises(WebSocketDenied) as info:
            async with client.websocket_connect(path):
                pass
    return info.value.response


def deny_app(streaming: bool = False) -> App:
    app = App()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        if streaming:

            async def body() -> AsyncIterator[bytes]:
                yield b'{"error":'
                yield b'"nope"}'

            response: Response = StreamingResponse(
                body(), status_code=401, media_type="application/json"
            )
        else:
            response = JSONResponse({"error": "nope"}, status_code=401, headers={"x-why": "t"})
        await websocket.deny(response)

    return app


async def test_deny_with_the_extension() -> None:
    response = await denial(deny_app(), "/ws")
    assert isinstance(response, TestResponse)
    assert response.status_code == 401
    assert response.headers["x-why"] == "t"
    assert response.json() == {"error": "nope"}


async def test_deny_without_the_extension_closes_for_a_403() -> None:
    assert (await denial(deny_app(), "/ws", {})).status_code == 403


@pytest.mark.parametrize("streaming", [False, True])
async def test_deny_sends_one_start_and_one_whole_body(streaming: bool) -> None:
    sent = await run(deny_app(streaming), websocket_scope(extensions=WS_RESPONSE), [CONNECT])
    assert [m["type"] for m in sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert sent[0]["status"] == 401
    assert json.loads(sent[1]["body"]) == {"error": "nope"}
    assert not sent[1].get("more_body", False)
    sent = await run(deny_app(streaming), websocket_scope(), [CONNECT])
    assert [m["type"] for m in sent] == ["websocket.close"]


async def test_websocket_return_without_close_closes_with_1000() -> None:
    app = App()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("one")

    sent = await run(app, websocket_scope(), [CONNECT])
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[-1].get("code", 1000) == 1000


async def test_websocket_error_before_accept(caplog: pytest.LogCaptureFixture) -> None:
    app = App()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        raise SecretError("before accept")

    with caplog.at_level(logging.DEBUG, logger="microasgi"):
        assert (await denial(app, "/ws", {}, raise_server_exceptions=False)).status_code == 403
        refused = await denial(app, "/ws", raise_server_exceptions=False)
        # Refused, then the error reaches the server (which logs it; microasgi does not).
        with pytest.raises(SecretError, match="before accept"):
            await denial(app, "/ws")
    assert refused.status_code == 500
    assert b"hunter2" not in refused.content
    assert not [r for r in caplog.records if r.name.startswith("microasgi")]


async def test_websocket_unknown_path_is_refused() -> None:
    app = App()
    assert (await denial(app, "/nope", {})).status_code == 403
    assert (await denial(app, "/nope")).status_code == 404


async def test_websocket_error_after_accept_is_1011_then_reaches_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        raise SecretError("after accept")

    with caplog.at_level(logging.DEBUG, logger="microasgi"):
        sent = await run(app, websocket_scope(), [CONNECT], raises=SecretError)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[-1]["code"] == 1011
    assert not [r for r in caplog.records if r.name.startswith("microasgi")]


async def test_uncaught_websocket_disconnect_is_a_normal_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            await websocket.receive_text()

    with caplog.at_level(logging.DEBUG, logger="microasgi"):
        sent = await run(
            app, websocket_scope(), [CONNECT, {"type": "websocket.disconnect", "code": 1001}]
        )  # not re-raised
    assert [m["type"] for m in sent] == ["websocket.accept"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_websocket_accept_headers_refuse_cr_lf() -> None:
    app = App()
    refused: list[bool] = []

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        for kwargs in ({"headers": {"x": "a\r\nb"}}, {"headers": [("x", "a\nb")]}):
            try:
                await websocket.accept(**kwargs)
            except ValueError:
                refused.append(True)
        await websocket.accept(headers=[("x-ok", "1")])
        await websocket.close()

    async with TestClient(app) as client, client.websocket_connect("/ws") as session:
        assert ("x-ok", "1") in session.accept_headers
    assert refused == [True, True]


# --- TestClient ---------------------------------------------------------------------


async def test_test_response_fields_and_types() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> Response:
        return JSONResponse({"a": 1}, headers={"X-A": "1"})

    async with TestClient(app) as client:
        response = await client.get("/", params={"q": "1"}, headers={"x": "y"}, cookies={"c": "d"})
    assert isinstance(response, TestResponse)
    assert response.status_code == 200
    assert isinstance(response.headers, CIMultiDictProxy)
    assert response.headers["x-a"] == "1"
    assert response.content == b'{"a":1}'
    assert response.text == '{"a":1}'
    assert response.json() == {"a": 1}
    assert response.pushes == []
    assert response.early_hints == []
    assert isinstance(response.trailers, CIMultiDictProxy)


async def test_testclient_every_method_and_request() -> None:
    app = App()

    @app.route("/", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    async def index(request: Request) -> str:
        return request.method

    async with TestClient(app) as client:
        for method in ("get", "post", "put", "patch", "delete", "options"):
            assert (await getattr(client, method)("/")).text == method.upper()
        assert (await client.head("/")).status_code == 200
        assert (await client.request("PATCH", "/")).text == "PATCH"


async def test_testclient_extensions_none_means_defaults_and_dict_shapes_scope() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> list[str]:
        return sorted(request.scope["extensions"])

    defaults = [
        "http.response.early_hint",
        "http.response.push",
        "http.response.trailers",
        "websocket.http.response",
    ]
    async with TestClient(app, extensions=None) as client:
        assert (await client.get("/")).json() == defaults
    async with TestClient(app) as client:
        assert (await client.get("/")).json() == defaults
    async with TestClient(app, extensions={"http.response.pathsend": {}}) as client:
        assert (await client.get("/")).json() == ["http.response.pathsend"]


async def test_testclient_keeps_cookies() -> None:
    app = App()

    @app.get("/login")
    async def login(request: Request) -> Response:
        response = PlainTextResponse("in")
        response.set_cookie("sid", "abc")
        response.set_cookie("admin", "yes", path="/admin")
        response.set_cookie(
            "old", "x", expires=datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
        )
        return response

    @app.get("/logout")
    async def logout(request: Request) -> Response:
        response = PlainTextResponse("out")
        response.delete_cookie("sid")
        return response

    @app.get("/{any:path}")
    async def echo(request: Request, any: str) -> dict[str, str]:
        return request.cookies

    async with TestClient(app) as client:
        await client.get("/login")
        assert (await client.get("/page")).json() == {"sid": "abc"}
        assert (await client.get("/admin")).json() == {"sid": "abc", "admin": "yes"}
        assert (await client.get("/admin/x")).json() == {"sid": "abc", "admin": "yes"}
        assert (await client.get("/administrator")).json() == {"sid": "abc"}
        await client.get("/logout")
        assert (await client.get("/page")).json() == {}


async def test_testclient_body_kinds() -> None:
    app = App()

    @app.post("/")
    async def index(request: Request) -> dict[str, Any]:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            return {"json": await request.json()}
        form = await request.form()
        return {
            k: v if isinstance(v, str) else [v.filename, v.content_type] for k, v in form.items()
        }

    async with TestClient(app) as client:
        assert (await client.post("/", json={"a": 1})).json() == {"json": {"a": 1}}
        assert (await client.post("/", data={"a": "1"})).json() == {"a": "1"}
        response = await client.post(
            "/", data={"a": "1"}, files={"f": ("a.txt", b"...", "text/plain")}
        )
        assert response.json() == {"a": "1", "f": ["a.txt", "text/plain"]}


# --- command line and packaging -----------------------------------------------------


def test_cli_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "microasgi", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 0
    for option in ("--host", "--port", "--server", "--reload", "--workers"):
        assert option in result.stdout
    for server in ("uvicorn", "hypercorn", "granian", "daphne"):
        assert server in result.stdout


def test_cli_names_the_extra_of_a_missing_server() -> None:
    script = (
        "import contextlib, io, json, runpy, sys\n"
        "out = {}\n"
        "for server in ('uvicorn', 'hypercorn', 'granian', 'daphne'):\n"
        "    sys.modules[server] = None\n"
        "    sys.argv = ['microasgi', 'mod:app', '--server', server]\n"
        "    err = io.StringIO()\n"
        "    code = 0\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        try:\n"
        "            runpy.run_module('microasgi', run_name='__main__', alter_sys=True)\n"
        "        except SystemExit as exc:\n"
        "            code = exc.code\n"
        "    out[server] = [code, err.getvalue()]\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    extras = {
        "uvicorn": "microasgi[server]",
        "hypercorn": "microasgi[hypercorn]",
        "granian": "microasgi[granian]",
        "daphne": "microasgi[daphne]",
    }
    for server, extra in extras.items():
        code, message = out[server]
        assert code not in (0, None), server
        assert extra in message, (server, message)


def test_pyproject_extras() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for extra, package in (
        ("server", "uvicorn"),
        ("hypercorn", "hypercorn"),
        ("granian", "granian"),
        ("daphne", "daphne"),
        ("orjson", "orjson"),
    ):
        assert any(req.startswith(package) for req in extras[extra]), extra
    runtime = {req.split(">")[0].split("=")[0].split("[")[0] for req in project["dependencies"]}
    assert runtime == {"multidict", "yarl", "python-multipart", "anyio"}


# --- middleware details -------------------------------------------------------------


async def test_cors_defaults_refused_preflight_and_whole_origin_regex() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        return "x"

    app.add_middleware(CORSMiddleware, allow_origin_regex=r"https://.*\.example\.org")
    async with TestClient(app) as client:
        ok = await client.get("/", headers={"origin": "https://a.example.org"})
        assert ok.headers["access-control-allow-origin"] == "https://a.example.org"
        sneaky = await client.get("/", headers={"origin": "https://a.example.org.evil.com"})
        assert "access-control-allow-origin" not in sneaky.headers
        preflight = await client.options(
            "/",
            headers={
                "origin": "https://evil.com",
                "access-control-request-method": "GET",
            },
        )
        assert preflight.status_code == 400
        allowed = await client.options(
            "/",
            headers={"origin": "https://a.example.org", "access-control-request-method": "GET"},
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-max-age"] == "600"
        post = await client.options(
            "/",
            headers={"origin": "https://a.example.org", "access-control-request-method": "POST"},
        )
        assert post.status_code == 400  # allow_methods defaults to GET only


async def test_gzip_minimum_size_is_inclusive() -> None:
    app = App()

    @app.get("/{n:int}")
    async def sized(request: Request, n: int) -> str:
        return "a" * n

    app.add_middleware(GZipMiddleware, minimum_size=500, compresslevel=9)
    async with TestClient(app) as client:
        at = await client.get("/500", headers={"accept-encoding": "gzip"})
        assert at.headers.get("content-encoding") == "gzip"
        below = await client.get("/499", headers={"accept-encoding": "gzip"})
        assert "content-encoding" not in below.headers


# --- contract failures found by the audit (kept out of the committed file) ----------


async def test_tuple_return_with_a_response_body() -> None:
    # "a tuple (body, status) ... with body one of those": a Response is one of those.
    app = App()

    @app.get("/")
    async def index(request: Request) -> Any:
        return PlainTextResponse("made"), 201, {"x-a": "1"}

    response = await get(app)
    assert response.status_code == 201
    assert response.text == "made"
    assert response.headers["x-a"] == "1"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Response(b"x", media_type="text/plain\r\nSet-Cookie: evil=1"),
        lambda: HTMLResponse("x", media_type="text/html\nX-Injected: 1"),
        lambda: StreamingResponse(iter([b""]), media_type="text/plain\r\nX-Injected: 1"),
        lambda: FileResponse(__file__, media_type="text/plain\r\nX-Injected: 1"),
    ],
)
def test_media_type_with_cr_lf_is_refused(make: Any) -> None:
    # "Header values holding CR or LF are refused with ValueError": media_type is the
    # Content-Type header's value.
    with pytest.raises(ValueError, match="CR"):
        make()


async def test_push_path_with_cr_lf_is_refused() -> None:
    app = App()
    refused: list[bool] = []

    @app.get("/")
    async def index(request: Request) -> str:
        try:
            await request.push("/a.css\r\nX-Injected: 1")
        except ValueError:
            refused.append(True)
        return ""

    response = await get(app)
    assert refused == [True]
    assert response.pushes == []


async def test_http_exception_headers_with_cr_lf_end_as_a_500_and_an_error() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        raise HTTPException(401, headers={"www-authenticate": "Basic\r\nX-Injected: 1"})

    sent = await run(app, http_scope("/"), then=DISCONNECT, raises=ValueError)
    assert start_of(sent)["status"] == 500


async def test_is_disconnected_does_not_bypass_max_body_size() -> None:
    app = App(max_body_size=10)

    @app.post("/")
    async def index(request: Request) -> str:
        for _ in range(30):  # a long-poll handler checking for the client
            await request.is_disconnected()
        return str(len(await request.body()))

    sent = await call(app, http_scope("/", "POST"), [b"x"] * 30)
    assert start_of(sent)["status"] == 413


async def test_streaming_the_request_body_back_loses_nothing_on_asgi_2_3() -> None:
    # uvicorn (h11 and httptools) speaks spec_version 2.3.
    app = App()

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return StreamingResponse(request.stream())

    chunks = [b"ab", b"cd", b"ef", b"gh"]
    sent: list[Message] = []
    done = anyio.Event()

    async def receive() -> Message:
        await anyio.lowlevel.checkpoint()  # a real server's receive yields to the loop
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    with anyio.fail_after(5):
        await app(http_scope("/echo", "POST", spec_version="2.3"), receive, send)
    assert body_of(sent) == b"abcdefgh"


async def test_echoing_a_body_over_the_limit_on_asgi_2_3_ends_instead_of_hanging() -> None:
    # On 2.3 the disconnect watcher reads the body and relays it. The message that crosses
    # max_body_size must reach the reader, which then fails: dropping it left the reader
    # waiting for bytes that never came, and the client waiting for the end of a response.
    app = App(max_body_size=4)

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return StreamingResponse(request.stream())

    chunks = [b"abc", b"def", b"ghi"]
    sent: list[Message] = []

    async def receive() -> Message:
        await anyio.lowlevel.checkpoint()
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        await anyio.sleep_forever()  # the client waits for the response
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        with pytest.raises(HTTPException) as failed:
            await app(http_scope("/echo", "POST", spec_version="2.3"), receive, send)
    assert failed.value.status_code == 413
    assert body_of(sent) == b"abc"


async def test_a_long_path_against_path_routes_is_answered() -> None:
    # The cost is bounded structurally in test_routing.py (trie visits, not seconds):
    # here, a 16 KB path gets its 405 and 404 like any other.
    app = App()

    @app.get("/files/{p:path}")
    async def files(request: Request, p: str) -> str:
        return p

    @app.get("/docs/{p:path}/edit")
    async def edit(request: Request, p: str) -> str:
        return p

    long_path = "a/" * 8000 + "b"  # 16 KB: well within what servers accept
    async with TestClient(app) as client:
        assert (await client.post("/files/" + long_path)).status_code == 405
        assert (await client.get("/docs/" + long_path)).status_code == 404


async def test_a_failed_sibling_startup_still_cleans_up_the_started_mounts() -> None:
    events: list[str] = []
    good = App()

    @good.lifespan
    async def good_life(app: App) -> AsyncIterator[None]:
        events.append("open")
        try:
            yield
        finally:
            await anyio.lowlevel.checkpoint()
            events.append("closed")

    bad = App()

    @bad.on_startup
    async def boom() -> None:
        raise RuntimeError("bad child")

    app = App()
    app.mount("/good", good)
    app.mount("/bad", bad)
    replies = await lifespan(app)
    assert replies == ["lifespan.startup.failed:bad child"]
    assert events == ["open", "closed"]


async def test_a_failed_mount_shutdown_still_runs_the_parents_shutdown() -> None:
    events: list[str] = []
    child = App()

    @child.on_shutdown
    async def child_down() -> None:
        raise RuntimeError("child shutdown")

    app = App()

    @app.on_shutdown
    async def parent_down() -> None:
        events.append("parent hook")

    app.mount("/c", child)
    replies = await lifespan(app)
    assert replies[-1] == "lifespan.shutdown.failed:child shutdown"
    assert events == ["parent hook"]


async def test_websocket_error_before_accept_answers_after_the_connect_message() -> None:
    # The denial extension: HTTP response messages go "after the websocket.connect message".
    app = App()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        raise SecretError

    log: list[str] = []

    async def receive() -> Message:
        log.append("receive")
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        log.append(message["type"])

    for path, error in (("/ws", SecretError), ("/missing", None)):
        log.clear()
        raised: type[Exception] | None = None
        try:
            await app(websocket_scope(path, extensions=WS_RESPONSE), receive, send)
        except Exception as exc:  # an unexpected error propagates, after the answer
            raised = type(exc)
        assert raised is error
        assert log[0] == "receive", (path, log)


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_streaming_the_request_body_stops_cleanly_when_the_client_leaves(
    spec_version: str,
) -> None:
    # "StreamingResponse ... stops cleanly when the client disconnects": a ClientDisconnect
    # from request.stream() inside the stream must not reach the server as an error.
    app = App()

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return StreamingResponse(request.stream())

    incoming = [{"type": "http.request", "body": b"ab", "more_body": True}, DISCONNECT]
    await run(app, http_scope("/echo", "POST", spec_version=spec_version), incoming)
