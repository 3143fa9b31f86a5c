"""The Response family: headers, cookies, CR/LF refusal, JSON, redirects, streaming."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import asgi_harness as harness
import pytest

from microasgi import (
    App,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Request,
    Response,
    StreamingResponse,
)
from microasgi._json import stdlib_dumps
from microasgi._types import Message, Scope
from microasgi.responses import json_dumps
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio


def scope_for(method: str = "GET", spec_version: str = "2.3") -> Scope:
    """An http scope; on ASGI 2.3 a streaming response also watches for a disconnect."""
    return harness.http_scope(method=method, spec_version=spec_version)


async def run(response: Response, scope: Scope | None = None) -> list[Message]:
    """What ``response`` sends to a client that sends nothing (bounded in time)."""
    return await harness.run(response, scope or scope_for(), [])


async def test_response_is_two_sends_with_rendered_headers() -> None:
    sent = await run(Response("hé", headers={"x-a": "1"}, media_type="text/csv"))
    assert sent == [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"x-a", b"1"),
                (b"content-length", b"3"),
                (b"content-type", b"text/csv; charset=utf-8"),
            ],
        },
        {"type": "http.response.body", "body": "hé".encode()},
    ]


def test_media_types() -> None:
    assert PlainTextResponse("x").headers["content-type"] == "text/plain; charset=utf-8"
    assert HTMLResponse("x").headers["content-type"] == "text/html; charset=utf-8"
    assert JSONResponse({}).headers["content-type"] == "application/json"
    assert "content-type" not in Response(b"x").headers
    custom = Response("x", headers={"content-type": "text/x-mine"})
    assert custom.headers.getall("content-type") == ["text/x-mine"]


def test_headers_accept_mappings_and_pairs_and_are_mutable() -> None:
    response = Response(b"", headers=[("x-r", "1"), ("x-r", "2")])
    assert response.headers.getall("x-r") == ["1", "2"]
    response.headers["x-new"] = "yes"
    assert (b"x-new", b"yes") in response.raw_headers()


def test_no_content_length_for_204_and_304() -> None:
    assert "content-length" not in Response(None, 204).headers
    assert "content-length" not in Response(b"", 304).headers
    assert Response(b"").headers["content-length"] == "0"


@pytest.mark.parametrize("bad", ["a\r\nb", "a\nb", "a\rb", "a\0b"])
def test_crlf_in_header_values_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="CR, LF"):
        Response(b"", headers={"x": bad})
    with pytest.raises(ValueError, match="CR, LF"):
        Response(b"").set_cookie("k", bad)
    with pytest.raises(ValueError, match="CR, LF"):
        Response(b"").set_cookie("k", "v", path=bad)


@pytest.mark.parametrize("name", ["bad name", "x:y", "", "é"])
def test_bad_header_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="header name"):
        Response(b"", headers={name: "v"})


async def test_head_sends_headers_without_body() -> None:
    sent = await run(PlainTextResponse("hello"), scope_for("HEAD"))
    assert sent[1] == {"type": "http.response.body", "body": b""}
    assert (b"content-length", b"5") in sent[0]["headers"]


def test_set_cookie_and_delete_cookie() -> None:
    response = Response(b"")
    response.set_cookie(
        "session",
        "abc",
        max_age=60,
        expires=dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        domain="example.com",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie("old", path="/app")
    first, second = response.headers.getall("set-cookie")
    assert first.startswith("session=abc;")
    for part in [
        "Max-Age=60",
        "expires=Wed, 02 Jan 2030 03:04:05 GMT",
        "Domain=example.com",
        "Secure",
        "HttpOnly",
        "SameSite=strict",
        "Path=/",
    ]:
        assert part in first
    assert second.startswith('old="";') or second.startswith("old=;")
    assert "Max-Age=0" in second
    assert "Path=/app" in second
    with pytest.raises(ValueError, match="samesite"):
        response.set_cookie("x", samesite="bogus")  # type: ignore[arg-type]


async def test_cookies_round_trip_through_the_client() -> None:
    app = App()

    @app.get("/login")
    async def login(request: Request) -> Response:
        response = PlainTextResponse("in")
        response.set_cookie("session", "s1")
        response.set_cookie("scoped", "only-admin", path="/admin")
        return response

    @app.get("/logout")
    async def logout(request: Request) -> Response:
        response = PlainTextResponse("out")
        response.delete_cookie("session")
        return response

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, str]:
        return request.cookies

    @app.get("/admin/whoami")
    async def admin(request: Request) -> dict[str, str]:
        return request.cookies

    async with TestClient(app) as client:
        await client.get("/login")
        assert (await client.get("/whoami")).json() == {"session": "s1"}
        assert (await client.get("/admin/whoami")).json() == {
            "session": "s1",
            "scoped": "only-admin",
        }
        await client.get("/logout")
        assert (await client.get("/whoami")).json() == {}


def test_json_orjson_and_stdlib_give_the_same_bytes() -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    data = {
        "text": "é ü 😀",
        "n": [1, 2.5, None, True],
        "when": dt.datetime(2024, 5, 6, 7, 8, 9),
        "day": dt.date(2024, 5, 6),
        "id": uuid.UUID(int=1),
        "point": Point(1, 2),
        "nested": {"a": {"b": []}},
    }
    assert JSONResponse(data).body == stdlib_dumps(data)
    assert json_dumps({1: "int keys"}) == stdlib_dumps({1: "int keys"}) == b'{"1":"int keys"}'


def test_redirect_quotes_the_location() -> None:
    response = RedirectResponse("/a b?x=é")
    assert response.status_code == 307
    assert response.headers["location"] == "/a%20b?x=%C3%A9"
    assert RedirectResponse("https://e.com/x", 301).headers["location"] == "https://e.com/x"
    # A newline cannot split the header: it is percent-encoded.
    assert "\n" not in RedirectResponse("/x\r\nSet-Cookie: a=b").headers["location"]


async def test_background_runs_after_the_body_sync_or_async() -> None:
    events: list[str] = []

    async def async_task() -> None:
        events.append("async")

    def sync_task() -> None:
        events.append("sync")

    app = App()

    @app.get("/a")
    async def a(request: Request) -> Response:
        return PlainTextResponse("a", background=async_task)

    @app.get("/s")
    async def s(request: Request) -> Response:
        return PlainTextResponse("s", background=sync_task)

    async with TestClient(app) as client:
        await client.get("/a")
        await client.get("/s")
    assert events == ["async", "sync"]


async def test_streaming_async_and_sync_iterators() -> None:
    async def agen() -> AsyncIterator[str]:
        yield "a"
        yield "é"

    def gen() -> Iterator[bytes]:
        yield b"x"
        yield b"y"

    sent = await run(StreamingResponse(agen(), media_type="text/plain"))
    assert sent[0]["headers"] == [(b"content-type", b"text/plain; charset=utf-8")]
    assert [m.get("body") for m in sent[1:]] == [b"a", "é".encode(), b""]
    assert sent[-1]["more_body"] is False
    sent = await run(StreamingResponse(gen()), scope_for(spec_version="2.4"))
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"xy"


async def test_a_list_body_streams_without_worker_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chunks already in memory cannot block, so they take none of the thread limiter."""

    async def no_threads(*args: object, **kwargs: object) -> object:
        raise AssertionError("a worker thread was used")

    monkeypatch.setattr(anyio.to_thread, "run_sync", no_threads)
    for content in ([b"x", "é", memoryview(b"z")], (b"x", "é", b"z")):
        sent = await run(StreamingResponse(content))
        assert b"".join(m.get("body", b"") for m in sent[1:]) == "xéz".encode()
        assert sent[-1]["more_body"] is False


async def test_streaming_stops_when_the_client_disconnects_and_closes_the_generator() -> None:
    closed = anyio.Event()
    produced = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        try:
            while True:
                produced += 1
                yield b"tick"
                await anyio.sleep(0.01)
        finally:
            closed.set()

    send = harness.Recorder()
    with anyio.fail_after(5):
        await StreamingResponse(endless())(scope_for(), harness.disconnect_after(0.05), send)
    sent = send.messages
    assert closed.is_set()
    assert 1 <= produced < 100
    assert not any(m.get("more_body") is False for m in sent)


async def test_a_stream_waiting_for_events_stops_on_disconnect_and_background_still_runs() -> None:
    events: list[str] = []
    never = anyio.Event()

    async def waiting() -> AsyncIterator[bytes]:
        yield b"data: hello\n\n"
        try:
            await never.wait()  # an event stream with nothing more to say
            yield b"never sent"
        finally:
            events.append("generator closed")

    async def background() -> None:
        await anyio.sleep(0.01)  # the cancel that stopped the stream is not left over
        events.append("background ran")

    send = harness.Recorder()
    response = StreamingResponse(waiting(), background=background)
    with anyio.fail_after(5):
        await response(scope_for(), harness.disconnect_after(0.02), send)
    assert events == ["generator closed", "background ran"]
    assert [m.get("body") for m in send.messages[1:]] == [b"data: hello\n\n"]


async def test_a_sync_generator_is_closed_once_its_worker_thread_is_done() -> None:
    events: list[str] = []

    def slow() -> Iterator[bytes]:
        try:
            yield b"first"
            time.sleep(0.1)  # the client leaves while this runs in a worker thread
            yield b"second"
        finally:
            events.append("closed")

    send = harness.Recorder()
    with anyio.fail_after(5):
        await StreamingResponse(slow())(scope_for(), harness.disconnect_after(0.02), send)
    # Closed after next() came back, not beside it ("generator already executing").
    assert events == ["closed"]
    assert send.messages[1]["body"] == b"first"
    assert not any(m.get("more_body") is False for m in send.messages)


async def test_a_server_that_keeps_answering_receive_does_not_spin_the_watcher() -> None:
    calls = 0

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        await anyio.lowlevel.checkpoint()
        return {"type": "http.request", "body": b"", "more_body": False}  # again and again

    async def ticks() -> AsyncIterator[bytes]:
        for n in range(3):
            yield b"%d" % n
            await anyio.sleep(0.01)

    send = harness.Recorder()
    with anyio.fail_after(5):
        await StreamingResponse(ticks())(scope_for(), receive, send)
    assert b"".join(m.get("body", b"") for m in send.messages[1:]) == b"012"
    assert calls == 2  # the body's end, then one more: the watcher stops reading


async def test_streaming_on_asgi_2_4_stops_on_oserror() -> None:
    closed = anyio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"tick"
                await anyio.lowlevel.checkpoint()
        finally:
            closed.set()

    count = 0

    async def send(message: Message) -> None:
        nonlocal count
        count += 1
        if count > 3:
            raise OSError("client gone")

    async def receive() -> Message:
        raise AssertionError("2.4 servers need no disconnect watcher")

    scope = scope_for(spec_version="2.4")
    with anyio.fail_after(5):
        await StreamingResponse(endless())(scope, receive, send)
    assert closed.is_set()


async def test_streaming_head_sends_no_body_and_never_runs_the_iterator() -> None:
    started = False

    async def agen() -> AsyncIterator[bytes]:
        nonlocal started
        started = True
        yield b"never"

    sent = await run(StreamingResponse(agen()), scope_for("HEAD"))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == b""
    assert started is False


async def test_streaming_through_the_app() -> None:
    app = App()

    async def chunks() -> AsyncIterator[bytes]:
        for n in range(3):
            yield str(n).encode()

    @app.get("/")
    async def handler(request: Request) -> StreamingResponse:
        return StreamingResponse(chunks())

    async with TestClient(app) as client:
        response = await client.get("/")
    assert response.content == b"012"


@pytest.mark.parametrize("value", ["héllo", "", {"a": [1, "é"]}, [1, 2], b"\x00raw", b""])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_plain_returns_send_exactly_what_their_response_would(
    value: Any, method: str
) -> None:
    from microasgi.returns import plain_messages, to_response

    fast = plain_messages(value, method)
    assert fast is not None
    assert list(fast) == await run(to_response(value), scope_for(method))


def test_other_returns_take_the_response_path() -> None:
    from microasgi.returns import plain_messages

    for value in [None, ("x", 201), PlainTextResponse("x"), bytearray(b"x"), 3]:
        assert plain_messages(value, "GET") is None
