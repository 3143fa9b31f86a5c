"""The App: return conversion, errors, middleware, mounting, root_path, the scope rules."""

from __future__ import annotations

import copy
import logging
from typing import Any

import asgi_harness as harness
import pytest

from microasgi import (
    App,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    Request,
    Response,
    StreamingResponse,
)
from microasgi._types import Message, Receive, Scope, Send
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio


# --- return values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status", "content_type", "body"),
    [
        ("héllo", 200, "text/plain; charset=utf-8", "héllo".encode()),
        (b"\x00\x01", 200, "application/octet-stream", b"\x00\x01"),
        ({"a": [1, "é"]}, 200, "application/json", '{"a":[1,"é"]}'.encode()),
        ([1, 2], 200, "application/json", b"[1,2]"),
        (None, 204, None, b""),
        (("created", 201), 201, "text/plain; charset=utf-8", b"created"),
        (({"ok": True}, 202, {"x-extra": "1"}), 202, "application/json", b'{"ok":true}'),
        (
            (b"raw", 200, [("x-extra", "1"), ("x-extra", "2")]),
            200,
            "application/octet-stream",
            b"raw",
        ),
        ((None, 200), 200, None, b""),
    ],
)
async def test_return_values_become_responses(
    value: Any, status: int, content_type: str | None, body: bytes
) -> None:
    app = App()

    @app.get("/")
    async def handler(request: Request) -> Any:
        return value

    async with TestClient(app) as client:
        response = await client.get("/")
    assert response.status_code == status
    assert response.headers.get("content-type") == content_type
    assert response.content == body
    if status == 204:
        assert "content-length" not in response.headers
    else:
        assert response.headers["content-length"] == str(len(body))
    if isinstance(value, tuple) and len(value) == 3:
        assert response.headers.getall("x-extra") == (["1", "2"] if status == 200 else ["1"])


async def test_an_unsupported_return_value_is_a_500_and_an_error_naming_the_type() -> None:
    app = App()

    @app.get("/")
    async def handler(request: Request) -> Any:
        return 3.5

    async with TestClient(app) as client:
        with pytest.raises(TypeError, match="returned float"):
            await client.get("/")
    async with TestClient(app, raise_server_exceptions=False) as client:
        assert (await client.get("/")).status_code == 500


async def test_sync_handlers_run_in_a_thread() -> None:
    import threading

    app = App()
    main = threading.get_ident()

    @app.get("/")
    def handler(request: Request) -> dict[str, bool]:
        return {"other_thread": threading.get_ident() != main}

    async with TestClient(app) as client:
        assert (await client.get("/")).json() == {"other_thread": True}


# --- errors -------------------------------------------------------------------------


async def test_http_exception_gives_its_status_detail_and_headers() -> None:
    app = App()

    @app.get("/")
    async def handler(request: Request) -> None:
        raise HTTPException(418, headers={"x-teapot": "yes"})

    @app.get("/detail")
    async def detail(request: Request) -> None:
        raise HTTPException(403, "go away")

    async with TestClient(app) as client:
        teapot = await client.get("/")
        denied = await client.get("/detail")
    assert teapot.status_code == 418
    assert teapot.text == "I'm a Teapot"
    assert teapot.headers["x-teapot"] == "yes"
    assert (denied.status_code, denied.text) == (403, "go away")
    exc = HTTPException(404)
    assert (exc.status_code, exc.detail, exc.headers) == (404, "Not Found", None)


async def test_exception_handlers_by_status_and_by_class() -> None:
    app = App()

    class Missing(LookupError):
        pass

    @app.exception_handler(404)
    async def not_found(request: Request, exc: HTTPException) -> Response:
        return JSONResponse({"missing": request.url.path}, 404)

    @app.exception_handler(LookupError)
    async def lookup(request: Request, exc: LookupError) -> Response:
        return PlainTextResponse(f"lookup: {exc}", 409)

    @app.get("/raise")
    async def raising(request: Request) -> None:
        raise Missing("thing")

    async with TestClient(app) as client:
        missing = await client.get("/nowhere")
        conflict = await client.get("/raise")
    assert missing.json() == {"missing": "/nowhere"}
    assert (conflict.status_code, conflict.text) == (409, "lookup: thing")


async def test_unhandled_error_is_a_plain_500_then_reaches_the_server_unlogged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.get("/")
    async def handler(request: Request) -> None:
        raise RuntimeError("secret database password")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    # As a server sees it: the 500 goes out, then the error comes out of the app.
    with (
        caplog.at_level(logging.DEBUG, logger="microasgi"),
        pytest.raises(RuntimeError, match="secret database password"),
    ):
        await app(_scope("/"), harness.scripted(harness.request_body(b"")), send)
    assert sent[0]["status"] == 500
    assert harness.body_of(sent) == b"Internal Server Error"
    # The server logs it; microasgi does not log it a second time.
    assert not [r for r in caplog.records if r.name == "microasgi"]
    async with TestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert "secret" not in response.text
    assert "RuntimeError" not in response.text


async def test_the_test_client_raises_what_the_app_lets_out() -> None:
    app = App()

    @app.get("/")
    async def handler(request: Request) -> None:
        raise LookupError("raised in the test")

    async with TestClient(app) as client:
        with pytest.raises(LookupError, match="raised in the test"):
            await client.get("/")


async def test_debug_shows_the_traceback() -> None:
    app = App(debug=True)

    @app.get("/")
    async def handler(request: Request) -> None:
        raise RuntimeError("visible in debug")

    async with TestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert "RuntimeError: visible in debug" in response.text
    assert "Traceback" in response.text


async def test_custom_500_handler() -> None:
    app = App()

    @app.exception_handler(500)
    async def oops(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("custom oops", 500)

    @app.get("/")
    async def handler(request: Request) -> None:
        raise ValueError("x")

    async with TestClient(app) as client:
        # The 500 handler only shapes the 500: the error still propagates.
        with pytest.raises(ValueError, match="x"):
            await client.get("/")
    async with TestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/")
    assert (response.status_code, response.text) == (500, "custom oops")


async def test_failing_exception_handler_still_gives_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.exception_handler(ValueError)
    async def broken(request: Request, exc: Exception) -> Response:
        raise KeyError("handler bug")

    @app.get("/")
    async def handler(request: Request) -> None:
        raise ValueError("x")

    async with TestClient(app) as client:
        # The handler's own error is what reaches the server, after a plain 500.
        with pytest.raises(KeyError, match="handler bug"):
            await client.get("/")
    async with TestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/")
    assert (response.status_code, response.text) == (500, "Internal Server Error")


async def test_error_after_the_response_started_propagates_without_closing_the_body() -> None:
    app = App()

    async def chunks() -> Any:
        yield b"first"
        raise RuntimeError("mid-stream")

    @app.get("/")
    async def handler(request: Request) -> StreamingResponse:
        return StreamingResponse(chunks())

    # A server's receive blocks until the client leaves.
    receive = harness.scripted([{"type": "http.request", "body": b""}])
    send = harness.Recorder()
    sent = send.messages

    scope = _scope("/")
    with pytest.raises(RuntimeError, match="mid-stream"):
        await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start"
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert bodies
    assert all(m.get("more_body") for m in bodies)


async def test_header_with_crlf_set_later_never_reaches_the_wire() -> None:
    app = App()

    @app.get("/")
    async def handler(request: Request) -> Response:
        response = PlainTextResponse("x")
        response.headers["x-bad"] = "a\r\nSet-Cookie: evil=1"
        return response

    async with TestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert "set-cookie" not in response.headers


def _scope(path: str, **extra: Any) -> Scope:
    """An ASGI 2.3 scope for a client of example.com, with no ``extensions`` key."""
    return harness.http_scope(
        path, spec_version="2.3", extensions=None, host="example.com", **extra
    )


async def _call(app: Any, scope: Scope, body: bytes = b"") -> tuple[int, bytes, list[Message]]:
    """Send ``body`` whole, then leave; the response's status, body and messages."""
    sent = await harness.run(app, scope, harness.request_body(body), then=harness.DISCONNECT)
    return harness.start_of(sent)["status"], harness.body_of(sent), sent


async def test_unknown_scope_type_is_refused() -> None:
    app = App()

    async def receive() -> Message:
        raise AssertionError

    async def send(message: Message) -> None:
        raise AssertionError

    with pytest.raises(ValueError, match="unsupported ASGI scope type"):
        await app({"type": "telepathy"}, receive, send)


# --- the scope ----------------------------------------------------------------------


async def test_the_servers_scope_and_nested_values_are_never_mutated() -> None:
    # granian shares extensions and asgi dicts across requests.
    app = App()
    sub = App()

    @sub.get("/x/{n:int}")
    async def x(request: Request, n: int) -> str:
        request.state.touched = True
        await request.body()
        return str(request.url)

    app.mount("/sub", sub)
    shared_ext: dict[str, Any] = {"http.response.push": {}}
    shared_asgi = {"version": "3.0", "spec_version": "2.4"}
    headers = [(b"host", b"h")]
    scope = _scope("/sub/x/1", asgi=shared_asgi)
    scope["extensions"], scope["headers"] = shared_ext, headers  # the shared objects, not copies
    scope["state"] = {"from_lifespan": 1}
    before = copy.deepcopy({k: v for k, v in scope.items() if k != "state"})
    for _ in range(2):
        status, _body, _ = await _call(app, scope)
        assert status == 200
    after = {k: v for k, v in scope.items() if k != "state" and not k.startswith("microasgi.")}
    after.pop("path_params", None)
    assert after == before
    assert shared_ext == {"http.response.push": {}}
    assert shared_asgi == {"version": "3.0", "spec_version": "2.4"}
    assert headers == [(b"host", b"h")]


async def test_body_is_cached_so_a_middleware_read_does_not_starve_the_handler() -> None:
    # Starlette #495: a middleware reading the body made the handler wait forever.
    class ReadsBody:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                seen.append(await Request(scope, receive).body())
            await self.app(scope, receive, send)

    seen: list[bytes] = []
    app = App()
    app.add_middleware(ReadsBody)

    @app.post("/")
    async def handler(request: Request) -> bytes:
        return await request.body()

    async with TestClient(app) as client:
        response = await client.post("/", content=b"payload")
    assert response.content == b"payload"
    assert seen == [b"payload"]


async def test_middleware_order_and_pure_asgi() -> None:
    calls: list[str] = []

    def tagging(tag: str) -> Any:
        class Tag:
            def __init__(self, app: Any, suffix: str = "") -> None:
                self.app, self.suffix = app, suffix

            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
                calls.append(tag + self.suffix)
                await self.app(scope, receive, send)

        return Tag

    app = App()
    app.add_middleware(tagging("inner"), suffix="!")
    app.add_middleware(tagging("outer"))
    app.add_route("/", lambda request: "ok")
    async with TestClient(app) as client:
        await client.get("/")
    assert calls[-2:] == ["outer", "inner!"]
    with pytest.raises(RuntimeError, match="after the application has started"):
        app.add_middleware(tagging("late"))


async def test_error_raised_in_middleware_still_gives_a_500_and_propagates() -> None:
    class Broken:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                raise RuntimeError("middleware bug")
            await self.app(scope, receive, send)

    app = App()
    app.add_middleware(Broken)
    async with TestClient(app) as client:
        with pytest.raises(RuntimeError, match="middleware bug"):
            await client.get("/")
    async with TestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/")
    assert (response.status_code, response.text) == (500, "Internal Server Error")


async def test_middleware_sees_error_responses() -> None:
    statuses: list[int] = []

    class Spy:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            async def spy(message: Message) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])
                await send(message)

            await self.app(scope, receive, spy)

    app = App()
    app.add_middleware(Spy)
    async with TestClient(app) as client:
        await client.get("/missing")
    assert statuses == [404]


# --- mounting and root_path ---------------------------------------------------------


def _reporting_app() -> App:
    sub = App()

    @sub.get("/", name="home")
    async def home(request: Request) -> dict[str, Any]:
        return _report(request)

    @sub.get("/page/{n:int}", name="page")
    async def page(request: Request, n: int) -> dict[str, Any]:
        return _report(request)

    return sub


def _report(request: Request) -> dict[str, Any]:
    return {
        "path": request.scope["path"],
        "root_path": request.scope["root_path"],
        "url": str(request.url),
        "page_url": str(request.url_for("sub:page", n=2)),
    }


async def test_mounted_app_gets_spec_style_scope_and_urls() -> None:
    app = App()
    app.mount("/sub", _reporting_app(), name="sub")
    async with TestClient(app) as client:
        page = (await client.get("/sub/page/1")).json()
        home = (await client.get("/sub")).json()
        home_slash = (await client.get("/sub/")).json()
    assert page == {
        "path": "/sub/page/1",
        "root_path": "/sub",
        "url": "http://testserver/sub/page/1",
        "page_url": "http://testserver/sub/page/2",
    }
    assert home["path"] == "/sub"
    assert home["root_path"] == "/sub"
    assert home_slash["path"] == "/sub/"
    assert app.url_path_for("sub:page", n=5) == "/sub/page/5"


async def test_mount_matches_only_at_a_slash_boundary() -> None:
    app = App()
    app.mount("/sub", _reporting_app(), name="sub")
    async with TestClient(app) as client:
        assert (await client.get("/subway")).status_code == 404


@pytest.mark.parametrize("prefixed", [True, False], ids=["uvicorn-style", "hypercorn-style"])
async def test_root_path_prefixed_or_not_routes_the_same(prefixed: bool) -> None:
    # uvicorn puts root_path into path; hypercorn, daphne and granian leave it out.
    app = App()
    app.mount("/sub", _reporting_app(), name="sub")

    @app.get("/top", name="top")
    async def top(request: Request) -> dict[str, Any]:
        return {"path": request.path, "url": str(request.url), "me": str(request.url_for("top"))}

    path = "/proxy/top" if prefixed else "/top"
    status, body, _ = await _call(app, _scope(path, root_path="/proxy", raw_path=path.encode()))
    assert status == 200
    import json

    assert json.loads(body) == {
        "path": "/proxy/top",
        "url": "http://example.com/proxy/top",
        "me": "http://example.com/proxy/top",
    }
    sub_path = "/proxy/sub/page/3" if prefixed else "/sub/page/3"
    status, body, _ = await _call(app, _scope(sub_path, root_path="/proxy"))
    assert status == 200
    assert json.loads(body) == {
        "path": "/proxy/sub/page/3",
        "root_path": "/proxy/sub",
        "url": "http://example.com/proxy/sub/page/3",
        "page_url": "http://example.com/proxy/sub/page/2",
    }


async def test_path_equal_to_root_path_routes_as_slash() -> None:
    app = App()
    app.add_route("/", lambda request: "root")
    status, body, _ = await _call(app, _scope("/proxy", root_path="/proxy"))
    assert (status, body) == (200, b"root")


async def test_mount_any_asgi_app() -> None:
    seen: list[Scope] = []

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise RuntimeError("no lifespan here")
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"raw"})

    app = App()
    app.mount("/raw", raw)
    async with TestClient(app) as client:  # the raw app's lifespan failure is tolerated
        response = await client.get("/raw/anything?x=1")
    assert response.content == b"raw"
    assert seen[0]["root_path"] == "/raw"
    assert seen[0]["path"] == "/raw/anything"


async def test_mounted_app_applies_its_own_settings() -> None:
    small = App(max_body_size=10)
    small.add_route("/", lambda request: "never", methods=["POST"])

    @small.post("/echo")
    async def echo(request: Request) -> bytes:
        return await request.body()

    app = App(max_body_size=1000)

    @app.post("/echo")
    async def big_echo(request: Request) -> bytes:
        return await request.body()

    app.mount("/small", small)
    async with TestClient(app) as client:
        assert (await client.post("/echo", content=b"x" * 100)).status_code == 200
        assert (await client.post("/small/echo", content=b"x" * 100)).status_code == 413
        assert (await client.post("/small/echo", content=b"x" * 10)).status_code == 200


async def test_a_response_class_with_its_own_call_is_still_ended_correctly() -> None:
    # A response written for Starlette overrides __call__: its sends go through the
    # exchange too, so an error after its start must not become a second start.
    class Fails(Response):
        def __init__(self, after_start: bool) -> None:
            super().__init__(b"")
            self.after_start = after_start

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if self.after_start:
                await send({"type": "http.response.start", "status": 200, "headers": []})
            raise RuntimeError("custom response failed")

    app = App()
    app.add_route("/before", lambda request: Fails(after_start=False))
    app.add_route("/after", lambda request: Fails(after_start=True))
    async with TestClient(app, raise_server_exceptions=False) as client:
        assert (await client.get("/before")).status_code == 500
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(RuntimeError, match="custom response failed"):
        await app(_scope("/after"), receive, send)
    assert [m["type"] for m in sent] == ["http.response.start"]
