"""Server-sent events: ``EventSourceResponse`` streams events as the HTML standard frames them.

An event is a few ``field: value`` lines ended by a blank line. Data holding line breaks
(``\\n``, ``\\r\\n`` or ``\\r``) goes over several ``data:`` lines, which the browser joins
back with ``\\n``; an ``id`` or ``event`` holding one is refused, as it would end the field
early. The response is a ``StreamingResponse``: the client leaving stops it and closes
the events' iterator on every server. A comment line (``: ping``) goes out after each
quiet ``ping`` seconds, from a task of the response's own, so that proxies and browsers
keep the connection and a server that reports a gone client only when a send fails
(ASGI 2.4) finds out.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from time import monotonic
from typing import Any

import anyio

from microasgi._concurrency import Beside
from microasgi._types import Message, RawHeaders, Send
from microasgi.datastructures import HeadersArg
from microasgi.exchange import Exchange
from microasgi.responses import Background
from microasgi.streaming import Chunk, ContentStream, StreamingResponse

DEFAULT_PING = 15.0
"""Seconds of silence after which a ping goes out, unless ``ping=`` says otherwise."""
PING = b": ping\n\n"
# The headers that keep caches and buffering proxies (nginx) from holding events back.
_STREAM_HEADERS: RawHeaders = [(b"cache-control", b"no-store"), (b"x-accel-buffering", b"no")]
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _lines(prefix: str, value: str) -> str:
    """``value`` as one ``prefix value`` line per line of it."""
    if "\n" not in value and "\r" not in value:
        return f"{prefix} {value}\n"
    return "".join(f"{prefix} {line}\n" for line in _LINE_BREAK.split(value))


def _not_str(name: str, value: object) -> bool:
    """Refuse a field that is not a str (TypeError); False for one that is."""
    if not isinstance(value, str):
        raise TypeError(f"an event's {name} is a str, not {type(value).__name__}")
    return False


@dataclasses.dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One event: its data, and optionally its type, id, reconnection delay and a comment.

    ``data=None`` sends no ``data:`` line: the browser dispatches nothing, yet takes the
    event's ``id`` and ``retry``. ``retry`` is in milliseconds.
    """

    data: str | None = None
    _: dataclasses.KW_ONLY
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None

    def __post_init__(self) -> None:
        # Checked once here, so that encoding, once per event sent, checks nothing.
        for name, value in (("data", self.data), ("comment", self.comment)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"an event's {name} is a str, not {type(value).__name__}")
        event, event_id, retry = self.event, self.id, self.retry
        if event is not None and (_not_str("event", event) or "\n" in event or "\r" in event):
            raise ValueError("an event's type cannot hold a line break")
        if event_id is not None and (
            _not_str("id", event_id) or "\n" in event_id or "\r" in event_id or "\0" in event_id
        ):
            # A browser ignores an id holding NUL: resuming from it would silently fail.
            raise ValueError("an event's id cannot hold a line break or NUL")
        if retry is not None:
            if type(retry) is not int:  # not a bool nor a float either
                raise TypeError(f"an event's retry is an int of milliseconds, not {retry!r}")
            if retry < 0:
                raise ValueError("an event's retry cannot be negative")

    def encode(self) -> bytes:
        """The event as the stream carries it: its lines, then a blank line."""
        text = "" if self.comment is None else _lines(":", self.comment)
        if self.event is not None:
            text += f"event: {self.event}\n"
        if self.id is not None:
            text += f"id: {self.id}\n"
        if self.retry is not None:
            text += f"retry: {self.retry}\n"
        if self.data is not None:
            text += _lines("data:", self.data)
        return (text + "\n").encode()


def encode_event(item: object) -> bytes:
    """What one item of an event stream sends: a ``str`` is an event's data, a
    ``ServerSentEvent`` (or a dict of its fields) an event, ``bytes`` go as they are."""
    if isinstance(item, str):
        return (_lines("data:", item) + "\n").encode()
    if isinstance(item, ServerSentEvent):
        return item.encode()
    if isinstance(item, bytes):
        return item
    if isinstance(item, Mapping):
        return ServerSentEvent(**item).encode()
    raise TypeError(
        "an event stream yields str, ServerSentEvent, a dict of its fields or bytes, "
        f"not {type(item).__name__}"
    )


async def _framed(events: AsyncIterable[Any]) -> AsyncIterator[bytes]:
    """Each event's bytes; closing this closes ``events`` (the user's cleanup runs)."""
    iterator = events.__aiter__()
    try:
        async for item in iterator:
            yield encode_event(item)
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def _framed_sync(events: Iterable[Any]) -> Iterator[bytes]:
    """Each event's bytes, for a blocking iterator (run in worker threads)."""
    iterator = iter(events)
    try:
        for item in iterator:
            yield encode_event(item)
    finally:
        close = getattr(iterator, "close", None)
        if callable(close):
            close()


class _Sender:
    """The stream's sends: none once the server said the client left, and a comment
    line whenever ``interval`` seconds passed with nothing sent (``ping_after_silences``).

    The body's sends note when the stream last spoke; a ping and an event never go at
    once (a ping in progress holds an event back until it is out). Times are
    ``time.monotonic()``'s, far cheaper per event than asking the event loop, and only
    durations are handed to it.
    """

    __slots__ = ("_exchange", "_send", "failure", "pinging", "quiet_since", "sending")

    def __init__(self, exchange: Exchange, send: Send) -> None:
        self._exchange = exchange
        self._send = send
        self.quiet_since = monotonic()
        self.sending = False
        self.pinging: anyio.Event | None = None
        self.failure: Exception | None = None

    async def send(self, message: Message) -> None:
        """Send one of the body's messages, after a ping in progress."""
        if self.pinging is not None:
            await self.pinging.wait()
        # The watch for the client cancels the stream once it reads the disconnect, but
        # a task already due to run gets one more step before that cancel reaches it.
        if self._exchange.disconnected:
            return
        self.sending = True
        try:
            await self._send(message)
        finally:
            self.sending = False
        self.quiet_since = monotonic()

    async def ping_after_silences(self, interval: float, stop: anyio.CancelScope) -> None:
        """Ping after each silence of ``interval`` seconds until cancelled; a failed ping
        stops the stream."""
        try:
            while True:
                await anyio.sleep(max(0.0, self.quiet_since + interval - monotonic()))
                if self.sending:  # a send held up by a slow client is no silence
                    await anyio.sleep(interval)
                elif monotonic() >= self.quiet_since + interval:
                    await self._ping()
        except Exception as exc:  # the client left (ASGI 2.4) or the server failed
            self.failure = exc
            stop.cancel()

    async def _ping(self) -> None:
        if self._exchange.disconnected:
            return
        done = self.pinging = anyio.Event()
        try:
            await self._send({"type": "http.response.body", "body": PING, "more_body": True})
        finally:
            self.pinging = None
            done.set()
        self.quiet_since = monotonic()


class EventSourceResponse(StreamingResponse):
    """A ``text/event-stream`` of server-sent events from an async (or sync) iterator.

    Each item is an event: a ``str`` (its data), a ``ServerSentEvent``, a dict of a
    ``ServerSentEvent``'s fields, or ``bytes`` already framed. ``ping`` (seconds; ``None``
    or 0: never) sends a comment line after each quiet interval of that length.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterable[Any] | Iterable[Any],
        status_code: int = 200,
        headers: HeadersArg | None = None,
        *,
        ping: float | None = DEFAULT_PING,
        background: Background | None = None,
    ) -> None:
        if ping is not None and not ping >= 0:
            raise ValueError(f"ping is a number of seconds (None or 0: no ping), not {ping!r}")
        self.ping = ping or None
        framed: ContentStream
        if isinstance(content, list | tuple):
            framed = [encode_event(item) for item in content]
        elif isinstance(content, AsyncIterable):
            framed = _framed(content)
        else:
            framed = _framed_sync(content)
        super().__init__(framed, status_code, headers, background=background)

    def _render_headers(self, headers: HeadersArg | None, length: int | None) -> RawHeaders:
        raw = super()._render_headers(headers, length)
        names = {name for name, _ in raw}
        raw += [header for header in _STREAM_HEADERS if header[0] not in names]
        return raw

    async def _send_body(
        self, exchange: Exchange, chunks: AsyncIterator[Chunk], with_trailers: bool, send: Send
    ) -> None:
        sender = _Sender(exchange, send)
        if self.ping is None or isinstance(self.content, list):
            await super()._send_body(exchange, chunks, with_trailers, sender.send)
            return
        failure: Exception | None = None  # raised outside the pinger's scope, as itself
        with anyio.CancelScope() as scope:
            async with Beside(sender.ping_after_silences, self.ping, scope):
                try:
                    await super()._send_body(exchange, chunks, with_trailers, sender.send)
                except Exception as exc:
                    failure = exc
        failure = failure or sender.failure
        if failure is not None:
            raise failure


__all__ = ["DEFAULT_PING", "EventSourceResponse", "ServerSentEvent", "encode_event"]
