"""Server-sent events: framing a browser reads back, pings after silence, and the stream's end.

What a page's ``EventSource`` would dispatch is read with tests/sse_events.py, which
parses as the HTML standard says; the client leaving is played by the test harness, as a
server before ASGI 2.4 reports it (``http.disconnect`` from receive) and as one of 2.4
does (``OSError`` from send).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import asgi_harness as harness
import pytest
from sse_events import Event, EventStreamParser, parse

from microasgi import App, EventSourceResponse, Request, ServerSentEvent
from microasgi._types import Message
from microasgi.middleware.gzip import GZipMiddleware
from microasgi.testing import TestClient

PING = b": ping\n\n"


def body_messages(sent: list[Message]) -> list[bytes]:
    """The bytes of each body message that carried some."""
    return [m["body"] for m in sent if m["type"] == "http.response.body" and m.get("body")]


def ended(sent: list[Message]) -> bool:
    """Whether the response was completed (a body message without ``more_body``)."""
    return any(m["type"] == "http.response.body" and not m.get("more_body") for m in sent)


# framing: what a browser makes of each event


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_data_over_several_lines_reaches_the_page_joined_by_newlines(newline: str) -> None:
    data = f"line 1{newline}line 2{newline}{newline}line 4{newline}"
    event = ServerSentEvent(data, event="tick", id="7", retry=3000)
    framed = event.encode()
    assert framed.count(b"data: ") == 5
    parser = EventStreamParser()
    assert parser.feed(framed) == [Event("line 1\nline 2\n\nline 4\n", "tick", "7")]
    assert parser.retry == 3000


def test_every_kind_of_item_becomes_what_the_page_sees() -> None:
    items: list[Any] = [
        "plain data",
        "",
        ServerSentEvent("typed", event="update", id="1"),
        {"data": "from a dict", "id": "2"},
        ServerSentEvent(comment="a comment\nover two lines"),
        ServerSentEvent(id="3", retry=10),  # no data: nothing dispatched, the id is kept
        b"data: already framed\n\n",
        ServerSentEvent(" leading space", id=""),  # an empty id resets the last one
    ]
    response = EventSourceResponse(items)
    assert isinstance(response.content, list)
    stream = b"".join(response.content)
    parser = EventStreamParser()
    assert parser.feed(stream) == [
        Event("plain data"),
        Event(""),
        Event("typed", "update", "1"),
        Event("from a dict", "message", "2"),
        Event("already framed", "message", "3"),
        Event(" leading space", "message", ""),
    ]
    assert parser.comments == ["a comment", "over two lines"]
    assert parser.retry == 10


@pytest.mark.parametrize("bad_id", ["1\n2", "1\r", "a\0b"])
def test_an_id_that_would_break_the_stream_or_resumption_is_refused(bad_id: str) -> None:
    with pytest.raises(ValueError, match="id"):
        ServerSentEvent("x", id=bad_id)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"event": "a\nb"}, ValueError),
        ({"retry": -1}, ValueError),
        ({"retry": 1.5}, TypeError),
        ({"retry": True}, TypeError),
        ({"data": 42}, TypeError),
        ({"id": 7}, TypeError),
    ],
)
def test_fields_that_are_not_what_the_standard_allows_are_refused(
    fields: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        ServerSentEvent(**fields)


def test_a_negative_ping_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="ping"):
        EventSourceResponse([], ping=-1)


# through an App


def events_app(**options: Any) -> App:
    """An app streaming three numbered events from ``/events``, resuming after the
    ``Last-Event-ID`` the client sends back."""
    app = App()

    @app.get("/events")
    async def events(request: Request) -> EventSourceResponse:
        last = request.headers.get("last-event-id")
        first = int(last) + 1 if last is not None and last.isdigit() else 0

        async def numbered() -> AsyncIterator[ServerSentEvent]:
            for n in range(first, first + 3):
                yield ServerSentEvent(f"event {n}", id=str(n))

        return EventSourceResponse(numbered(), **options)

    return app


@pytest.mark.anyio
async def test_an_event_stream_through_the_app_has_the_headers_proxies_need() -> None:
    async with TestClient(events_app()) as client:
        response = await client.get("/events")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-accel-buffering"] == "no"
    assert "content-length" not in response.headers
    assert [e.data for e in parse(response.content)] == ["event 0", "event 1", "event 2"]


@pytest.mark.anyio
async def test_headers_given_replace_the_stream_defaults() -> None:
    response = EventSourceResponse([], headers={"Cache-Control": "private, no-cache"})
    assert response.headers.getall("cache-control") == ["private, no-cache"]
    assert response.headers["x-accel-buffering"] == "no"


@pytest.mark.anyio
async def test_a_client_resumes_after_the_last_event_id_it_saw() -> None:
    async with TestClient(events_app()) as client:
        first = parse((await client.get("/events")).content)
        again = await client.get("/events", headers={"last-event-id": first[-1].last_event_id})
    assert [e.last_event_id for e in first] == ["0", "1", "2"]
    assert [e.data for e in parse(again.content)] == ["event 3", "event 4", "event 5"]


@pytest.mark.anyio
async def test_head_sends_the_headers_and_never_starts_the_generator() -> None:
    started = False

    async def events() -> AsyncIterator[str]:
        nonlocal started
        started = True
        yield "never"

    sent = await harness.run(EventSourceResponse(events()), harness.http_scope(method="HEAD"))
    assert harness.start_of(sent)["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in harness.start_of(sent)[
        "headers"
    ]
    assert harness.body_of(sent) == b""
    assert started is False


@pytest.mark.anyio
async def test_a_sync_generator_streams_from_worker_threads_and_is_closed() -> None:
    closed: list[bool] = []

    def events() -> Iterator[ServerSentEvent]:
        try:
            for n in range(3):
                yield ServerSentEvent(str(n), id=str(n))
        finally:
            closed.append(True)

    sent = await harness.run(EventSourceResponse(events()), harness.http_scope(spec_version="2.3"))
    assert [e.data for e in parse(harness.body_of(sent))] == ["0", "1", "2"]
    assert ended(sent)
    assert closed == [True]


@pytest.mark.anyio
async def test_gzip_never_compresses_an_event_stream() -> None:
    app = events_app()
    app.add_middleware(GZipMiddleware, minimum_size=1)
    async with TestClient(app) as client:
        response = await client.get("/events", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in response.headers
    assert [e.data for e in parse(response.content)] == ["event 0", "event 1", "event 2"]


@pytest.mark.anyio
async def test_the_background_task_runs_after_the_stream() -> None:
    done: list[str] = []

    async def events() -> AsyncIterator[str]:
        yield "one"
        done.append("stream")

    async def background() -> None:
        done.append("background")

    response = EventSourceResponse(events(), background=background)
    sent = await harness.run(response, harness.http_scope())
    assert ended(sent)
    assert done == ["stream", "background"]


# errors


@pytest.mark.anyio
@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_an_error_in_the_generator_after_the_start_propagates_as_itself(
    spec_version: str,
) -> None:
    app = App()

    @app.get("/events")
    async def events(request: Request) -> EventSourceResponse:
        async def failing() -> AsyncIterator[str]:
            yield "before"
            raise RuntimeError("the feed broke")

        return EventSourceResponse(failing(), ping=60)

    async with TestClient(app, spec_version=spec_version) as client:
        # The error itself, not an ExceptionGroup from the ping's task group.
        with pytest.raises(RuntimeError, match="the feed broke"):
            await client.get("/events")
    async with TestClient(app, spec_version=spec_version, raise_server_exceptions=False) as client:
        response = await client.get("/events")
    # The stream had started: the client keeps what came, and is not told it is complete.
    assert response.status_code == 200
    assert [e.data for e in parse(response.content)] == ["before"]


@pytest.mark.anyio
async def test_an_item_that_is_not_an_event_is_a_clear_error() -> None:
    async def events() -> AsyncIterator[Any]:
        yield 42

    with pytest.raises(TypeError, match="not int"):
        await harness.run(EventSourceResponse(events()), harness.http_scope())


# pings


class TimedRecorder(harness.Recorder):
    """A recording send that also notes when each message went out, and whether two
    sends ever overlapped."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []
        self.pinged = anyio.Event()
        self.in_send = 0
        self.most_at_once = 0
        self.hold: anyio.Event | None = None  # while set, body messages wait for it

    async def __call__(self, message: Message) -> None:
        self.in_send += 1
        self.most_at_once = max(self.most_at_once, self.in_send)
        try:
            self.times.append(anyio.current_time())
            await super().__call__(message)
            if message.get("body") == PING:
                self.pinged.set()
            elif self.hold is not None and message.get("body"):
                await self.hold.wait()
        finally:
            self.in_send -= 1

    def gaps_before_pings(self) -> list[float]:
        """For each ping, the time since the message before it."""
        return [
            self.times[i] - self.times[i - 1]
            for i, m in enumerate(self.messages)
            if m.get("body") == PING
        ]


@pytest.mark.anyio
async def test_a_ping_follows_a_silence_of_the_ping_interval() -> None:
    interval = 0.05
    send = TimedRecorder()

    async def events() -> AsyncIterator[str]:
        for n in range(6):  # events closer together than the interval: no ping between them
            yield f"quick {n}"
            await anyio.sleep(interval / 3)
        await send.pinged.wait()  # then silence, until the ping came
        yield "after the silence"

    response = EventSourceResponse(events(), ping=interval)
    with anyio.fail_after(5):
        await response(harness.http_scope(spec_version="2.3"), harness.scripted(), send)
    bodies = body_messages(send.messages)
    assert PING in bodies
    assert bodies[-1] == b"data: after the silence\n\n"
    # Each ping came after a full interval with nothing sent: a timer ticking regardless
    # of the events would have fired close behind one of them.
    assert all(gap >= interval - 1e-6 for gap in send.gaps_before_pings())
    events_seen = [e.data for e in parse(b"".join(bodies))]
    assert events_seen == [f"quick {n}" for n in range(6)] + ["after the silence"]
    assert ended(send.messages)


@pytest.mark.anyio
async def test_a_ping_never_overlaps_an_event_held_up_by_a_slow_client() -> None:
    interval = 0.02
    send = TimedRecorder()
    hold = send.hold = anyio.Event()

    async def release() -> None:
        await anyio.sleep(interval * 5)  # the client takes a while to read the first event
        hold.set()

    async def events() -> AsyncIterator[str]:
        yield "first"
        yield "second"

    response = EventSourceResponse(events(), ping=interval)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(release)
            await response(harness.http_scope(spec_version="2.3"), harness.scripted(), send)
    assert send.most_at_once == 1
    assert [e.data for e in parse(b"".join(body_messages(send.messages)))] == ["first", "second"]


@pytest.mark.anyio
@pytest.mark.parametrize("ping", [None, 0])
async def test_no_ping_when_pings_are_off(ping: float | None) -> None:
    sent = await harness.run(EventSourceResponse(["a", "b"], ping=ping), harness.http_scope())
    assert body_messages(sent) == [b"data: a\n\n", b"data: b\n\n"]


# the client leaves


def silent_stream(log: list[str]) -> AsyncIterator[str]:
    """One event, then nothing until closed; ``log`` gets "closed" when its cleanup runs."""

    async def events() -> AsyncIterator[str]:
        try:
            yield "hello"
            await anyio.sleep_forever()
        finally:
            log.append("closed")

    return events()


@pytest.mark.anyio
@pytest.mark.parametrize("ping", [None, 0.01])
async def test_a_client_leaving_closes_the_generator_before_asgi_2_4(ping: float | None) -> None:
    log: list[str] = []
    send = harness.Recorder()
    response = EventSourceResponse(silent_stream(log), ping=ping)
    with anyio.fail_after(5):
        await response(harness.http_scope(spec_version="2.3"), harness.disconnect_after(0.05), send)
    assert log == ["closed"]
    assert body_messages(send.messages)[0] == b"data: hello\n\n"
    assert not ended(send.messages)


@pytest.mark.anyio
@pytest.mark.parametrize("ping", [None, 0.001])
async def test_nothing_is_sent_once_the_server_said_the_client_left(ping: float | None) -> None:
    log: list[str] = []
    gone = False
    after_gone: list[Message] = []

    async def receive() -> Message:
        nonlocal gone
        await anyio.sleep(0.05)
        gone = True
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if gone:
            after_gone.append(message)

    async def ticking() -> AsyncIterator[str]:
        try:
            while True:
                yield "tick"
                await anyio.sleep(0.001)
        finally:
            log.append("closed")

    with anyio.fail_after(5):
        await EventSourceResponse(ticking(), ping=ping)(
            harness.http_scope(spec_version="2.3"), receive, send
        )
    assert log == ["closed"]
    assert after_gone == []


@pytest.mark.anyio
async def test_a_client_leaving_closes_a_sync_generator_too() -> None:
    log: list[str] = []

    def endless() -> Iterator[str]:
        try:
            while True:
                yield "tick"
                time.sleep(0.005)  # blocking work, in a worker thread
        finally:
            log.append("closed")

    send = harness.Recorder()
    response = EventSourceResponse(endless(), ping=0.01)
    with anyio.fail_after(5):
        await response(harness.http_scope(spec_version="2.3"), harness.disconnect_after(0.05), send)
    assert log == ["closed"]
    assert not ended(send.messages)


class GoneAfter:
    """A send of an ASGI 2.4 server whose client leaves after ``n`` messages: every later
    send raises OSError, and counts as sent after the client left."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.messages: list[Message] = []
        self.after_gone = 0

    async def __call__(self, message: Message) -> None:
        if len(self.messages) >= self.n:
            self.after_gone += 1
            raise OSError("the client went away")
        self.messages.append(message)


async def never_receive() -> Message:
    raise AssertionError("on ASGI 2.4 the client's leaving shows in send, not receive")


@pytest.mark.anyio
async def test_on_asgi_2_4_a_ping_finds_the_client_gone_from_a_silent_stream() -> None:
    log: list[str] = []
    send = GoneAfter(2)  # the start and the first event reach the client
    response = EventSourceResponse(silent_stream(log), ping=0.01)
    with anyio.fail_after(5):
        await response(harness.http_scope(spec_version="2.4"), never_receive, send)
    assert log == ["closed"]
    assert send.after_gone == 1  # the one ping that found out; nothing after it


@pytest.mark.anyio
async def test_on_asgi_2_4_an_event_to_a_gone_client_ends_the_stream() -> None:
    log: list[str] = []

    async def endless() -> AsyncIterator[str]:
        try:
            while True:
                yield "tick"
                await anyio.lowlevel.checkpoint()
        finally:
            log.append("closed")

    send = GoneAfter(4)
    with anyio.fail_after(5):
        await EventSourceResponse(endless(), ping=60)(
            harness.http_scope(spec_version="2.4"), never_receive, send
        )
    assert log == ["closed"]
    assert send.after_gone == 1
