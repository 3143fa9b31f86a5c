"""``StreamingResponse``: a body sent in chunks as an iterator yields them, then trailers.

The body runs under the exchange's watch for the client (``Exchange.until_disconnect``):
it stops, and the iterator is closed, as soon as the client leaves, on every server.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import ClassVar

import anyio
import anyio.lowlevel

from microasgi._concurrency import iterate_held, iterate_in_thread, run_callable
from microasgi._extensions import wants_trailers
from microasgi._types import Message, Send
from microasgi.datastructures import HeadersArg, encode_headers
from microasgi.exchange import CHUNKS_PER_TURN, Exchange
from microasgi.responses import Background, Response

Chunk = bytes | str | memoryview
ContentStream = AsyncIterable[Chunk] | Iterable[Chunk]
Trailers = Callable[[], Awaitable[HeadersArg]]


class StreamingResponse(Response):
    """A body sent in chunks from an (async or sync) iterator, and optional trailers."""

    sized: ClassVar[bool] = False

    def __init__(
        self,
        content: ContentStream,
        status_code: int = 200,
        headers: HeadersArg | None = None,
        media_type: str | None = None,
        background: Background | None = None,
        trailers: Trailers | None = None,
    ) -> None:
        super().__init__(None, status_code, headers, media_type, background)
        self.content = content
        self.trailers = trailers

    async def respond(self, exchange: Exchange) -> None:
        """Send start, each chunk as it comes, the end, then trailers where possible."""
        scope = exchange.scope
        method = scope.get("method")
        with_trailers = self.trailers is not None and method != "HEAD" and wants_trailers(scope)
        content = self.content
        held = isinstance(content, list | tuple)
        chunks: AsyncIterator[Chunk]
        if hasattr(content, "__aiter__"):  # what isinstance(AsyncIterable) checks, quicker
            chunks = content.__aiter__()
        elif held:
            chunks = iterate_held(content)
        else:
            chunks = iterate_in_thread(iter(content))
        try:
            await exchange.send(self._start(with_trailers))
            if method == "HEAD":
                await exchange.send({"type": "http.response.body", "body": b""})
            else:
                body = functools.partial(self._send_body, exchange, chunks, with_trailers)
                # Chunks already in memory never wait: nothing to watch for while they go.
                await exchange.until_disconnect(body, watch=not held)
        finally:
            # Close what we iterated, so the user's generator runs its cleanup now.
            if not _finished(chunks):
                await _close(chunks)
            if content is not chunks and not _finished(content):
                await _close(content)
        if self.background is not None:
            await run_callable(self.background)

    def _start(self, with_trailers: bool) -> Message:
        """The start message, made where it is sent: a stream does not keep it."""
        start: Message = {"type": "http.response.start", "status": self.status_code}
        start["headers"] = self.raw_headers()
        if with_trailers:
            start["trailers"] = True
        return start

    async def _send_body(
        self, exchange: Exchange, chunks: AsyncIterator[Chunk], with_trailers: bool, send: Send
    ) -> None:
        turn = CHUNKS_PER_TURN
        async for chunk in chunks:
            if not isinstance(chunk, bytes):
                chunk = chunk.encode(self.charset) if isinstance(chunk, str) else bytes(chunk)
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            turn -= 1
            if not turn:
                # A source that never waits, sent to a server that quietly drops what a
                # gone client would get, would keep the event loop to itself: the
                # disconnect would never be seen, nor any other request served.
                turn = CHUNKS_PER_TURN
                await anyio.lowlevel.checkpoint()
        if exchange.body_unread():
            await exchange.finish_body()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if with_trailers:
            assert self.trailers is not None
            trailers = encode_headers(await self.trailers())
            await send(
                {"type": "http.response.trailers", "headers": trailers, "more_trailers": False}
            )


def _finished(iterator: object) -> bool:
    """Whether ``iterator`` is a generator that has run to its end: nothing left to close."""
    frame = getattr(iterator, "ag_frame", getattr(iterator, "gi_frame", iterator))
    return frame is None


async def _close(iterator: object) -> None:
    """Close an iterator, if it can be: a generator's ``finally`` runs now, not at GC."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
    elif callable(close := getattr(iterator, "close", None)):
        await anyio.to_thread.run_sync(close)
