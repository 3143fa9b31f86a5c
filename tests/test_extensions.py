"""Server extensions from a handler: push, early hints and trailers, advertised or not.

Each behaviour is checked both with the extension advertised and without it. Where the
exact messages matter (nothing sent when not advertised, hints before the start,
``trailers`` announced in the start), a raw recording ``send`` shows what went out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import asgi_harness as harness
import pytest

from microasgi import App, Request, StreamingResponse
from microasgi._types import ASGIApp, Message, Receive, Scope, Send
from microasgi.testing import TestClient, TestResponse

pytestmark = pytest.mark.anyio

PUSH = "http.response.push"
EARLY_HINT = "http.response.early_hint"
TRAILERS = "http.response.trailers"
PRELOAD_CSS = "</style.css>; rel=preload; as=style"
PRELOAD_JS = "</app.js>; rel=preload; as=script"


def http_scope(
    path: str = "/",
    *,
    method: str = "GET",
    extensions: Mapping[str, Any] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Scope:
    """An HTTP/2 scope as a server builds it; no ``extensions`` key when None (uvicorn)."""
    return harness.http_scope(
        path,
        method,
        headers=headers or [],
        extensions=extensions,
        host="example.com",
        scheme="https",
        http_version="2",
        server=("127.0.0.1", 443),
    )


async def fetch(
    app: ASGIApp, path: str = "/", extensions: dict[str, Any] | None = None, **kwargs: Any
) -> TestResponse:
    """GET ``path`` from a client advertising ``extensions`` (None: every default)."""
    with anyio.fail_after(5):
        async with TestClient(app, extensions=extensions) as client:
            return await client.get(path, **kwargs)


def types(messages: list[Message]) -> list[str]:
    return [m["type"] for m in messages]


# --- supports ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extensions", "expected"),
    [(None, True), ({PUSH: {}}, True), ({EARLY_HINT: {}}, False), ({}, False)],
)
async def test_supports_reads_what_the_server_advertised(
    extensions: dict[str, Any] | None, expected: bool
) -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> dict[str, bool]:
        return {"push": request.supports(PUSH)}

    assert (await fetch(app, extensions=extensions)).json() == {"push": expected}


async def test_supports_is_false_when_the_scope_has_no_extensions_key() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> dict[str, bool]:
        return {name: request.supports(name) for name in (PUSH, EARLY_HINT, TRAILERS)}

    sent = await harness.run(app, http_scope(extensions=None))
    assert sent[1]["body"] == b'{"http.response.push":false,' + (
        b'"http.response.early_hint":false,"http.response.trailers":false}'
    )


# --- push -------------------------------------------------------------------------------


def push_app(headers: Any = None) -> tuple[App, list[bool]]:
    results: list[bool] = []
    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        results.append(await request.push("/style.css", headers=headers))
        results.append(await request.push("/app.js"))
        return "<link rel=stylesheet href=/style.css>"

    return app, results


@pytest.mark.parametrize(
    "headers",
    [{"Accept": "text/css", "X-Why": "preload"}, [("Accept", "text/css"), ("X-Why", "preload")]],
    ids=["mapping", "pairs"],
)
async def test_push_is_recorded_with_lower_case_header_names(headers: Any) -> None:
    app, results = push_app(headers)
    response = await fetch(app)
    assert results == [True, True]
    assert response.pushes == [
        ("/style.css", [("accept", "text/css"), ("x-why", "preload")]),
        ("/app.js", []),
    ]
    assert response.text == "<link rel=stylesheet href=/style.css>"


@pytest.mark.parametrize("extensions", [{}, {EARLY_HINT: {}, TRAILERS: {}}, None])
async def test_push_without_the_extension_returns_false_and_sends_nothing(
    extensions: dict[str, Any] | None,
) -> None:
    app, results = push_app({"accept": "text/css"})
    sent = await harness.run(app, http_scope(extensions=extensions))
    assert results == [False, False]
    assert types(sent) == ["http.response.start", "http.response.body"]
    response = await fetch(app, extensions={})
    assert (response.status_code, response.pushes) == (200, [])


async def test_push_with_the_extension_sends_it_before_the_response() -> None:
    app, _ = push_app({"accept": "text/css"})
    sent = await harness.run(app, http_scope(extensions={PUSH: {}}))
    assert types(sent) == [
        "http.response.push",
        "http.response.push",
        "http.response.start",
        "http.response.body",
    ]
    assert sent[0] == {
        "type": "http.response.push",
        "path": "/style.css",
        "headers": [(b"accept", b"text/css")],
    }


@pytest.mark.parametrize("extensions", [None, {}], ids=["advertised", "not-advertised"])
async def test_push_is_allowed_until_the_body_is_complete(
    extensions: dict[str, Any] | None,
) -> None:
    results: list[bool] = []
    app = App()

    @app.get("/")
    async def index(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"<head>"
            # The response has started: pushing is still allowed.
            results.append(await request.push("/late.css"))
            yield b"</head>"

        return StreamingResponse(body(), media_type="text/html")

    response = await fetch(app, extensions=extensions)
    assert response.text == "<head></head>"
    if extensions is None:
        assert results == [True]
        assert response.pushes == [("/late.css", [])]
    else:
        assert (results, response.pushes) == ([False], [])


@pytest.mark.parametrize("extensions", [None, {}], ids=["advertised", "not-advertised"])
@pytest.mark.parametrize("value", ["text/css\r\nx-evil: 1", "a\nb", "nul\0"])
async def test_push_refuses_cr_lf_in_headers(extensions: dict[str, Any] | None, value: str) -> None:
    refused: list[str] = []
    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        try:
            await request.push("/style.css", headers={"accept": value})
        except ValueError as exc:
            refused.append(str(exc))
        return "ok"

    response = await fetch(app, extensions=extensions)
    assert response.status_code == 200
    assert response.pushes == []
    assert len(refused) == 1


# --- early hints ------------------------------------------------------------------------


def hints_app() -> tuple[App, list[bool]]:
    results: list[bool] = []
    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        results.append(await request.send_early_hints([PRELOAD_CSS]))
        results.append(await request.send_early_hints([PRELOAD_JS]))
        return "page"

    return app, results


async def test_early_hints_are_recorded_flat_across_messages() -> None:
    app, results = hints_app()
    response = await fetch(app)
    assert results == [True, True]
    assert response.early_hints == [PRELOAD_CSS, PRELOAD_JS]
    assert response.text == "page"


async def test_early_hints_go_out_before_the_response_starts() -> None:
    app, _ = hints_app()
    sent = await harness.run(app, http_scope(extensions={EARLY_HINT: {}}))
    assert types(sent) == [
        "http.response.early_hint",
        "http.response.early_hint",
        "http.response.start",
        "http.response.body",
    ]
    assert sent[0]["links"] == [PRELOAD_CSS.encode()]


@pytest.mark.parametrize("extensions", [{}, {PUSH: {}}, None])
async def test_early_hints_without_the_extension_return_false_and_send_nothing(
    extensions: dict[str, Any] | None,
) -> None:
    app, results = hints_app()
    sent = await harness.run(app, http_scope(extensions=extensions))
    assert results == [False, False]
    assert types(sent) == ["http.response.start", "http.response.body"]
    assert (await fetch(app, extensions={})).early_hints == []


async def test_no_links_send_no_hint() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        assert await request.send_early_hints([]) is True
        return "page"

    sent = await harness.run(app, http_scope(extensions={EARLY_HINT: {}}))
    assert types(sent) == ["http.response.start", "http.response.body"]


async def test_early_hints_refuse_cr_lf() -> None:
    app = App()
    refused: list[bool] = []

    @app.get("/")
    async def index(request: Request) -> str:
        with pytest.raises(ValueError, match="CR, LF"):
            await request.send_early_hints(["</a.css>; rel=preload\r\nset-cookie: x=1"])
        refused.append(True)
        return "page"

    response = await fetch(app)
    assert (response.status_code, response.early_hints, refused) == (200, [], [True])


async def test_the_test_client_refuses_early_hints_after_the_start_as_servers_do() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"started"
            await request.send_early_hints([PRELOAD_CSS])

        return StreamingResponse(body())

    # The request refuses it itself, before a server would.
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            with pytest.raises(RuntimeError, match="before the response starts"):
                await client.get("/")

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.early_hint", "links": [PRELOAD_CSS.encode()]})

    with anyio.fail_after(5):
        async with TestClient(raw) as client:
            with pytest.raises(RuntimeError, match=r"before http\.response\.start"):
                await client.get("/")


# --- trailers ---------------------------------------------------------------------------


def trailers_app() -> tuple[App, list[str]]:
    calls: list[str] = []
    app = App()

    @app.get("/")
    async def index(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"chunk one, "
            yield b"chunk two"

        async def trailers() -> list[tuple[str, str]]:
            calls.append("trailers")
            return [("Server-Timing", "total;dur=12"), ("X-Checksum", "abc")]

        return StreamingResponse(body(), media_type="text/plain", trailers=trailers)

    return app, calls


@pytest.mark.parametrize("te", ["trailers", "gzip, trailers", "deflate, Trailers;q=0.5"])
async def test_trailers_are_sent_when_advertised_and_asked_for(te: str) -> None:
    app, calls = trailers_app()
    response = await fetch(app, headers={"TE": te})
    assert response.text == "chunk one, chunk two"
    assert dict(response.trailers) == {"server-timing": "total;dur=12", "x-checksum": "abc"}
    assert response.trailers["Server-Timing"] == "total;dur=12"
    assert calls == ["trailers"]


async def test_trailers_are_announced_in_the_start_and_sent_after_the_body() -> None:
    app, _ = trailers_app()
    scope = http_scope(extensions={TRAILERS: {}}, headers=[(b"te", b"trailers")])
    sent = await harness.run(app, scope)
    assert types(sent) == [
        "http.response.start",
        "http.response.body",
        "http.response.body",
        "http.response.body",
        "http.response.trailers",
    ]
    assert sent[0]["trailers"] is True
    assert sent[3].get("more_body", False) is False
    assert sent[4]["headers"] == [(b"server-timing", b"total;dur=12"), (b"x-checksum", b"abc")]
    assert sent[4].get("more_trailers", False) is False


@pytest.mark.parametrize(
    ("extensions", "te"),
    [
        (None, None),  # advertised, not asked for
        (None, "gzip"),
        (None, "trailersx"),
        ({}, "trailers"),  # asked for, not advertised
        ({PUSH: {}}, "trailers"),
    ],
)
async def test_trailers_are_skipped_otherwise_and_the_body_is_complete(
    extensions: dict[str, Any] | None, te: str | None
) -> None:
    app, calls = trailers_app()
    headers = {"TE": te} if te is not None else {}
    response = await fetch(app, extensions=extensions, headers=headers)
    assert response.text == "chunk one, chunk two"
    assert dict(response.trailers) == {}
    assert calls == []

    raw_headers = [(b"te", te.encode())] if te is not None else []
    scope_extensions = extensions if extensions is not None else {TRAILERS: {}}
    sent = await harness.run(app, http_scope(extensions=scope_extensions, headers=raw_headers))
    assert "trailers" not in sent[0]
    assert types(sent)[-1] == "http.response.body"
    assert sent[-1].get("more_body", False) is False


async def test_a_trailer_holding_cr_lf_never_reaches_the_wire() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> StreamingResponse:
        async def trailers() -> dict[str, str]:
            return {"x-checksum": "abc\r\nx-evil: 1"}

        return StreamingResponse(iter([b"data"]), trailers=trailers)

    scope = http_scope(extensions={TRAILERS: {}}, headers=[(b"te", b"trailers")])
    receive = harness.scripted(then=harness.request_body(b"")[0])
    send = harness.Recorder()

    # The response had started: the error goes to the server, no trailers are sent.
    with anyio.fail_after(5), pytest.raises(ValueError, match="CR, LF"):
        await app(scope, receive, send)
    assert "http.response.trailers" not in types(send.messages)


async def test_head_with_trailers_keeps_its_promise() -> None:
    app, _ = trailers_app()
    scope = http_scope(method="HEAD", extensions={TRAILERS: {}}, headers=[(b"te", b"trailers")])
    sent = await harness.run(app, scope)
    # A server told `trailers: True` waits for http.response.trailers before it ends the
    # stream: either no announcement, or the trailers after the (empty) body.
    announced = sent[0].get("trailers", False)
    assert announced == ("http.response.trailers" in types(sent))


# --- examples/push.py -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extensions", "how"),
    [
        (None, "pushed with the page"),
        ({EARLY_HINT: {}}, "announced early"),
        ({}, "fetched after the page"),
    ],
)
async def test_push_example_pushes_its_css_or_falls_back(
    extensions: dict[str, Any] | None, how: str
) -> None:
    from examples.push import app

    response = await fetch(app, extensions=extensions, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert how in response.text
    assert response.headers["link"] == "</style.css>; rel=preload; as=style"
    if extensions is None:
        assert response.pushes == [
            ("/style.css", [("accept", "text/css,*/*;q=0.1"), ("accept-encoding", "gzip")])
        ]
    else:
        assert response.pushes == []
    expected_hints = (
        ["</style.css>; rel=preload; as=style"] if extensions == {EARLY_HINT: {}} else []
    )
    assert response.early_hints == expected_hints
    css = await fetch(app, "/style.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert "font" in css.text


async def test_push_example_pushes_below_its_mount_prefix() -> None:
    from examples.push import app as push_app

    parent = App()
    parent.mount("/push", push_app)
    response = await fetch(parent, "/push/")
    assert [path for path, _ in response.pushes] == ["/push/style.css"]
    assert 'href="/push/style.css"' in response.text
    assert (await fetch(parent, "/push/style.css")).status_code == 200


async def test_the_showcase_pushes_the_css_of_its_push_page() -> None:
    from examples.showcase import app

    response = await fetch(app, "/push/")
    assert [path for path, _ in response.pushes] == ["/push/style.css"]
    assert (await fetch(app, "/push/style.css")).status_code == 200
