"""``FileResponse``: a file from disk, with validators, conditional requests, byte ranges
and ``http.response.pathsend``. The rules themselves (dates, ETags, ranges) are pure
functions in ``microasgi._files``; this module is the I/O around them.
"""

from __future__ import annotations

import os
import secrets
import stat
from typing import ClassVar

import anyio

from microasgi import _files
from microasgi._concurrency import run_callable
from microasgi._extensions import PATHSEND, supports
from microasgi._types import Message, RawHeaders, Send
from microasgi.datastructures import HeadersArg
from microasgi.exchange import Exchange
from microasgi.responses import Background, Response

_READ_AHEAD = 4  # chunks read per worker-thread hop


class FileResponse(Response):
    """A file from disk, with validators, conditional requests, byte ranges and pathsend."""

    chunk_size = 64 * 1024

    sized: ClassVar[bool] = False  # the length depends on the request (ranges, HEAD)

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
        media_type = media_type or _files.guess_media_type(filename or path)
        super().__init__(None, status_code, headers, media_type, background)
        self.path = path
        # pathsend wants an absolute path; resolved now, against the cwd open() would use.
        self._abspath = os.path.abspath(path)
        self.filename = filename
        self.method = method
        self.stat_result = stat_result
        self.chunk_size = chunk_size
        raw = self.raw_headers()
        names = {name for name, _ in raw}
        if b"accept-ranges" not in names:
            raw.append((b"accept-ranges", b"bytes"))
        if filename is not None and b"content-disposition" not in names:
            disposition = _files.content_disposition(filename, content_disposition_type)
            raw.append((b"content-disposition", disposition.encode("latin-1")))

    async def respond(self, exchange: Exchange) -> None:
        """Stat the file, answer 200/206/304/412/416, and send the bytes asked for, if any."""
        scope = exchange.scope
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
            raw = [(name, value) for name, value in raw if name not in _REPRESENTATION_METADATA]
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
            await exchange.send_whole(start, {"type": "http.response.body", "body": b""})
        elif status == 200 and supports(scope, PATHSEND):
            # The server reads the file itself, the fastest way there is (sendfile).
            await exchange.send(start)
            await exchange.send({"type": "http.response.pathsend", "path": self._abspath})
        else:
            await self._stream(exchange, start, ranges, parts)
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
        exchange: Exchange,
        start: Message,
        ranges: list[_files.ByteRange],
        parts: _files.ByteRangesBody | None,
    ) -> None:
        """Send the start, then ``ranges`` of the file, until done or the client leaves."""
        # Opened before the start: a file gone since the stat is still a clean 500.
        file = await self._open()
        try:
            await exchange.send(start)

            async def send_file(send: Send) -> None:
                await self._send_file(send, file, ranges, parts)

            await exchange.until_disconnect(send_file)
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
            # Each read is a worker-thread hop, which costs more than a send: read several
            # messages' worth at once, then send them chunk_size at a time.
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


# Representation metadata, which a 304, 412 or 416 must not carry (RFC 9110 15.4.5):
# the other headers (Cache-Control, Vary, Content-Security-Policy...) stay.
_REPRESENTATION_METADATA = frozenset(
    {b"content-type", b"content-encoding", b"content-language", b"content-length", b"content-range"}
)
