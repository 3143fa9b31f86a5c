"""Gzip response compression for clients that accept it.

A response is compressed when the client accepts gzip (``Accept-Encoding``, with q-values)
and its first body message decides so; the response start waits for that message only.
A body sent whole in that message is compressed in one go, with an exact
``Content-Length``, when it is ``minimum_size`` bytes or more, and left as it is under
that. A streamed body (``more_body`` on its first message) cannot know its size: it is
compressed from its first chunk, without ``Content-Length``, and each chunk goes out as
the app sends it, flushed (``Z_SYNC_FLUSH``) so the client can decompress it at once. A
slow stream's small chunks (NDJSON, a long poll's heartbeats) are never held back waiting
for more, as with Starlette's GZipMiddleware. Memory stays bounded by one chunk.

Left as the app sent them: HEAD responses (they describe the identity body), status 204, 206
and 304, responses that already have a ``Content-Encoding`` or a ``Content-Range``,
``text/event-stream``, and ``http.response.pathsend`` responses (the server sends the file
itself; compressing would mean reading it into the app). Responses that could have been
compressed, compressed or not, carry ``Vary: Accept-Encoding`` so caches keep the variants
apart; a compressed response's strong ``ETag`` becomes weak (its bytes differ from the
identity's).
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import Final

import anyio.to_thread

from microasgi._types import ASGIApp, Message, RawHeaders, Receive, Scope, Send
from microasgi.middleware._headers import add_vary, joined_values

_START: Final = "http.response.start"
_BODY: Final = "http.response.body"
# Messages that do not decide anything about the body: they pass as they come.
_ALONGSIDE: Final = frozenset(
    {"http.response.push", "http.response.early_hint", "http.response.trailers"}
)
_SKIPPED_STATUSES: Final = frozenset({204, 206, 304})
_ACCEPT_ENCODING: Final = b"Accept-Encoding"
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
# Compressing more than this in one call would stall the event loop: do it in a thread.
_THREAD_MINIMUM: Final = 256 * 1024


def accepts_gzip(accept_encoding: bytes | None) -> bool:
    """Tell whether an ``Accept-Encoding`` value lets us answer with gzip (RFC 9110 12.5.3)."""
    if not accept_encoding:
        return False
    # Clients send few distinct values: cache them, but not arbitrarily long ones.
    if len(accept_encoding) <= 256:
        return _accepts_gzip_cached(accept_encoding)
    return _accepts_gzip(accept_encoding)


def _accepts_gzip(accept_encoding: bytes) -> bool:
    """Parse ``Accept-Encoding``: gzip (or x-gzip) or ``*`` with a q-value above 0."""
    gzip_q: float | None = None
    star_q: float | None = None
    for item in accept_encoding.split(b","):
        coding, *params = item.split(b";")
        coding = coding.strip().lower()
        q = 1.0
        for param in params:
            key, _, value = param.partition(b"=")
            if key.strip().lower() == b"q":
                q = _qvalue(value.strip())
        if coding in (b"gzip", b"x-gzip"):
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == b"*":
            star_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0


_accepts_gzip_cached = lru_cache(maxsize=128)(_accepts_gzip)


def _qvalue(value: bytes) -> float:
    """Read a q-value; a malformed one counts as 0 (not acceptable), the safe reading."""
    try:
        q = float(value)
    except ValueError:
        return 0.0
    return q if 0.0 <= q <= 1.0 else 0.0


def _compressible(message: Message, headers: RawHeaders) -> bool:
    """Tell whether a response start allows compressing its body at all."""
    if message["status"] in _SKIPPED_STATUSES:
        return False
    for name, value in headers:
        if name in (b"content-encoding", b"content-range"):
            return False
        if name == b"content-type" and value.partition(b";")[0].strip().lower() == (
            b"text/event-stream"
        ):
            return False
    return True


def _varied(message: Message) -> Message:
    """Return a copy of a response start with ``Vary: Accept-Encoding`` merged in."""
    headers: RawHeaders = list(message.get("headers", ()))
    add_vary(headers, _ACCEPT_ENCODING)
    return {**message, "headers": headers}


def _gzipped(message: Message, content_length: int | None) -> Message:
    """Return a copy of a response start relabelled for a gzip body of ``content_length``."""
    headers: RawHeaders = []
    for name, value in message.get("headers", ()):
        if name == b"content-length":
            continue
        if name == b"etag" and not value.startswith(b"W/"):
            value = b"W/" + value
        headers.append((name, value))
    headers.append((b"content-encoding", b"gzip"))
    # With trailers to follow, the server must frame the body itself (chunked).
    if content_length is not None and not message.get("trailers", False):
        headers.append((b"content-length", str(content_length).encode("ascii")))
    add_vary(headers, _ACCEPT_ENCODING)
    return {**message, "headers": headers}


class GZipMiddleware:
    """Gzip streamed bodies, and whole ones of ``minimum_size`` bytes or more, when accepted."""

    def __init__(self, app: ASGIApp, minimum_size: int = 500, compresslevel: int = 9) -> None:
        """Wrap ``app``; ``compresslevel`` is zlib's, from 0 (store) to 9 (smallest)."""
        if isinstance(minimum_size, bool) or not isinstance(minimum_size, int) or minimum_size < 0:
            raise ValueError(f"minimum_size must be a non-negative int, got {minimum_size!r}")
        if compresslevel not in range(-1, 10) or isinstance(compresslevel, bool):
            raise ValueError(
                f"compresslevel must be an int from -1 (zlib default) to 9, got {compresslevel!r}"
            )
        self.app = app
        self.minimum_size = minimum_size
        self.compresslevel = compresslevel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection, compressing an http response's body when it should."""
        if scope["type"] != "http" or scope["method"] == "HEAD":
            await self.app(scope, receive, send)
            return
        gzip = accepts_gzip(joined_values(scope["headers"], b"accept-encoding"))
        responder = _Responder(send, self.minimum_size, self.compresslevel if gzip else None)
        await self.app(scope, receive, responder)


class _Responder:
    """The ``send`` given to the app for one response: decides, then compresses or passes."""

    __slots__ = ("_compressor", "_held", "_level", "_minimum", "_passing", "_send")

    def __init__(self, send: Send, minimum_size: int, level: int | None) -> None:
        self._send = send
        self._minimum = minimum_size
        self._level = level  # None: the client does not accept gzip
        self._held: Message | None = None  # the response start, until its first body message
        self._compressor: zlib._Compress | None = None
        self._passing = False  # decided: everything else goes out as the app sends it

    async def __call__(self, message: Message) -> None:
        """Receive one message from the app and send what it decides, at once."""
        kind = message["type"]
        if self._passing or kind in _ALONGSIDE:
            await self._send(message)
        elif kind == _BODY and self._compressor is not None:
            await self._send_compressed(message.get("body", b""), message.get("more_body", False))
        elif kind == _BODY and self._held is not None:
            await self._first_body(message)
        elif kind == _START and self._held is None and self._compressor is None:
            headers = message.get("headers", ())
            if _compressible(message, headers):
                # Held only until the first body message, which tells whether it is the whole
                # body (and its size) or the start of a stream.
                self._held = message
                return
            self._passing = True
            # A 304 names the Vary of the 200 it stands for (RFC 9110 15.4.5).
            if message["status"] == 304 and b"content-encoding" not in dict(headers):
                message = _varied(message)
            await self._send(message)
        else:
            # pathsend, and whatever we do not know: the response goes out as the app made it
            # (out-of-order messages too, for the server to refuse).
            await self._release()
            await self._send(message)

    async def _first_body(self, message: Message) -> None:
        """Decide on the first body message, and send it with the held start."""
        start, self._held = self._held, None
        assert start is not None
        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        # A stream's size is unknown until its end, and waiting for minimum_size bytes would
        # hold a slow stream (NDJSON, a long poll's heartbeats) back from the client: a
        # stream is compressed from its first chunk, each chunk flushed as it comes.
        worth_it = more_body or len(body) >= self._minimum
        if self._level is None or not worth_it:
            self._passing = True
            if worth_it:
                # No compression for this client; a cache must still tell the variants
                # apart where another client's copy would be compressed.
                start = _varied(start)
            await self._send(start)
            await self._send(message)
            return
        self._compressor = zlib.compressobj(self._level, zlib.DEFLATED, _GZIP_WBITS)
        if more_body:
            await self._send(_gzipped(start, None))
            await self._send_compressed(body, more_body=True)
        else:
            data = await self._compress(body, more_body=False)
            await self._send(_gzipped(start, len(data)))
            await self._send({"type": _BODY, "body": data, "more_body": False})

    async def _release(self) -> None:
        """Send the held start unchanged; pass the rest through."""
        self._passing = True
        if self._held is not None:
            start, self._held = self._held, None
            await self._send(start)

    async def _send_compressed(self, body: bytes, more_body: bool) -> None:
        """Compress one chunk of a streamed body and send it, flushed."""
        if not body and more_body:
            await self._send({"type": _BODY, "body": b"", "more_body": True})
            return
        data = await self._compress(body, more_body=more_body)
        await self._send({"type": _BODY, "body": data, "more_body": more_body})

    async def _compress(self, body: bytes, *, more_body: bool) -> bytes:
        """Compress ``body``, flushing the chunk out or finishing the gzip stream."""
        if len(body) >= _THREAD_MINIMUM:
            return await anyio.to_thread.run_sync(self._squeeze, body, more_body)
        return self._squeeze(body, more_body)

    def _squeeze(self, body: bytes, more_body: bool) -> bytes:
        """Run zlib on one chunk (sync: may run in a worker thread)."""
        assert self._compressor is not None
        mode = zlib.Z_SYNC_FLUSH if more_body else zlib.Z_FINISH
        return self._compressor.compress(body) + self._compressor.flush(mode)
