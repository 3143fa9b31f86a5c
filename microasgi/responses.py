"""The ``Response`` family: render once in the constructor, then two ``send`` calls."""

from __future__ import annotations

import http.cookies
import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import quote

import anyio
from multidict import CIMultiDict

from microasgi._concurrency import iterate_in_thread, run_callable
from microasgi._types import RawHeaders, Receive, Scope, Send
from microasgi.datastructures import HeadersArg, encode_header, encode_headers
from microasgi.requests import wants_trailers

Background = Callable[[], Any]
Content = Any  # bytes or str for Response; what render() accepts for subclasses


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
        self._raw: RawHeaders | None = self._render_headers(headers)
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

    def _content_type(self) -> str | None:
        media_type = self.media_type
        if (
            media_type is not None
            and media_type.startswith("text/")
            and "charset=" not in media_type
        ):
            return f"{media_type}; charset={self.charset}"
        return media_type

    def _render_headers(self, headers: HeadersArg | None) -> RawHeaders:
        raw = encode_headers(headers)
        names = {name for name, _ in raw}
        if b"content-length" not in names and not (
            self.status_code < 200 or self.status_code in (204, 304)
        ):
            raw.append((b"content-length", str(len(self.body)).encode()))
        content_type = self._content_type()
        if content_type is not None and b"content-type" not in names:
            raw.append((b"content-type", content_type.encode("latin-1")))
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
        body = b"" if scope.get("method") == "HEAD" else self.body
        await send({"type": "http.response.body", "body": body})
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


def _json_default(value: Any) -> Any:
    """What orjson serialises natively, for the stdlib fallback."""
    import dataclasses
    import datetime as dt
    import enum
    import uuid

    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _stdlib_dumps(data: Any) -> bytes:
    return json.dumps(
        data, ensure_ascii=False, separators=(",", ":"), default=_json_default
    ).encode("utf-8")


try:
    import orjson

    def json_dumps(data: Any) -> bytes:
        """Serialise ``data`` to compact UTF-8 JSON."""
        return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)

except ImportError:  # pragma: no cover - exercised in the no-orjson session
    json_dumps = _stdlib_dumps


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


def _spec_version(scope: Scope) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in scope.get("asgi", {}).get("spec_version", "2.0").split("."))
    except ValueError:
        return (2, 0)


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
        self.body_iterator: AsyncIterable[Chunk] | None = None
        raw = encode_headers(headers)
        content_type = self._content_type()
        if content_type is not None and all(name != b"content-type" for name, _ in raw):
            raw.append((b"content-type", content_type.encode("latin-1")))
        self._raw = raw
        self._headers = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send start, each chunk as it comes, the end, then trailers where possible."""
        with_trailers = self.trailers is not None and wants_trailers(scope)
        start = {"type": "http.response.start", "status": self.status_code}
        start["headers"] = self.raw_headers()
        if with_trailers:
            start["trailers"] = True
        chunks = self._chunks()
        try:
            await send(start)
            if scope.get("method") == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            if _spec_version(scope) >= (2, 4):
                # Servers on 2.4+ raise OSError from send once the client is gone.
                try:
                    await self._stream(chunks, send)
                except OSError:
                    return
            else:
                finished = False
                async with anyio.create_task_group() as group:

                    async def watch() -> None:
                        while (await receive())["type"] != "http.disconnect":
                            pass
                        group.cancel_scope.cancel()

                    group.start_soon(watch)
                    await self._stream(chunks, send)
                    finished = True
                    group.cancel_scope.cancel()
                if not finished:  # the client left: nothing more to send
                    return
            if with_trailers:
                assert self.trailers is not None
                trailers = encode_headers(await self.trailers())
                await send(
                    {"type": "http.response.trailers", "headers": trailers, "more_trailers": False}
                )
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        if self.background is not None:
            await run_callable(self.background)

    def _chunks(self) -> AsyncIterator[Chunk]:
        content = self.content
        if isinstance(content, AsyncIterable):
            return _aiter_of(content)
        return iterate_in_thread(iter(content))

    async def _stream(self, chunks: AsyncIterator[Chunk], send: Send) -> None:
        async for chunk in chunks:
            if not isinstance(chunk, bytes):
                chunk = chunk.encode(self.charset) if isinstance(chunk, str) else bytes(chunk)
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _aiter_of(content: AsyncIterable[Chunk]) -> AsyncIterator[Chunk]:
    async for chunk in content:
        yield chunk


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


def to_response(value: Any) -> Response:
    """Turn what a handler returned into a Response (see the API's return conversion)."""
    if isinstance(value, Response):
        return value
    if isinstance(value, tuple) and len(value) in (2, 3) and isinstance(value[1], int):
        if isinstance(value[0], Response):
            raise TypeError("return a Response alone: set its status_code and headers on it")
        return _from_body(value[0], value[1], value[2] if len(value) == 3 else None)
    return _from_body(value, None, None)
