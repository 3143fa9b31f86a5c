"""CORSMiddleware: what a browser sees for preflights, simple and credentialed requests."""

from __future__ import annotations

import gzip
import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from asgi_harness import body_of, http_scope, start_of, websocket_scope

from microasgi import App, PlainTextResponse, Request, WebSocket
from microasgi._types import Message, Receive, Scope, Send
from microasgi.middleware.cors import CORSMiddleware
from microasgi.middleware.gzip import GZipMiddleware
from microasgi.testing import TestClient

from ._asgi import assert_passes_through, call, header, headers_of, responder

pytestmark = pytest.mark.anyio

FRONT = "https://front.example"
PREFLIGHT = (("Origin", FRONT), ("Access-Control-Request-Method", "PUT"))


class Recorder:
    """An app that answers "hello" and remembers whether it ran."""

    def __init__(self, **kwargs: Any) -> None:
        self.calls = 0
        self.inner = responder(**kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        await self.inner(scope, receive, send)


def cors(app: Any = None, **options: Any) -> CORSMiddleware:
    return CORSMiddleware(app or responder(), **options)


async def preflight(mw: CORSMiddleware, *headers: tuple[str, str]) -> list[Message]:
    return await call(mw, http_scope(method="OPTIONS", headers=headers))


# --- preflight ---


async def test_allowed_preflight_is_answered_without_the_app() -> None:
    app = Recorder()
    mw = cors(app, allow_origins=[FRONT], allow_methods=["GET", "PUT"], allow_headers=["X-Token"])
    sent = await preflight(
        mw, *PREFLIGHT, ("Access-Control-Request-Headers", "x-token, Content-Type")
    )
    assert app.calls == 0
    assert start_of(sent)["status"] == 200
    assert header(sent, "access-control-allow-origin") == FRONT
    assert header(sent, "access-control-allow-methods") == "GET, PUT"
    allowed = header(sent, "access-control-allow-headers") or ""
    assert {"x-token", "content-type"} <= {h.strip() for h in allowed.split(",")}
    assert header(sent, "access-control-max-age") == "600"
    assert header(sent, "access-control-allow-credentials") is None
    assert header(sent, "vary") == "Origin"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ((("Origin", "https://evil.example"), ("Access-Control-Request-Method", "GET")), "origin"),
        ((("Origin", FRONT), ("Access-Control-Request-Method", "DELETE")), "method"),
        (
            (
                ("Origin", FRONT),
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "x-token, x-other"),
            ),
            "headers",
        ),
    ],
)
async def test_refused_preflight_is_400_with_the_reason(
    headers: tuple[tuple[str, str], ...], reason: str
) -> None:
    app = Recorder()
    mw = cors(app, allow_origins=[FRONT], allow_headers=["x-token"])
    sent = await preflight(mw, *headers)
    assert app.calls == 0
    assert start_of(sent)["status"] == 400
    assert header(sent, "content-type") == "text/plain; charset=utf-8"
    assert body_of(sent) == f"Disallowed CORS {reason}".encode()
    assert header(sent, "access-control-allow-origin") is None


async def test_safelisted_headers_are_always_allowed() -> None:
    mw = cors(allow_origins=[FRONT])
    sent = await preflight(
        mw,
        ("Origin", FRONT),
        ("Access-Control-Request-Method", "GET"),
        (
            "Access-Control-Request-Headers",
            "accept, accept-language, content-language, content-type",
        ),
    )
    assert start_of(sent)["status"] == 200


async def test_wildcard_methods_and_headers_echo_the_request() -> None:
    mw = cors(allow_origins=["*"], allow_methods=["*"], allow_headers=["*"], max_age=None)
    sent = await preflight(
        mw,
        ("Origin", FRONT),
        ("Access-Control-Request-Method", "PURGE"),
        ("Access-Control-Request-Headers", "X-A, x-b"),
    )
    assert start_of(sent)["status"] == 200
    assert header(sent, "access-control-allow-origin") == "*"
    assert header(sent, "access-control-allow-methods") == "PURGE"
    assert header(sent, "access-control-allow-headers") == "x-a, x-b"
    assert header(sent, "access-control-max-age") is None
    # "*" answers every origin alike: nothing for a cache to tell apart.
    assert header(sent, "vary") is None


async def test_options_without_request_method_reaches_the_app() -> None:
    app = Recorder(status=204, body=b"")
    mw = cors(app, allow_origins=[FRONT])
    sent = await call(mw, http_scope(method="OPTIONS", headers=[("Origin", FRONT)]))
    assert app.calls == 1
    assert start_of(sent)["status"] == 204
    assert header(sent, "access-control-allow-origin") == FRONT


# --- actual requests ---


async def test_allowed_origin_gets_its_origin_back_and_exposed_headers() -> None:
    mw = cors(allow_origins=[FRONT], expose_headers=["X-Total", "X-Page"])
    sent = await call(mw, http_scope(headers=[("Origin", FRONT)]))
    assert body_of(sent) == b"hello"
    assert header(sent, "access-control-allow-origin") == FRONT
    assert header(sent, "access-control-expose-headers") == "x-total, x-page"
    assert header(sent, "vary") == "Origin"


async def test_disallowed_origin_gets_the_response_without_cors_headers() -> None:
    mw = cors(allow_origins=[FRONT])
    sent = await call(mw, http_scope(headers=[("Origin", "https://evil.example")]))
    assert body_of(sent) == b"hello"
    assert not [k for k, _ in headers_of(sent) if k.startswith("access-control-")]
    assert header(sent, "vary") == "Origin"


async def test_request_without_origin_is_untouched_but_varies() -> None:
    mw = cors(allow_origins=[FRONT], allow_credentials=True)
    sent = await call(mw, http_scope())
    assert headers_of(sent) == [("content-type", "text/plain"), ("vary", "Origin")]


async def test_wildcard_without_credentials_sends_a_star_and_no_vary() -> None:
    mw = cors(allow_origins=["*"])
    sent = await call(mw, http_scope(headers=[("Origin", FRONT)]))
    assert header(sent, "access-control-allow-origin") == "*"
    assert header(sent, "vary") is None
    plain = await call(mw, http_scope())
    assert headers_of(plain) == [("content-type", "text/plain")]


async def test_wildcard_with_credentials_echoes_the_origin_never_a_star() -> None:
    mw = cors(allow_origins=["*"], allow_credentials=True)
    sent = await call(mw, http_scope(headers=[("Origin", FRONT)]))
    assert header(sent, "access-control-allow-origin") == FRONT
    assert header(sent, "access-control-allow-credentials") == "true"
    assert header(sent, "vary") == "Origin"
    pre = await preflight(mw, *PREFLIGHT[:1], ("Access-Control-Request-Method", "GET"))
    assert header(pre, "access-control-allow-origin") == FRONT
    assert header(pre, "access-control-allow-credentials") == "true"


async def test_configured_origin_is_matched_case_insensitively() -> None:
    mw = cors(allow_origins=["https://Front.Example"])
    sent = await call(mw, http_scope(headers=[("Origin", FRONT)]))
    assert header(sent, "access-control-allow-origin") == FRONT


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.com", True),
        ("https://a.b.example.com", True),
        ("https://app.example.com.evil.net", False),
        ("http://app.example.com", False),
        ("xhttps://app.example.com", False),
    ],
)
async def test_origin_regex_must_match_the_whole_origin(origin: str, allowed: bool) -> None:
    mw = cors(allow_origin_regex=r"https://[a-z.]+\.example\.com")
    sent = await call(mw, http_scope(headers=[("Origin", origin)]))
    assert header(sent, "access-control-allow-origin") == (origin if allowed else None)
    compiled = cors(allow_origin_regex=re.compile(r"https://[a-z.]+\.example\.com"))
    sent = await preflight(compiled, ("Origin", origin), ("Access-Control-Request-Method", "GET"))
    assert start_of(sent)["status"] == (200 if allowed else 400)


@pytest.mark.parametrize(
    ("app_vary", "expected"),
    [
        ([(b"vary", b"Accept-Encoding")], [("vary", "Accept-Encoding, Origin")]),
        ([(b"vary", b"origin")], [("vary", "origin")]),
        ([(b"vary", b"Cookie"), (b"vary", b"Origin")], [("vary", "Cookie"), ("vary", "Origin")]),
        ([(b"vary", b"*")], [("vary", "*")]),
    ],
)
async def test_vary_is_merged_into_the_apps_not_duplicated(
    app_vary: list[tuple[bytes, bytes]], expected: list[tuple[str, str]]
) -> None:
    mw = cors(responder(headers=app_vary), allow_origins=[FRONT])
    sent = await call(mw, http_scope(headers=[("Origin", FRONT)]))
    assert [(k, v) for k, v in headers_of(sent) if k == "vary"] == expected


async def test_cors_headers_the_app_set_are_replaced_not_doubled() -> None:
    app = responder(headers=[(b"access-control-allow-origin", b"https://other.example")])
    sent = await call(cors(app, allow_origins=[FRONT]), http_scope(headers=[("Origin", FRONT)]))
    assert header(sent, "access-control-allow-origin") == FRONT


async def test_the_apps_messages_are_not_mutated() -> None:
    raw = [(b"content-type", b"text/plain")]
    mw = cors(responder(headers=raw), allow_origins=[FRONT])
    for _ in range(3):
        sent = await call(mw, http_scope(headers=[("Origin", FRONT)]))
        assert header(sent, "vary") == "Origin"
    assert raw == [(b"content-type", b"text/plain")]


async def test_websocket_and_lifespan_pass_through_untouched() -> None:
    ws = websocket_scope(headers=[("Origin", "https://evil.example")])
    await assert_passes_through(
        lambda app: cors(app, allow_origins=[FRONT]), ws, {"type": "lifespan"}
    )


# --- configuration errors ---


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"allow_origins": FRONT}, TypeError),
        ({"allow_origins": ["https://front.example/"]}, ValueError),
        ({"allow_origins": ["front.example"]}, ValueError),
        ({"allow_methods": ["GET POST"]}, ValueError),
        ({"allow_headers": ["x\r\nevil"]}, ValueError),
        ({"expose_headers": ["bad name"]}, ValueError),
        ({"max_age": -1}, ValueError),
        ({"allow_origin_regex": "("}, re.error),
    ],
)
def test_bad_configuration_fails_at_construction(
    options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        cors(**options)


# --- as a user writes it: App + add_middleware + TestClient ---


def api(**options: Any) -> App:
    """A small app with GET/PUT items, an error route, and CORS configured by ``options``."""
    app = App()

    @app.route("/items", methods=["GET", "PUT"])
    async def items(request: Request) -> Any:
        return {"items": [1, 2]}

    @app.get("/vary")
    async def vary(request: Request) -> Any:
        return PlainTextResponse("per language", headers={"Vary": "Accept-Language"})

    @app.get("/boom")
    async def boom(request: Request) -> Any:
        raise RuntimeError("boom")

    app.add_middleware(CORSMiddleware, **options)
    return app


async def test_app_preflight_allowed_then_actual_request() -> None:
    app = api(allow_origins=[FRONT], allow_methods=["GET", "PUT"], allow_headers=["x-token"])
    async with TestClient(app) as client:
        pre = await client.options(
            "/items",
            headers={
                "Origin": FRONT,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "Content-Type, X-Token",
            },
        )
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == FRONT
        assert pre.headers["access-control-allow-methods"] == "GET, PUT"
        assert pre.headers["access-control-max-age"] == "600"
        r = await client.put("/items", json={}, headers={"Origin": FRONT})
    assert r.json() == {"items": [1, 2]}
    assert r.headers["access-control-allow-origin"] == FRONT
    assert r.headers.getall("vary") == ["Origin"]


async def test_app_preflight_refused_never_reaches_the_route() -> None:
    app = api(allow_origins=[FRONT])
    async with TestClient(app) as client:
        r = await client.options(
            "/items", headers={"Origin": FRONT, "Access-Control-Request-Method": "PUT"}
        )
    assert r.status_code == 400
    assert r.text == "Disallowed CORS method"
    assert "access-control-allow-origin" not in r.headers


async def test_app_credentials_echo_the_origin() -> None:
    app = api(allow_origins=["*"], allow_credentials=True, expose_headers=["x-total"])
    async with TestClient(app) as client:
        r = await client.get("/items", headers={"Origin": "http://localhost:5173"})
    assert r.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-expose-headers"] == "x-total"


async def test_app_regex_matches_the_whole_origin() -> None:
    app = api(allow_origin_regex=r"https://(www|app)\.example\.com")
    async with TestClient(app) as client:
        good = await client.get("/items", headers={"Origin": "https://app.example.com"})
        bad = await client.get("/items", headers={"Origin": "https://app.example.com.evil"})
    assert good.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in bad.headers


async def test_app_vary_merges_with_the_handlers_and_gzips() -> None:
    app = api(allow_origins=[FRONT])
    app.add_middleware(GZipMiddleware, minimum_size=1)
    async with TestClient(app) as client:
        r = await client.get("/vary", headers={"Origin": FRONT, "Accept-Encoding": "gzip"})
    assert r.headers.getall("vary") == ["Accept-Language, Origin, Accept-Encoding"]
    assert gzip.decompress(r.content) == b"per language"


async def test_app_errors_keep_cors_headers_so_the_browser_sees_them() -> None:
    app = api(allow_origins=[FRONT])
    async with TestClient(app, raise_server_exceptions=False) as client:
        missing = await client.get("/nowhere", headers={"Origin": FRONT})
        failed = await client.get("/boom", headers={"Origin": FRONT})
    assert missing.status_code == 404
    assert failed.status_code == 500
    for r in (missing, failed):
        assert r.headers["access-control-allow-origin"] == FRONT


async def test_app_options_without_preflight_headers_is_the_routers() -> None:
    async with TestClient(api(allow_origins=[FRONT])) as client:
        r = await client.options("/items", headers={"Origin": FRONT})
    assert r.status_code == 204
    assert set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "PUT"}
    assert r.headers["access-control-allow-origin"] == FRONT


async def test_app_websocket_is_not_checked_by_cors() -> None:
    app = api(allow_origins=[FRONT])

    @app.websocket("/ws")
    async def echo_origin(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.headers.get("origin", ""))

    async with (
        TestClient(app) as client,
        client.websocket_connect("/ws", headers={"Origin": "https://elsewhere.example"}) as ws,
    ):
        assert await ws.receive_text() == "https://elsewhere.example"


# --- examples/cors_api.py ---


def load_example() -> ModuleType:
    """Import examples/cors_api.py by path (examples/ is not a package)."""
    path = Path(__file__).resolve().parents[2] / "examples" / "cors_api.py"
    spec = importlib.util.spec_from_file_location("cors_api_example", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_example_cors_api_serves_its_frontend_only() -> None:
    example = load_example()
    assert example.app.url_path_for("list_notes") == "/api/notes"
    front = "https://notes.example"
    cors_only = {"Origin": front}
    async with TestClient(example.create_app(front)) as client:
        # What fetch(url, {method: "POST", body: JSON, credentials: "include"}) does first.
        pre = await client.options(
            "/api/notes",
            headers={
                **cors_only,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == front
        assert pre.headers["access-control-allow-credentials"] == "true"
        assert pre.headers["access-control-max-age"] == "3600"

        created = await client.post("/api/notes", json={"text": "buy milk"}, headers=cors_only)
        assert created.status_code == 201
        assert created.json() == {"id": 1, "text": "buy milk"}
        assert created.headers["access-control-allow-origin"] == front

        listed = await client.get("/api/notes", headers=cors_only)
        assert listed.json() == [{"id": 1, "text": "buy milk"}]
        assert listed.headers["x-total-count"] == "1"
        assert listed.headers["access-control-expose-headers"] == "x-total-count"

        invalid = await client.post("/api/notes", json={"text": ""}, headers=cors_only)
        assert invalid.status_code == 422
        assert invalid.headers["access-control-allow-origin"] == front

        deleted = await client.delete("/api/notes/1", headers=cors_only)
        assert deleted.status_code == 204
        gone = await client.delete("/api/notes/1", headers=cors_only)
        assert gone.status_code == 404

        elsewhere = await client.get("/api/notes", headers={"Origin": "https://evil.example"})
        assert elsewhere.status_code == 200
        assert "access-control-allow-origin" not in elsewhere.headers
        refused = await client.options(
            "/api/notes",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert refused.status_code == 400
