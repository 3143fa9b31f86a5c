"""GZipMiddleware: when bodies are compressed, how streams stay streams, what passes untouched."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream
from asgi_harness import (
    DISCONNECT,
    body_of,
    http_scope,
    request_body,
    scripted,
    start_of,
    websocket_scope,
)

from microasgi import App, FileResponse, Request, StreamingResponse
from microasgi._types import Message, Receive, Scope, Send
from microasgi.middleware.gzip import GZipMiddleware, accepts_gzip
from microasgi.testing import TestClient

from ._asgi import assert_passes_through, call, header, headers_of, responder

pytestmark = pytest.mark.anyio

GZIP = (("Accept-Encoding", "gzip, deflate, br"),)
TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


def streamer(
    chunks: Iterable[bytes],
    headers: Iterable[tuple[bytes, bytes]] = TEXT,
    log: list[str] | None = None,
) -> Any:
    """An app streaming ``chunks`` (more_body=True until the last, then an empty end)."""
    chunks = list(chunks)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        for i, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if log is not None:
                log.append(f"app sent {i}")
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


# --- Accept-Encoding ---


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (None, False),
        (b"", False),
        (b"gzip", True),
        (b"GZip", True),
        (b"deflate, gzip;q=0.5", True),
        (b"br;q=1.0, gzip ; q=0.001", True),
        (b"gzip;q=0", False),
        (b"gzip; q=0.000", False),
        (b"gzip;q=0, *", False),
        (b"*", True),
        (b"*;q=0", False),
        (b"identity", False),
        (b"x-gzip", True),
        (b"gzipped", False),
        (b"br, deflate", False),
        (b"gzip;q=nonsense", False),
        (b"gzip;q=2", False),
        (b"a" * 400 + b", gzip", True),
    ],
)
def test_accept_encoding_is_parsed_with_q_values(value: bytes | None, accepted: bool) -> None:
    assert accepts_gzip(value) is accepted


async def test_several_accept_encoding_headers_combine() -> None:
    mw = GZipMiddleware(responder(b"x" * 600), minimum_size=500)
    headers = [("Accept-Encoding", "br"), ("Accept-Encoding", "gzip")]
    sent = await call(mw, http_scope(headers=headers))
    assert header(sent, "content-encoding") == "gzip"


# --- single-message bodies ---


async def test_body_of_minimum_size_is_compressed() -> None:
    body = b"microasgi " * 50
    mw = GZipMiddleware(responder(body, headers=TEXT), minimum_size=len(body))
    sent = await call(mw, http_scope(headers=GZIP))
    assert header(sent, "content-encoding") == "gzip"
    assert header(sent, "vary") == "Accept-Encoding"
    compressed = body_of(sent)
    assert header(sent, "content-length") == str(len(compressed))
    assert len(compressed) < len(body)
    assert gzip.decompress(compressed) == body
    assert [m.get("more_body", False) for m in sent[1:]] == [False]


async def test_body_one_byte_under_minimum_size_is_sent_as_is() -> None:
    body = b"microasgi " * 50
    app = responder(body, headers=[*TEXT, (b"content-length", b"500")])
    sent = await call(GZipMiddleware(app, minimum_size=len(body) + 1), http_scope(headers=GZIP))
    assert headers_of(sent) == [
        ("content-type", "text/plain; charset=utf-8"),
        ("content-length", "500"),
    ]
    assert body_of(sent) == body


@pytest.mark.parametrize("accept", [None, "gzip;q=0", "br"])
async def test_client_not_accepting_gzip_gets_identity_with_vary(accept: str | None) -> None:
    body = b"a" * 1000
    mw = GZipMiddleware(responder(body))
    sent = await call(mw, http_scope(headers=[("Accept-Encoding", accept)] if accept else []))
    assert header(sent, "content-encoding") is None
    assert body_of(sent) == body
    # Another client's copy would be compressed: a cache must keep them apart.
    assert header(sent, "vary") == "Accept-Encoding"


async def test_vary_is_merged_into_the_apps() -> None:
    app = responder(b"a" * 1000, headers=[(b"vary", b"Origin")])
    sent = await call(GZipMiddleware(app), http_scope(headers=GZIP))
    assert [v for k, v in headers_of(sent) if k == "vary"] == ["Origin, Accept-Encoding"]


async def test_compresslevel_is_used() -> None:
    body = os.urandom(300) * 10
    fast = await call(GZipMiddleware(responder(body), compresslevel=1), http_scope(headers=GZIP))
    stored = await call(GZipMiddleware(responder(body), compresslevel=0), http_scope(headers=GZIP))
    assert gzip.decompress(body_of(fast)) == gzip.decompress(body_of(stored)) == body
    assert len(body_of(stored)) > len(body) > len(body_of(fast))


async def test_large_body_is_compressed_off_the_event_loop_correctly() -> None:
    body = b"".join(b"line %d\n" % i for i in range(200_000))
    sent = await call(GZipMiddleware(responder(body)), http_scope(headers=GZIP))
    assert gzip.decompress(body_of(sent)) == body


async def test_strong_etag_becomes_weak_when_compressed() -> None:
    for etag, expected in [(b'"abc"', 'W/"abc"'), (b'W/"abc"', 'W/"abc"')]:
        app = responder(b"a" * 1000, headers=[(b"etag", etag)])
        sent = await call(GZipMiddleware(app), http_scope(headers=GZIP))
        assert header(sent, "etag") == expected
    identity = await call(GZipMiddleware(app), http_scope())
    assert header(identity, "etag") == 'W/"abc"'


async def test_the_apps_messages_are_not_mutated() -> None:
    raw = [(b"content-type", b"text/plain"), (b"content-length", b"1000")]
    mw = GZipMiddleware(responder(b"a" * 1000, headers=raw))
    for _ in range(3):
        sent = await call(mw, http_scope(headers=GZIP))
        assert header(sent, "vary") == "Accept-Encoding"
    assert raw == [(b"content-type", b"text/plain"), (b"content-length", b"1000")]


# --- streaming bodies ---

NDJSON = [b'{"tick": %d}\n' % i for i in range(4)]  # 12 bytes each, far under minimum_size
# A long poll: an empty first chunk gets the headers out, then heartbeats, then the answer.
LONG_POLL = [b"", b"\n", b"\n", b'{"event": "ready"}\n']


class Ticker:
    """A stream the test paces: the app sends ``ticks[i]`` once ``go(i)`` is called.

    ``waiting[i]`` is set when the app has sent everything before tick ``i`` and waits.
    """

    def __init__(self, ticks: list[bytes]) -> None:
        self.ticks = ticks
        self.allowed = [anyio.Event() for _ in ticks]
        self.waiting = [anyio.Event() for _ in ticks]
        self.done = anyio.Event()

    def go(self, i: int) -> None:
        """Let the app send tick ``i``."""
        self.allowed[i].set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        for i, tick in enumerate(self.ticks):
            self.waiting[i].set()
            await self.allowed[i].wait()
            await send({"type": "http.response.body", "body": tick, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        self.done.set()


def arrived(client: MemoryObjectReceiveStream[Message]) -> Message:
    """The next message that reached the client by now; fails if the middleware holds it."""
    try:
        return client.receive_nowait()
    except anyio.WouldBlock:
        pytest.fail("held back: the app waits, and the client has not got what it sent")


@pytest.mark.parametrize("ticks", [NDJSON, LONG_POLL], ids=["ndjson", "long-poll"])
async def test_each_tick_of_a_slow_stream_reaches_the_client_before_the_next_is_sent(
    ticks: list[bytes],
) -> None:
    ticker = Ticker(ticks)
    mw = GZipMiddleware(ticker, minimum_size=500)
    receive = scripted(request_body(b""), then=DISCONNECT)
    to_client, client = anyio.create_memory_object_stream[Message](len(ticks) + 2)
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg, to_client, client:
            tg.start_soon(mw, http_scope(headers=GZIP), receive, to_client.send)
            for i, tick in enumerate(ticks):
                await ticker.waiting[i].wait()
                ticker.go(i)
                await (ticker.waiting[i + 1] if i + 1 < len(ticks) else ticker.done).wait()
                # The app waits before its next tick: this one reached the client, whole.
                if i == 0:
                    start = arrived(client)
                    assert dict(start["headers"])[b"content-encoding"] == b"gzip"
                    assert b"content-length" not in dict(start["headers"])
                message = arrived(client)
                assert message["more_body"] is True
                assert inflate.decompress(message["body"]) == tick
            end = arrived(client)
    assert end["more_body"] is False
    assert inflate.decompress(end["body"]) + inflate.flush() == b""
    assert inflate.eof


async def test_stream_is_compressed_from_its_first_chunk_one_piece_per_chunk() -> None:
    log: list[str] = []
    chunks = [b"%03d" % i * 33 for i in range(20)]  # 99 bytes each, under minimum_size
    mw = GZipMiddleware(streamer(chunks, log=log), minimum_size=500)
    sent = await call(mw, http_scope(headers=GZIP), log=log)

    # Nothing waits for minimum_size: each chunk goes out before the app sends the next.
    body = "http.response.body"
    expected = ["http.response.start"]
    for i in range(20):
        expected += [body, f"app sent {i}"]
    assert log == [*expected, body]
    assert header(sent, "content-encoding") == "gzip"
    assert header(sent, "content-length") is None
    assert header(sent, "vary") == "Accept-Encoding"

    # Each piece decompresses on arrival: the client sees the stream as it is produced.
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for message, chunk in zip(sent[1:-1], chunks, strict=True):
        assert inflate.decompress(message["body"]) == chunk
        assert message["more_body"] is True
    assert sent[-1]["more_body"] is False
    assert inflate.decompress(sent[-1]["body"]) + inflate.flush() == b""
    assert inflate.eof


async def test_stream_drops_the_apps_content_length() -> None:
    app = streamer([b"a" * 400] * 3, headers=[(b"content-length", b"1200")])
    sent = await call(GZipMiddleware(app, minimum_size=500), http_scope(headers=GZIP))
    assert header(sent, "content-length") is None
    assert gzip.decompress(body_of(sent)) == b"a" * 1200


async def test_short_stream_is_compressed_since_its_size_is_unknown_at_its_start() -> None:
    app = streamer([b"abc"] * 5, headers=[(b"content-length", b"15")])
    sent = await call(GZipMiddleware(app, minimum_size=16), http_scope(headers=GZIP))
    assert header(sent, "content-encoding") == "gzip"
    assert header(sent, "vary") == "Accept-Encoding"
    assert header(sent, "content-length") is None
    assert gzip.decompress(body_of(sent)) == b"abc" * 5


async def test_stream_whose_last_message_carries_data_ends_the_gzip_stream() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        for more_body in (True, True, True, False):
            await send({"type": "http.response.body", "body": b"abcd", "more_body": more_body})

    sent = await call(GZipMiddleware(app, minimum_size=16), http_scope(headers=GZIP))
    assert header(sent, "content-encoding") == "gzip"
    assert header(sent, "content-length") is None
    assert [m["more_body"] for m in sent[1:]] == [True, True, True, False]
    assert gzip.decompress(body_of(sent)) == b"abcd" * 4


async def test_stream_to_client_without_gzip_is_not_held_back() -> None:
    log: list[str] = []
    sent = await call(GZipMiddleware(streamer([b"x"] * 3, log=log)), http_scope(), log=log)
    assert log[:3] == ["http.response.start", "http.response.body", "app sent 0"]
    assert body_of(sent) == b"xxx"
    assert header(sent, "vary") == "Accept-Encoding"


# --- left untouched ---


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-encoding", b"br")],
        [(b"content-type", b"text/event-stream")],
        [(b"content-type", b"Text/Event-Stream; charset=utf-8")],
        [(b"content-range", b"bytes 0-999/5000")],
    ],
)
async def test_responses_not_to_compress_pass_as_is(headers: list[tuple[bytes, bytes]]) -> None:
    body = b"data: x\n\n" * 100
    sent = await call(GZipMiddleware(responder(body, headers=headers)), http_scope(headers=GZIP))
    assert headers_of(sent) == [(k.decode(), v.decode()) for k, v in headers]
    assert body_of(sent) == body


async def test_event_stream_is_not_held_back() -> None:
    log: list[str] = []
    app = streamer([b"data: 1\n\n"] * 2, headers=[(b"content-type", b"text/event-stream")], log=log)
    sent = await call(GZipMiddleware(app, minimum_size=0), http_scope(headers=GZIP), log=log)
    assert log[:3] == ["http.response.start", "http.response.body", "app sent 0"]
    assert body_of(sent) == b"data: 1\n\n" * 2


@pytest.mark.parametrize(("status", "vary"), [(204, None), (206, None), (304, "Accept-Encoding")])
async def test_bodiless_and_partial_statuses_are_not_compressed(
    status: int, vary: str | None
) -> None:
    body = b"" if status != 206 else b"a" * 1000
    app = responder(body, status=status, headers=[(b"etag", b'"v1"')])
    sent = await call(GZipMiddleware(app, minimum_size=0), http_scope(headers=GZIP))
    assert start_of(sent)["status"] == status
    assert header(sent, "content-encoding") is None
    assert header(sent, "etag") == '"v1"'
    # A 304 carries the Vary its 200 would have had.
    assert header(sent, "vary") == vary
    assert body_of(sent) == body


async def test_head_is_passed_through() -> None:
    app = responder(b"", headers=[(b"content-length", b"1000")])
    sent = await call(GZipMiddleware(app), http_scope(method="HEAD", headers=GZIP))
    assert headers_of(sent) == [("content-length", "1000")]


async def test_pathsend_is_sent_unchanged() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"9000")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": "/srv/big.txt"})

    sent = await call(GZipMiddleware(app), http_scope(headers=GZIP))
    assert sent == [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"9000")],
        },
        {"type": "http.response.pathsend", "path": "/srv/big.txt"},
    ]


async def test_trailers_follow_a_compressed_body() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"z" * 1000})
        await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"1")]})

    sent = await call(GZipMiddleware(app), http_scope(headers=GZIP))
    assert [m["type"] for m in sent][-1] == "http.response.trailers"
    assert start_of(sent)["trailers"] is True
    assert header(sent, "content-encoding") == "gzip"
    # The server frames a body with trailers itself.
    assert header(sent, "content-length") is None
    assert gzip.decompress(body_of(sent)) == b"z" * 1000


async def test_early_hints_and_pushes_go_out_before_the_held_start() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.early_hint", "links": [b"</a.css>; rel=preload"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.push", "path": "/a.css", "headers": []})
        await send({"type": "http.response.body", "body": b"q" * 1000})

    sent = await call(GZipMiddleware(app), http_scope(headers=GZIP))
    assert [m["type"] for m in sent] == [
        "http.response.early_hint",
        "http.response.push",
        "http.response.start",
        "http.response.body",
    ]
    assert gzip.decompress(body_of(sent)) == b"q" * 1000


async def test_non_http_scopes_pass_through() -> None:
    ws = websocket_scope(headers=[("Accept-Encoding", "gzip")])
    await assert_passes_through(GZipMiddleware, {"type": "lifespan"}, ws)


@pytest.mark.parametrize(
    "options",
    [{"minimum_size": -1}, {"minimum_size": "500"}, {"compresslevel": 10}, {"compresslevel": 1.5}],
)
def test_bad_configuration_fails_at_construction(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        GZipMiddleware(responder(), **options)


# --- as a user writes it: App + add_middleware + TestClient ---

MINIMUM = 500
LINES = [f"line {i}\n" for i in range(2000)]


def site() -> App:
    """An app with a text route of any length and a streaming route, behind GZip."""
    app = App()

    @app.get("/text/{size:int}")
    async def text(request: Request, size: int) -> Any:
        return "x" * size

    @app.get("/lines")
    async def lines(request: Request) -> Any:
        async def produce() -> AsyncIterator[str]:
            for line in LINES:
                yield line

        return StreamingResponse(produce(), media_type="text/plain")

    app.add_middleware(GZipMiddleware, minimum_size=MINIMUM)
    return app


async def test_app_compresses_from_minimum_size_on() -> None:
    async with TestClient(site()) as client:
        under = await client.get(f"/text/{MINIMUM - 1}", headers={"Accept-Encoding": "gzip"})
        at = await client.get(f"/text/{MINIMUM}", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in under.headers
    assert under.text == "x" * (MINIMUM - 1)
    assert at.headers["content-encoding"] == "gzip"
    assert at.headers["content-length"] == str(len(at.content))
    assert gzip.decompress(at.content) == b"x" * MINIMUM


async def test_app_streaming_response_is_compressed_and_decompresses_to_the_original() -> None:
    async with TestClient(site()) as client:
        r = await client.get("/lines", headers={"Accept-Encoding": "br, gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert "content-length" not in r.headers
    assert gzip.decompress(r.content).decode() == "".join(LINES)


@pytest.mark.parametrize("accept", [None, "gzip;q=0", "identity"])
async def test_app_client_refusing_gzip_gets_identity(accept: str | None) -> None:
    headers = {"Accept-Encoding": accept} if accept else {}
    async with TestClient(site()) as client:
        r = await client.get("/lines", headers=headers)
    assert "content-encoding" not in r.headers
    assert r.text == "".join(LINES)
    assert r.headers["vary"] == "Accept-Encoding"


async def test_app_head_has_no_body_and_is_not_compressed() -> None:
    async with TestClient(site()) as client:
        r = await client.head("/text/4000", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.content == b""
    assert "content-encoding" not in r.headers


async def test_app_gzipped_file_revalidates_with_its_weak_etag(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("a note worth compressing\n" * 100)
    app = App()

    @app.get("/notes.txt")
    async def notes(request: Request) -> FileResponse:
        return FileResponse(path)

    app.add_middleware(GZipMiddleware)
    async with TestClient(app) as client:
        first = await client.get("/notes.txt", headers={"Accept-Encoding": "gzip"})
        etag = first.headers["etag"]
        again = await client.get(
            "/notes.txt", headers={"Accept-Encoding": "gzip", "If-None-Match": etag}
        )
    assert first.headers["content-encoding"] == "gzip"
    assert gzip.decompress(first.content) == path.read_bytes()
    assert etag.startswith('W/"')
    assert again.status_code == 304
    assert again.headers["vary"] == "Accept-Encoding"
