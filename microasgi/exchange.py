"""``Exchange``: one HTTP request and its response, as microasgi handles them.

The dispatcher makes one for each request and hands it, explicitly, to the ``Request``
and to the ``Response``. It owns what belongs to the request rather than to either side:

- the body's state: how much has arrived, whether it ended, the limit it is read against;
- whether the client has gone, and the relay that watches for that while a response
  streams on a server that reports it only through ``receive`` (ASGI before 2.4);
- whether the response has started, which decides whether an error can still be answered;
- the request's end: what the request opened (an uploaded form) is closed.

Nothing here waits on the client beyond what a handler asked for: a response never waits
on a body its handler left unread.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import anyio
import anyio.lowlevel

from microasgi._concurrency import Beside, if_ready
from microasgi._types import Message, Receive, Scope, Send
from microasgi.datastructures import DEFAULT_LIMITS, Limits, content_headers
from microasgi.exceptions import ClientDisconnect, HTTPException

# Methods whose requests carry no body worth taking at the response's end.
BODYLESS_METHODS = frozenset({"GET", "HEAD"})
# How much unread body the server already holds is taken before a response ends, and
# how many turns of the event loop the server gets to hand over what the client sent.
DRAIN_LIMIT = 64 * 1024
DRAIN_TURNS = 3
# HTTP versions whose servers read past an unread body themselves: nothing to take there.
_HTTP1 = frozenset({"1.0", "1.1"})
# How often a stream gives the event loop a turn even when nothing it does waits.
CHUNKS_PER_TURN = 32


class Closeable(Protocol):
    """What a request may open and its end closes (a form with uploaded files)."""

    async def close(self) -> None:
        """Release what it holds."""


def body_too_large(limit: int) -> HTTPException:
    """The 413 for a body over ``limit`` bytes."""
    return HTTPException(413, f"request body larger than {limit} bytes")


def reports_disconnect_on_send(scope: Scope) -> bool:
    """Whether the server's ``send`` raises OSError once the client is gone (ASGI 2.4+)."""
    version = scope.get("asgi", _NO_ASGI).get("spec_version", "2.0")
    return version not in _BEFORE_2_4 and _spec_version(version) >= (2, 4)


_NO_ASGI: dict[str, str] = {}
_BEFORE_2_4 = frozenset({"2.0", "2.1", "2.2", "2.3"})  # what servers say, without parsing


def _spec_version(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (2, 0)


class _ClientGone(Exception):
    """The server's ``send`` raised OSError (ASGI 2.4): the client disconnected."""


class Exchange:
    """One HTTP request and its response: the body, the client's presence, the end."""

    # Set on first use; class-level defaults keep construction to four assignments.
    started = False  # http.response.start was sent: an error can no longer be answered
    body_claimed = False  # a reader took the body
    body_ended = False  # the client's last body message was received
    body_size = 0  # body bytes received so far, counted against the limit
    disconnected = False  # the client has gone
    to_close: list[Closeable] | None = None  # what the request's end closes
    _buffered: list[bytes] | None = None  # body bytes a look took before any reader
    _relay: _Relay | None = None  # the one reader of receive() while a response streams
    _content_headers: tuple[str, int | None] | None = None  # read once, when needed

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self.scope = scope
        self.limits = limits
        self._receive = receive
        self._send = send

    # the two channels

    async def receive(self) -> Message:
        """The client's next message (``request.receive``), noting the body's end and
        a disconnect."""
        message = await self._next_message()
        self._note(message)
        return message

    def _next_message(self) -> Awaitable[Message]:
        """The server's next message: from the relay while one reads ``receive``."""
        relay = self._relay
        return self._receive() if relay is None else relay.receive()

    def _note(self, message: Message) -> str:
        """Note the body's end or the client's leaving from a received message; its type."""
        kind: str = message["type"]
        if kind == "http.request":
            if not message.get("more_body", False):
                self.body_ended = True
        elif kind == "http.disconnect":
            self.disconnected = True
        return kind

    def send(self, message: Message) -> Awaitable[None]:
        """Send ``message`` to the client, noting the response's start (await the result)."""
        if message["type"] == "http.response.start":
            self.started = True
        return self._send(message)

    async def send_whole(self, start: Message, body: Message) -> None:
        """Send a response whose body is one message: ``start``, then ``body`` once the
        unread request body the server already holds is taken (see ``finish_body``)."""
        self.started = True
        await self._send(start)
        # Most requests have no body left to take (a GET or HEAD, or a body read to its
        # end): decided without a call.
        if not (self.body_ended or self.scope["method"] in BODYLESS_METHODS) and self.body_unread():
            await self.finish_body()
        await self._send(body)

    async def asgi_send(self, message: Message) -> None:
        """``send`` as an ASGI app is handed it: a coroutine function, as asgiref checks."""
        await self.send(message)

    async def _look(self, turns: int = 0) -> Message | None:
        """The client's next message if the server already holds it, or once it had
        ``turns`` turns of the event loop to hand it over; else None. Never a timer."""
        while True:
            message = await if_ready(self.receive)
            if message is not None or not turns:
                return message
            turns -= 1
            await anyio.lowlevel.checkpoint()

    # the body

    def content_headers(self) -> tuple[str, int | None]:
        """The body's Content-Type (``""`` if absent) and the length its Content-Length
        declares (None if absent or not a number)."""
        found = self._content_headers
        if found is None:
            found = self._content_headers = content_headers(self.scope["headers"])
        return found

    def _claim(self) -> list[bytes]:
        """Begin reading the body (once): check its declared size, and hand over what a
        look took before."""
        if self.body_claimed:
            raise RuntimeError("the request body was already streamed")
        self.body_claimed = True
        limit = self.limits.max_body_size
        declared = self.content_headers()[1]
        if (declared is not None and declared > limit) or self.body_size > limit:
            raise body_too_large(limit)
        buffered = self._buffered or []
        self._buffered = None
        return buffered

    def _counted(self, message: Message) -> bytes:
        """The body bytes (maybe none) of a message the server handed over, noted and
        counted against the limit."""
        kind = self._note(message)
        if kind == "http.request":
            chunk: bytes = message.get("body", b"")
            if chunk:
                self.body_size += len(chunk)
                if self.body_size > self.limits.max_body_size:
                    raise body_too_large(self.limits.max_body_size)
            return chunk
        if kind == "http.disconnect":
            raise ClientDisconnect()
        return b""  # a message type we do not know: wait for the next one

    async def read_body(self) -> bytes:
        """The whole body (at most ``max_body_size`` bytes, else 413)."""
        chunks = self._claim()
        while not self.body_ended:
            # Not self.receive(), a coroutine more per message: _counted notes the message.
            chunk = self._counted(await self._next_message())
            if chunk:
                chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def stream_body(self) -> AsyncIterator[bytes]:
        """Yield the body as it arrives (at most ``max_body_size`` bytes, else 413)."""
        for chunk in self._claim():
            yield chunk
        while True:
            if self._buffered:  # a look between two chunks took the next one
                yield self._buffered.pop(0)
                continue
            if self.body_ended:
                return
            chunk = self._counted(await self.receive())
            if chunk:
                yield chunk

    async def is_disconnected(self) -> bool:
        """Tell, without waiting for the client, whether it has gone away."""
        if self.disconnected or self._relay is not None:
            return self.disconnected  # a streaming response's relay reads receive() itself
        message = await self._look()
        if message is not None and message["type"] == "http.request":
            # Body bytes are kept for the reader: a check must not lose them, and they
            # count against the limit like read ones.
            chunk = self._counted(message)
            if chunk:
                if self._buffered is None:
                    self._buffered = []
                self._buffered.append(chunk)
        return self.disconnected

    def body_unread(self) -> bool:
        """Whether the server may still hold request body that no one began to read."""
        return not (
            self.scope.get("method") in BODYLESS_METHODS
            or self.body_ended
            or self.body_claimed  # a reader stopped early (a 413): it has its reasons
            or self.disconnected
        )

    async def finish_body(self) -> None:
        """Before the response ends, take the unread body the server already holds.

        hypercorn's HTTP/2 (0.18) fails on DATA for a stream whose response finished,
        and clients send a body, even an empty one, in frames of their own after the
        headers: what the client has sent is taken, up to DRAIN_LIMIT, once the server
        had DRAIN_TURNS turns of the event loop to read it. Nothing waits on the client:
        a body it has not sent yet is left (a 401 to a slow upload goes out at once).

        Over HTTP/1 nothing is taken: the server reads past a body the app left, as it
        must for any app, and the look costs as much as the rest of the response.
        """
        if self.scope.get("http_version") in _HTTP1:
            return
        declared = self.content_headers()[1]
        if declared is not None and declared > DRAIN_LIMIT:
            return
        taken = 0
        while taken <= DRAIN_LIMIT and self.body_unread() and self._relay is None:
            message = await self._look(DRAIN_TURNS)
            if message is None or message["type"] != "http.request":
                return
            taken += len(message.get("body", b""))

    # the response

    async def until_disconnect(
        self, body: Callable[[Send], Awaitable[None]], *, watch: bool = True
    ) -> None:
        """Run ``body(send)``, and stop it quietly when the client disconnects.

        ``watch=False`` is for a body that never waits on anything but ``send``: it ends
        soon anyway, so no watcher is started for it on servers before ASGI 2.4.
        """
        if reports_disconnect_on_send(self.scope):
            try:
                await body(self._send_or_gone)
            except _ClientGone:
                self.disconnected = True
            return
        if self.disconnected:
            return
        if not watch:
            await body(self.send)
            return
        # Older servers say so only through receive(): a relay becomes its one reader, in
        # a task beside the body, and stops the body through an anyio cancel scope, so a
        # body that shields its cleanup or waits for a worker thread ends as anyio promises.
        relay = self._relay = _Relay(self, self._receive)
        failure: Exception | None = None  # raised outside the task's scope, as itself
        try:
            with anyio.CancelScope() as scope:
                async with Beside(relay.watch, scope):
                    try:
                        await body(self.send)
                    except Exception as exc:
                        failure = exc
        finally:
            self._relay = None
        failure = failure or relay.failure
        if failure is not None:
            raise failure

    async def _send_or_gone(self, message: Message) -> None:
        try:
            await self.send(message)
        except OSError:
            raise _ClientGone from None

    # the end

    def close_at_end(self, resource: Closeable) -> None:
        """Have the request's end close ``resource`` (a form with uploaded files)."""
        if self.to_close is None:
            self.to_close = []
        self.to_close.append(resource)

    async def close(self) -> None:
        """End the request: close what it opened, even when it was cancelled."""
        resources, self.to_close = self.to_close or [], None
        with anyio.CancelScope(shield=True):
            for resource in resources:
                await resource.close()


class _Relay:
    """The one reader of the server's ``receive`` while a response streams.

    It notes the disconnect, which stops the stream, and keeps body messages for a
    Request still reading them (a body echoed back), up to the body limit, so that
    neither the disconnect nor a body byte is missed. It lives as long as the stream,
    so it keeps no more than it must: the queue is made only for a message that has
    bytes, and the body's empty last message, all most streams ever see (a GET's), is
    kept as a flag and handed over as a fresh message.
    """

    __slots__ = ("_arrived", "_ended", "_exchange", "_messages", "_receive", "failure")

    def __init__(self, exchange: Exchange, receive: Receive) -> None:
        self._exchange = exchange
        self._receive = receive
        self._messages: collections.deque[Message] | None = None
        self._ended = False  # an empty last body message came, not handed over yet
        self._arrived: anyio.Event | None = None
        self.failure: Exception | None = None

    async def watch(self, stop: anyio.CancelScope) -> None:
        """Read the server's messages until the client disconnects; then ``stop``."""
        exchange = self._exchange
        budget = exchange.limits.max_body_size - exchange.body_size
        ended = exchange.body_ended
        try:
            while True:
                message = await self._receive()
                if message["type"] == "http.disconnect":
                    exchange.disconnected = True
                    break
                if ended:
                    # The body had ended, so a server that follows the spec waits for the
                    # disconnect; one that answers at once would spin this loop for good.
                    await anyio.sleep_forever()
                ended = not message.get("more_body", False)
                if budget < 0:
                    continue  # the reader has what makes it fail with a 413: keep no more
                budget -= len(message.get("body", b""))
                self._keep(message, ended)
        except Exception as exc:  # the server's receive failed: the stream stops with it
            self.failure = exc
        stop.cancel()

    def _keep(self, message: Message, last: bool) -> None:
        if last and not message.get("body") and not self._messages:
            self._ended = True
        else:
            if self._messages is None:
                self._messages = collections.deque()
            self._messages.append(message)
        if self._arrived is not None:
            self._arrived.set()

    async def receive(self) -> Message:
        """The next relayed message, waiting for the watcher if there is none yet."""
        while not self._messages:
            if self._ended:
                self._ended = False
                return {"type": "http.request", "body": b"", "more_body": False}
            self._arrived = anyio.Event()
            await self._arrived.wait()
        return self._messages.popleft()


__all__ = [
    "BODYLESS_METHODS",
    "CHUNKS_PER_TURN",
    "DRAIN_LIMIT",
    "Closeable",
    "Exchange",
    "body_too_large",
    "reports_disconnect_on_send",
]
