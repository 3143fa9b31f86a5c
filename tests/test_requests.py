"""Request: lazy views, URL safety, body/stream/json limits, disconnects, state."""

from __future__ import annotations

from typing import Any

import anyio
import asgi_harness as harness
import pytest

from microasgi import App, HTTPException, Request
from microasgi._types import Message, Receive, Scope
from microasgi.requests import parse_cookies
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio


def http_scope(**extra: Any) -> Scope:
    """A scope for GET /p with no Host header: URLs fall back to ``server`` (10.0.0.1:8080)."""
    fields = {"path": "/p", "host": None, "server": ("10.0.0.1", 8080), **extra}
    return harness.http_scope(**fields)


def body_receive(*chunks: bytes) -> Receive:
    """A receive giving the body in ``chunks``, then waiting forever."""
    return harness.scripted(harness.request_body(*chunks))


async def test_views_over_the_scope() -> None:
    app = App()

    @app.get("/info/{n:int}")
    async def info(request: Request, n: int) -> dict[str, Any]:
        return {
            "method": request.method,
            "path": request.path,
            "query": request.query.getall("a"),
            "blank": request.query.get("blank"),
            "header": request.headers.getall("x-multi"),
            "ci": request.headers["X-SINGLE"],
            "cookies": request.cookies,
            "client": list(request.client) if request.client else None,
            "scheme": request.scheme,
            "version": request.http_version,
            "params": request.path_params,
            "url": str(request.url),
            "app": request.app is app,
        }

    async with TestClient(app) as client:
        response = await client.get(
            "/info/5?a=1&a=%C3%A9&blank=",
            headers=[("x-multi", "1"), ("x-multi", "2"), ("x-single", "s")],
            cookies={"session": "abc", "theme": "dark"},
        )
    assert response.json() == {
        "method": "GET",
        "path": "/info/5",
        "query": ["1", "é"],
        "blank": "",
        "header": ["1", "2"],
        "ci": "s",
        "cookies": {"session": "abc", "theme": "dark"},
        "client": ["testclient", 50000],
        "scheme": "http",
        "version": "1.1",
        "params": {"n": 5},
        "url": "http://testserver/info/5?a=1&a=%C3%A9&blank=",
        "app": True,
    }


def test_views_are_built_lazily_and_cached() -> None:
    request = Request(http_scope(headers=[(b"x", b"1")], query_string=b"a=1"))
    assert request._headers is None
    assert request._query is None
    assert request.headers is request.headers
    assert request.query is request.query
    assert request.url is request.url


def test_cookie_parsing_is_lenient() -> None:
    assert parse_cookies('a=1; b="quoted"; c=; =x; d=e=f; broken') == {
        "a": "1",
        "b": "quoted",
        "c": "",
        "": "x",
        "d": "e=f",
        "broken": "",
    }


@pytest.mark.parametrize(
    "host",
    [
        "evil.com/path?",
        "a b",
        "user@evil.com",
        "evil.com:99999",
        "evil.com:abc",
        "[::1",
        "x.com\\y",
        "",
    ],
)
def test_a_malformed_host_cannot_poison_the_url(host: str) -> None:
    scope = http_scope(headers=[(b"host", host.encode("latin-1"))], path="/x", raw_path=b"/x")
    url = Request(scope).url
    assert url.host == "10.0.0.1"
    assert url.port == 8080
    assert url.path == "/x"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", "http://example.com/x"),
        ("example.com:80", "http://example.com/x"),
        ("example.com:8000", "http://example.com:8000/x"),
        ("[::1]:8000", "http://[::1]:8000/x"),
        ("127.0.0.1", "http://127.0.0.1/x"),
    ],
)
def test_well_formed_hosts(host: str, expected: str) -> None:
    scope = http_scope(headers=[(b"host", host.encode())], path="/x", raw_path=b"/x")
    assert str(Request(scope).url) == expected


@pytest.mark.parametrize("raw_path", [b"*", b"http://evil.com/x", b"//evil.com/x", b"no-slash"])
def test_a_path_not_starting_with_slash_cannot_move_the_url_host(raw_path: bytes) -> None:
    scope = http_scope(headers=[(b"host", b"good.com")], raw_path=raw_path, path="x")
    url = Request(scope).url
    assert url.host == "good.com"
    assert url.path.startswith("/")


def test_url_without_raw_path_is_quoted() -> None:
    scope = http_scope(headers=[(b"host", b"h")], path="/a b/é")
    del scope["raw_path"]
    assert str(Request(scope).url) == "http://h/a%20b/%C3%A9"


def test_request_needs_an_http_scope() -> None:
    with pytest.raises(ValueError, match="http scope"):
        Request({"type": "websocket"})


async def test_body_is_cached_in_the_scope_across_request_objects() -> None:
    scope = http_scope(method="POST")
    receive = body_receive(b"ab", b"cd")
    first = Request(scope, receive)
    assert await first.body() == b"abcd"
    assert await first.body() == b"abcd"
    second = Request(scope, receive)  # would wait forever if it read receive again
    with anyio.fail_after(1):
        assert await second.body() == b"abcd"
        assert [chunk async for chunk in second.stream()] == [b"abcd"]


async def test_stream_yields_chunks_and_cannot_be_read_twice() -> None:
    request = Request(http_scope(method="POST"), body_receive(b"a", b"", b"b"))
    assert [chunk async for chunk in request.stream()] == [b"a", b"b"]
    with pytest.raises(RuntimeError, match="already streamed"):
        [chunk async for chunk in request.stream()]


async def test_body_over_the_limit_is_413_declared_or_streamed() -> None:
    app = App(max_body_size=10)

    @app.post("/")
    async def handler(request: Request) -> bytes:
        return await request.body()

    @app.post("/stream")
    async def stream(request: Request) -> str:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
        return str(total)

    async with TestClient(app) as client:
        assert (await client.post("/", content=b"x" * 10)).status_code == 200
        assert (await client.post("/", content=b"x" * 11)).status_code == 413
        # A lying Content-Length does not get past the streamed count.
        lying = await client.post("/stream", content=b"x" * 50, headers={"content-length": "5"})
        assert lying.status_code == 413
        declared = await client.post("/", content=b"x", headers={"content-length": "999"})
        assert declared.status_code == 413


async def test_streamed_limit_stops_reading_early() -> None:
    reads = 0

    async def endless() -> Message:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    request = Request(
        http_scope(method="POST", **{"microasgi.app": App(max_body_size=5000)}), endless
    )
    with pytest.raises(HTTPException) as info:
        await request.body()
    assert info.value.status_code == 413
    assert reads == 6


async def test_json_and_text() -> None:
    app = App()

    @app.post("/json")
    async def json_handler(request: Request) -> Any:
        return {"got": await request.json()}

    @app.post("/text")
    async def text(request: Request) -> str:
        return await request.text()

    async with TestClient(app) as client:
        assert (await client.post("/json", json={"a": [1]})).json() == {"got": {"a": [1]}}
        assert (await client.post("/json", content=b"{nope")).status_code == 400
        assert (await client.post("/json", content=b"\xff\xfe")).status_code == 400
        assert (await client.post("/json", content=b"")).status_code == 400
        deep = b"[" * 100_000 + b"]" * 100_000
        assert (await client.post("/json", content=deep)).status_code == 400
        latin = await client.post(
            "/text",
            content="café".encode("latin-1"),
            headers={"content-type": "text/plain; charset=latin-1"},
        )
        assert latin.text == "café"
        unknown = await client.post(
            "/text", content=b"ok", headers={"content-type": "text/plain; charset=nope"}
        )
        assert unknown.text == "ok"


async def test_client_disconnect_while_reading_the_body_ends_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.post("/")
    async def handler(request: Request) -> bytes:
        return await request.body()

    messages: list[Message] = [
        {"type": "http.request", "body": b"part", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent = await harness.run(app, http_scope(method="POST", path="/"), messages)
    assert sent == []
    assert "Error" not in caplog.text


async def test_is_disconnected_does_not_wait_and_keeps_body_bytes() -> None:
    request = Request(http_scope(method="POST"), body_receive(b"kept", b"too"))
    with anyio.fail_after(1):
        assert await request.is_disconnected() is False
        assert await request.body() == b"kepttoo"

    last = Request(http_scope(method="POST"), body_receive(b"only"))
    with anyio.fail_after(1):
        assert await last.is_disconnected() is False
        assert await last.body() == b"only"  # the last message was kept, not waited for again

    async def gone() -> Message:
        return {"type": "http.disconnect"}

    request = Request(http_scope(), gone)
    assert await request.is_disconnected() is True
    assert await request.is_disconnected() is True


async def test_state_reads_lifespan_state_and_writes_stay_in_the_request() -> None:
    app = App()

    @app.lifespan
    async def lifespan(app: App) -> Any:
        yield {"pool": "the-pool", "counter": 0}

    @app.get("/")
    async def handler(request: Request) -> dict[str, Any]:
        before = getattr(request.state, "mine", None)
        request.state.mine = "set"
        request.state.counter += 1
        return {"pool": request.state.pool, "before": before, "counter": request.state.counter}

    async with TestClient(app) as client:
        first = (await client.get("/")).json()
        second = (await client.get("/")).json()
    assert first == {"pool": "the-pool", "before": None, "counter": 1}
    assert second == first  # each request got its own shallow copy


def test_state_is_created_when_the_server_gave_none() -> None:
    scope = http_scope()
    request = Request(scope)
    request.state.x = 1
    assert scope["state"] == {"x": 1}
    with pytest.raises(AttributeError):
        _ = request.state.missing


async def test_app_state_is_a_plain_namespace() -> None:
    app = App()
    app.state.settings = {"a": 1}

    @app.get("/")
    async def handler(request: Request) -> Any:
        return request.app.state.settings

    async with TestClient(app) as client:
        assert (await client.get("/")).json() == {"a": 1}


def test_parse_query_agrees_with_parse_qsl() -> None:
    import random
    from urllib.parse import parse_qsl

    from microasgi.requests import parse_query

    alphabet = [
        "a",
        "b",
        "=",
        "&",
        "+",
        "%",
        "%2",
        "%41",
        "%C3%A9",
        "%zz",
        "%00",
        "\x00",
        "é",
        " ",
        ";",
    ]
    rng = random.Random(1234)
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        assert parse_query(text) == parse_qsl(text, keep_blank_values=True), text


async def _order_of(app: App, scope: Scope, messages: list[Message]) -> list[str]:
    """Run ``app``, returning the message types received and sent, in order."""
    events: list[str] = []
    with anyio.fail_after(5):
        await app(scope, harness.scripted(messages, log=events), harness.Recorder(log=events))
    return events


def _post_app() -> App:
    app = App()
    app.add_route("/", lambda request: "ignored the body", methods=["POST"])
    return app


async def test_a_small_unread_body_is_read_before_an_http2_response_ends() -> None:
    # hypercorn's HTTP/2 fails when body data arrives after the response finished; a
    # client may also wait for the response headers before it sends its body.
    scope = http_scope(
        method="POST", path="/", headers=[(b"content-length", b"4")], http_version="2"
    )
    events = await _order_of(
        _post_app(), scope, [{"type": "http.request", "body": b"data", "more_body": False}]
    )
    assert events == ["http.response.start", "http.request", "http.response.body"]


async def test_an_unread_body_is_drained_for_error_responses_too() -> None:
    scope = http_scope(method="POST", path="/missing", http_version="2")
    events = await _order_of(
        _post_app(), scope, [{"type": "http.request", "body": b"", "more_body": False}]
    )
    assert events == ["http.response.start", "http.request", "http.response.body"]


@pytest.mark.parametrize("version", ["1.0", "1.1"])
@pytest.mark.parametrize("path", ["/", "/missing"])
async def test_an_http1_server_is_left_the_unread_body(version: str, path: str) -> None:
    # It reads past the body itself, as it must for any app that ignores one; taking it
    # cost as much CPU as the rest of the response (a POST answered 401 or 404, say).
    scope = http_scope(
        method="POST", path=path, headers=[(b"content-length", b"4")], http_version=version
    )
    events = await _order_of(
        _post_app(), scope, [{"type": "http.request", "body": b"data", "more_body": False}]
    )
    assert events == ["http.response.start", "http.response.body"]


async def test_a_large_unread_body_is_left_to_the_server() -> None:
    big = str(65 * 1024).encode()
    scope = http_scope(
        method="POST", path="/", headers=[(b"content-length", big)], http_version="2"
    )
    events = await _order_of(_post_app(), scope, [{"type": "http.request", "body": b"x"}])
    assert events == ["http.response.start", "http.response.body"]


async def test_draining_an_endless_body_is_bounded_in_time() -> None:
    scope = http_scope(method="POST", path="/", http_version="2")
    start = anyio.current_time()
    events = await _order_of(_post_app(), scope, [])  # the body never comes
    assert events == ["http.response.start", "http.response.body"]
    assert anyio.current_time() - start < 3


@pytest.mark.parametrize(
    ("declared", "status"),
    [
        (b"1" * 5000, 413),  # past Python's int() limit: larger than any body limit
        (b"0" * 5000 + b"3", 200),  # leading zeros: still 3
        ("\u00b2".encode("latin-1"), 200),  # "²".isdigit() is true: not a length
        (b"-3", 200),
        (b"3 ", 200),
    ],
)
async def test_a_malformed_content_length_is_never_a_500(declared: bytes, status: int) -> None:
    # Servers usually refuse these themselves; a Lambda event or a test client may not.
    app = App()

    @app.post("/")
    async def read(request: Request) -> str:
        return (await request.body()).decode()

    scope = http_scope(method="POST", path="/", headers=[(b"content-length", declared)])
    sent = await harness.run(app, scope, harness.request_body(b"abc"))
    assert harness.start_of(sent)["status"] == status
    if status == 200:
        assert harness.body_of(sent) == b"abc"
