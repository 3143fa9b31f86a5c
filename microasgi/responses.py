"""The ``Response`` family: render once in the constructor, then two ``send`` calls."""

from __future__ import annotations

import collections
import contextlib
import functools
import http.cookies
import os
import secrets
import stat
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import quote

import anyio
from multidict import CIMultiDict

from microasgi import _files
from microasgi._concurrency import iterate_held, iterate_in_thread, run_callable, run_until
from microasgi._extensions import PATHSEND, supports
from microasgi._json import dumps as json_dumps  # re-exported: user code imports it
from microasgi._types import Message, RawHeaders, Receive, Scope, Send
from microasgi.datastructures import HeadersArg, encode_header, encode_headers, header_items
from microasgi.requests import (
    BODYLESS_METHODS,
    RECEIVE_KEY,
    drain_body,
    limits_for,
    wants_trailers,
)

Background = Callable[[], Any]
Content = Any  # bytes or str for Response; what render() accepts for subclasses


@functools.lru_cache(maxsize=256)
def _content_type_header(media_type: str, charset: str) -> tuple[bytes, bytes]:
    # Cached: the same few media types come with every response, and encoding one is
    # a third of a small response's set-up.
    if media_type.startswith("text/") and "charset=" not in media_type:
        media_type = f"{media_type}; charset={charset}"
    return encode_header("content-type", media_type)


class Response:
    """A complete response: status, headers and a body known up front."""

    media_type: str | None = None
    charset = "utf-8"

    def __init__(
        self,
        content: Content | None = b"",
        status_code: int = 200,
        headers: HeadersArg | None = None,
        media_type: str | None = None,
        background: Background | None = None,
    ) -> None:
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.body = self.render(content)
        self.background = background
        self._raw: RawHeaders | None = self._render_headers(headers, len(self.body))
        self._headers: CIMultiDict[str] | None = None

    def render(self, content: Any) -> bytes:
        """Turn ``content`` into the body's bytes."""
        if content is None:
            return b""
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode(self.charset)
        if isinstance(content, bytearray | memoryview):
            return bytes(content)
        raise TypeError(f"{type(self).__name__} content must be bytes or str, not {content!r}")

    def _content_type(self) -> tuple[bytes, bytes] | None:
        """The Content-Type header for ``media_type`` (text types name the charset)."""
        if self.media_type is None:
            return None
        return _content_type_header(self.media_type, self.charset)

    def _render_headers(self, headers: HeadersArg | None, length: int | None) -> RawHeaders:
        """``headers`` encoded, with Content-Type and (for a body of known ``length`` the
        status allows) Content-Length, unless they are there already.
        """
        raw = encode_headers(headers) if headers is not None else []
        names = {name for name, _ in raw} if raw else ()
        if (
            length is not None
            and b"content-length" not in names
            and not (self.status_code < 200 or self.status_code in (204, 304))
        ):
            raw.append((b"content-length", b"%d" % length))
        content_type = self._content_type()
        if content_type is not None and b"content-type" not in names:
            raw.append(content_type)
        return raw

    @property
    def headers(self) -> CIMultiDict[str]:
        """The response headers, mutable until the response is sent."""
        if self._headers is None:
            headers: CIMultiDict[str] = CIMultiDict()
            for name, value in self._raw or ():
                headers.add(name.decode("latin-1"), value.decode("latin-1"))
            self._headers = headers
            self._raw = None
        return self._headers

    def raw_headers(self) -> RawHeaders:
        """The headers as ASGI sends them (re-checked if they were changed)."""
        if self._raw is not None:
            return self._raw
        return encode_headers(self.headers)

    def _add_header(self, name: str, value: str) -> None:
        if self._raw is not None:
            self._raw.append(encode_header(name, value))
        else:
            encode_header(name, value)  # refuse CR/LF now, not at send time
            self.headers.add(name, value)

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | None = None,
        expires: datetime | str | int | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Add a ``Set-Cookie`` header."""
        for part in (key, value, path or "", domain or "", str(expires or "")):
            if any(c in part for c in "\r\n\0"):
                raise ValueError("cookie parts cannot hold CR, LF or NUL")
        cookie: http.cookies.BaseCookie[str] = http.cookies.SimpleCookie()
        cookie[key] = value
        morsel = cookie[key]
        if max_age is not None:
            morsel["max-age"] = str(int(max_age))
        if expires is not None:
            if isinstance(expires, datetime):
                morsel["expires"] = format_datetime(expires.astimezone(timezone.utc), usegmt=True)
            else:
                morsel["expires"] = expires
        if path is not None:
            morsel["path"] = path
        if domain is not None:
            morsel["domain"] = domain
        if secure:
            morsel["secure"] = True
        if httponly:
            morsel["httponly"] = True
        if samesite is not None:
            if samesite.lower() not in ("strict", "lax", "none"):
                raise ValueError("samesite must be 'strict', 'lax' or 'none'")
            morsel["samesite"] = samesite
        text = cookie.output(header="").strip()
        if partitioned:
            text += "; Partitioned"
        self._add_header("set-cookie", text)

    def delete_cookie(
        self,
        key: str,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
    ) -> None:
        """Add a ``Set-Cookie`` header that expires the cookie ``key`` now."""
        self.set_cookie(
            key,
            max_age=0,
            expires=0,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response: start, then the whole body (none for HEAD)."""
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self.raw_headers(),
            }
        )
        method = scope.get("method")
        if method not in BODYLESS_METHODS:
            await drain_body(scope, receive)  # before the end: see drain_body
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else self.body})
        if self.background is not None:
            await run_callable(self.background)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code})"


class PlainTextResponse(Response):
    """A ``text/plain; charset=utf-8`` response."""

    media_type = "text/plain"


class HTMLResponse(Response):
    """A ``text/html; charset=utf-8`` response."""

    media_type = "text/html"


class JSONResponse(Response):
    """A JSON response (orjson when installed, else the standard library: same bytes)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise ``content`` as compact UTF-8 JSON."""
        return json_dumps(content)


class RedirectResponse(Response):
    """A redirect (307 by default) to ``url``."""

    def __init__(
        self,
        url: str | Any,
        status_code: int = 307,
        headers: HeadersArg | None = None,
        background: Background | None = None,
    ) -> None:
        super().__init__(b"", status_code, headers, background=background)
        self._add_header("location", quote(str(url), safe=":/%#?=@[]!$&'()*+,;~"))


Chunk = bytes | str | memoryview
ContentStream = AsyncIterable[Chunk] | Iterable[Chunk]
Trailers = Callable[[], Awaitable[HeadersArg]]


def _send_reports_disconnects(scope: Scope) -> bool:
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


class StartWatch:
    """The send a guarded app gets: it notes when the response starts."""

    __slots__ = ("send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    def __call__(self, message: Message) -> Awaitable[None]:
        """Pass ``message`` on, noting an ``http.response.start``."""
        if message["type"] == "http.response.start":
            self.started = True
        # The server's awaitable itself: a coroutine of our own per message cost 0.15 us.
        return self.send(message)


def past_start(send: Send) -> Send:
    """The send to use once the response has started: a start watch has nothing left to see.

    A long body then skips a layer per message.
    """
    return send.send if type(send) is StartWatch and send.started else send


class _ClientGone(Exception):
    """The server's ``send`` raised OSError (ASGI 2.4): the client disconnected."""


async def _until_disconnect(
    scope: Scope,
    receive: Receive,
    send: Send,
    send_body: Callable[..., Coroutine[Any, Any, None]],
    *args: Any,
) -> None:
    """Run ``send_body(send, *args)``, stopping quietly when the client disconnects."""
    send = past_start(send)
    if _send_reports_disconnects(scope):

        async def checked_send(message: Message) -> None:
            try:
                await send(message)
            except OSError:
                raise _ClientGone from None

        with contextlib.suppress(_ClientGone):
            await send_body(checked_send, *args)
        return
    # Older servers only say so through receive(): a watcher becomes its one reader, and
    # relays body messages to a Request still reading them (a body echoed back), up to
    # the body limit, so neither the disconnect nor a body byte is missed.
    relay = _BodyRelay(scope, receive)
    scope[RECEIVE_KEY] = relay.receive
    try:
        await run_until(send_body(send, *args), relay.until_disconnected)
    finally:
        del scope[RECEIVE_KEY]


class _BodyRelay:
    """The server's ``receive``, read for the disconnect, and relayed to the one Request
    still reading the body.

    A deque and an event made only when the reader has to wait: most responses relay
    nothing, and an anyio memory stream cost them 10 us each.
    """

    __slots__ = ("_arrived", "_messages", "_receive", "_scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self._scope = scope
        self._receive = receive
        self._messages: collections.deque[Message] | None = None  # made for the first
        self._arrived: anyio.Event | None = None

    async def until_disconnected(self) -> None:
        """Read the server's messages, keeping body ones, until the client disconnects."""
        budget = limits_for(self._scope).max_body_size
        ended = False
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                return
            if ended:
                # The body had ended, so a server that follows the spec waits for the
                # disconnect; one that answers at once would spin this loop for good.
                await anyio.sleep_forever()
            ended = not message.get("more_body", False)
            if budget < 0:
                continue  # the reader has what makes it fail with a 413: keep no more
            budget -= len(message.get("body", b""))
            if self._messages is None:
                self._messages = collections.deque()
            self._messages.append(message)
            if self._arrived is not None:
                self._arrived.set()

    async def receive(self) -> Message:
        """The next relayed message, waiting for the watcher if there is none yet."""
        while not self._messages:
            self._arrived = anyio.Event()
            await self._arrived.wait()
        return self._messages.popleft()


class StreamingResponse(Response):
    """A body sent in chunks from an (async or sync) iterator, and optional trailers."""

    def __init__(
        self,
        content: ContentStream,
        status_code: int = 200,
        headers: HeadersArg | None = None,
        media_type: str | None = None,
        background: Background | None = None,
        trailers: Trailers | None = None,
    ) -> None:
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.body = b""
        self.content = content
        self.background = background
        self.trailers = trailers
        self._raw = self._render_headers(headers, None)
        self._headers = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send start, each chunk as it comes, the end, then trailers where possible."""
        method = scope.get("method")
        with_trailers = self.trailers is not None and method != "HEAD" and wants_trailers(scope)
        start = {"type": "http.response.start", "status": self.status_code}
        start["headers"] = self.raw_headers()
        if with_trailers:
            start["trailers"] = True
        content = self.content
        chunks: AsyncIterator[Chunk]
        if hasattr(content, "__aiter__"):  # what isinstance(AsyncIterable) checks, quicker
            chunks = content.__aiter__()
        elif isinstance(content, list | tuple):
            chunks = iterate_held(content)
        else:
            chunks = iterate_in_thread(iter(content))
        try:
            await send(start)
            if method == "HEAD":
                await send({"type": "http.response.body", "body": b""})
            else:
                await _until_disconnect(
                    scope, receive, send, self._send_body, chunks, scope, receive, with_trailers
                )
        finally:
            # Close what we iterated, so the user's generator runs its cleanup now.
            if not _finished(chunks):
                await _close(chunks)
            if content is not chunks and not _finished(content):
                await _close(content)
        if self.background is not None:
            await run_callable(self.background)

    async def _send_body(
        self,
        send: Send,
        chunks: AsyncIterator[Chunk],
        scope: Scope,
        receive: Receive,
        with_trailers: bool,
    ) -> None:
        async for chunk in chunks:
            if not isinstance(chunk, bytes):
                chunk = chunk.encode(self.charset) if isinstance(chunk, str) else bytes(chunk)
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if scope.get("method") not in BODYLESS_METHODS:
            await drain_body(scope, receive)  # before the end: see drain_body
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


def _from_body(body: Any, status: int | None, headers: HeadersArg | None) -> Response:
    if isinstance(body, str):
        return PlainTextResponse(body, status or 200, headers)
    if isinstance(body, dict | list):
        return JSONResponse(body, status or 200, headers)
    if body is None:
        return Response(None, 204 if status is None else status, headers)
    if isinstance(body, bytes | bytearray | memoryview):
        return Response(body, status or 200, headers, media_type="application/octet-stream")
    raise TypeError(
        f"a handler returned {type(body).__name__!s}: return a Response, str, bytes, "
        "dict, list, None or a (body, status[, headers]) tuple"
    )


_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_JSON = (b"content-type", b"application/json")
_OCTETS = (b"content-type", b"application/octet-stream")


def plain_messages(value: Any, method: str) -> tuple[Message, Message] | None:
    """The two messages for a plain return (str, dict, list, bytes), exactly as
    ``to_response(value)`` would send them, without building a Response; else None.
    """
    kind = type(value)
    if kind is str:
        body, content_type = value.encode(), _TEXT
    elif kind is dict or kind is list:
        body, content_type = json_dumps(value), _JSON
    elif kind is bytes:
        body, content_type = value, _OCTETS
    else:
        return None
    headers = [(b"content-length", b"%d" % len(body)), content_type]
    return (
        {"type": "http.response.start", "status": 200, "headers": headers},
        {"type": "http.response.body", "body": b"" if method == "HEAD" else body},
    )


def to_response(value: Any) -> Response:
    """Turn what a handler returned into a Response (see the API's return conversion)."""
    if isinstance(value, Response):
        return value
    if isinstance(value, tuple) and len(value) in (2, 3) and isinstance(value[1], int):
        body, status = value[0], value[1]
        headers = value[2] if len(value) == 3 else None
        if isinstance(body, Response):  # Flask's (response, status[, headers])
            body.status_code = status
            for name, header in header_items(headers):
                body._add_header(name, header)
            return body
        return _from_body(body, status, headers)
    return _from_body(value, None, None)


_READ_AHEAD = 4  # chunks read per worker-thread hop


class FileResponse(Response):
    """A file from disk, with validators, conditional requests, byte ranges and pathsend."""

    chunk_size = 64 * 1024

    def __init__(
        self,
        path: str | os.PathLike[str],
        status_code: int = 200,
        headers: HeadersArg | None = None,
        media_type: str | None = None,
        background: Background | None = None,
        filename: str | None = None,
        content_disposition_type: str = "attachment",
        method: str | None = None,
        stat_result: os.stat_result | None = None,
        chunk_size: int = 64 * 1024,
    ) -> None:
        self.path = path
        # pathsend wants an absolute path; resolved now, against the cwd open() would use.
        self._abspath = os.path.abspath(path)
        self.status_code = status_code
        self.filename = filename
        self.media_type = media_type or _files.guess_media_type(filename or path)
        self.background = background
        self.method = method
        self.stat_result = stat_result
        self.chunk_size = chunk_size
        self.body = b""
        raw = self._render_headers(headers, None)  # the length depends on the request
        names = {name for name, _ in raw}
        if b"accept-ranges" not in names:
            raw.append((b"accept-ranges", b"bytes"))
        if filename is not None and b"content-disposition" not in names:
            disposition = _files.content_disposition(filename, content_disposition_type)
            raw.append((b"content-disposition", disposition.encode("latin-1")))
        self._raw = raw
        self._headers = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stat the file, answer 200/206/304/412/416, and send the bytes asked for, if any."""
        if scope["type"] != "http":
            raise RuntimeError(f"FileResponse answers http scopes, not {scope['type']!r}")
        method = (self.method or scope.get("method", "GET")).upper()
        stat_result = self.stat_result if self.stat_result is not None else await self._stat()
        size = stat_result.st_size
        raw, etag, last_modified = self._validated_headers(stat_result)
        plan = _files.FilePlan(self.status_code)
        if self.status_code == 200 and method in ("GET", "HEAD"):
            plan = _files.plan_file_response(
                _files.request_headers(scope.get("headers", ())),
                method=method,
                size=size,
                etag=etag,
                last_modified=last_modified,
            )
        status = plan.status_code
        ranges: list[_files.ByteRange] = []  # the spans of the file the body carries
        parts = None
        if status in (304, 412, 416):
            raw = [(name, value) for name, value in raw if not _is_content_header(name)]
            if status == 416:
                raw.append((b"content-range", f"bytes */{size}".encode("latin-1")))
            if status != 304:
                raw.append((b"content-length", b"0"))
        elif plan.ranges is None:
            raw.append((b"content-length", str(size).encode("latin-1")))
            ranges = [(0, size)] if size else []
        else:
            raw, parts = self._ranged(raw, plan.ranges, size)
            ranges = plan.ranges
        start = {"type": "http.response.start", "status": status, "headers": raw}
        if method == "HEAD" or not ranges:
            await send(start)
            await send({"type": "http.response.body", "body": b""})
        elif status == 200 and supports(scope, PATHSEND):
            # The server reads the file itself, the fastest way there is (sendfile).
            await send(start)
            await send({"type": "http.response.pathsend", "path": self._abspath})
        else:
            await self._stream(scope, receive, send, start, ranges, parts)
        if self.background is not None:
            await run_callable(self.background)

    async def _stat(self) -> os.stat_result:
        try:
            stat_result = await anyio.to_thread.run_sync(os.stat, self.path)
        except FileNotFoundError:
            raise RuntimeError(f"File at path {self.path} does not exist.") from None
        if not stat.S_ISREG(stat_result.st_mode):
            raise RuntimeError(f"File at path {self.path} is not a file.")
        return stat_result

    def _validated_headers(self, stat_result: os.stat_result) -> tuple[RawHeaders, str, int]:
        """The headers to send, with ETag and Last-Modified (the user's own, if set)."""
        raw = [
            (n, v) for n, v in self.raw_headers() if n not in (b"content-length", b"content-range")
        ]
        given = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}
        etag = given.get("etag")
        if etag is None:
            etag = _files.make_etag(stat_result)
            raw.append((b"etag", etag.encode("latin-1")))
        last_modified = _files.last_modified_of(stat_result)
        if "last-modified" in given:
            # The user's own date is what the client will send back.
            parsed = _files.parse_http_date(given["last-modified"])
            last_modified = last_modified if parsed is None else parsed
        else:
            raw.append((b"last-modified", _files.http_date(last_modified).encode("latin-1")))
        return raw, etag, last_modified

    def _ranged(
        self, raw: RawHeaders, ranges: list[_files.ByteRange], size: int
    ) -> tuple[RawHeaders, _files.ByteRangesBody | None]:
        """The 206's headers, and the multipart framing when there are several ranges."""
        if len(ranges) == 1:
            content_range = _files.content_range(ranges[0], size)
            start, stop = ranges[0]
            raw.append((b"content-range", content_range.encode("latin-1")))
            raw.append((b"content-length", str(stop - start).encode("latin-1")))
            return raw, None
        content_type = dict(raw).get(b"content-type", b"application/octet-stream")
        # 13 random bytes: the entropy browsers use for their own multipart boundaries.
        parts = _files.byteranges_body(
            ranges, size, content_type.decode("latin-1"), secrets.token_hex(13)
        )
        raw = [(name, value) for name, value in raw if name != b"content-type"]
        raw.append((b"content-type", parts.content_type.encode("latin-1")))
        raw.append((b"content-length", str(parts.content_length).encode("latin-1")))
        return raw, parts

    async def _stream(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        start: Message,
        ranges: list[_files.ByteRange],
        parts: _files.ByteRangesBody | None,
    ) -> None:
        """Send the start, then ``ranges`` of the file, until done or the client leaves."""
        # Opened before the start: a file gone since the stat is still a clean 500.
        file = await self._open()
        try:
            await send(start)
            await _until_disconnect(scope, receive, send, self._send_file, file, ranges, parts)
        finally:
            # The file closes even when the transfer is cancelled (client gone, shutdown).
            with anyio.CancelScope(shield=True):
                await file.aclose()

    async def _open(self) -> anyio.AsyncFile[bytes]:
        try:
            return await anyio.open_file(self.path, "rb")
        except FileNotFoundError:
            raise RuntimeError(f"File at path {self.path} does not exist.") from None

    async def _send_file(
        self,
        send: Send,
        file: anyio.AsyncFile[bytes],
        ranges: list[_files.ByteRange],
        parts: _files.ByteRangesBody | None,
    ) -> None:
        """Send the ranges of ``file``, framed as multipart when ``parts``."""
        if parts is None:
            await self._send_span(file, *ranges[0], send, more_body=False)
            return
        for head, (start, stop) in zip(parts.part_heads, ranges, strict=True):
            await send({"type": "http.response.body", "body": head, "more_body": True})
            await self._send_span(file, start, stop, send, more_body=True)
            await send({"type": "http.response.body", "body": parts.part_tail, "more_body": True})
        await send({"type": "http.response.body", "body": parts.closing})

    async def _send_span(
        self, file: anyio.AsyncFile[bytes], start: int, stop: int, send: Send, more_body: bool
    ) -> None:
        """Send bytes ``start:stop`` of ``file`` in chunks read in a worker thread."""
        if start:
            await file.seek(start)
        remaining = stop - start
        size = self.chunk_size
        while remaining > 0:
            # Each read is a worker-thread hop (25-55 us here): read several messages'
            # worth at once, then send them chunk_size at a time.
            block = await file.read(min(size * _READ_AHEAD, remaining))
            if not block:
                # Never let a short body pass for a complete one: the error reaches the server.
                raise RuntimeError(f"File at path {self.path} shrank while being sent.")
            for offset in range(0, len(block), size):
                chunk = block[offset : offset + size]
                remaining -= len(chunk)
                await send(
                    {
                        "type": "http.response.body",
                        "body": chunk,
                        "more_body": more_body or remaining > 0,
                    }
                )


def _is_content_header(name: bytes) -> bool:
    """Representation metadata a 304, 412 or 416 must not carry (RFC 9110 15.4.5)."""
    return name.startswith(b"content-") and name != b"content-location"
