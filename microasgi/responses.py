"""The ``Response`` family: render once in the constructor, then two ``send`` calls.

A response is sent through the request's ``Exchange`` (``respond``), which the
dispatcher hands it; as an ASGI app (``await response(scope, receive, send)``) it makes
one of its own, so middleware can answer with one too. Streaming bodies are in
``microasgi.streaming``, files in ``microasgi.fileresponse``, and what a handler may
return in ``microasgi.returns``.
"""

from __future__ import annotations

import copy
import http.cookies
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import quote

from multidict import CIMultiDict

from microasgi._concurrency import run_callable
from microasgi._json import dumps as json_dumps  # re-exported: user code imports it
from microasgi._types import RawHeaders, Receive, Scope, Send
from microasgi.datastructures import HeadersArg, encode_header, encode_headers
from microasgi.exchange import Exchange

# Run after the body is sent: any callable of no arguments, sync or async, such as a
# ``BackgroundTask`` or ``BackgroundTasks`` (microasgi.background).
Background = Callable[[], Any]
Content = Any  # bytes or str for Response; what render() accepts for subclasses


R = TypeVar("R", bound="Response")


def bodyless(status_code: int) -> bool:
    """Whether a response of this status never has a body, nor a Content-Length."""
    return status_code < 200 or status_code in (204, 304)


def _length(length: int) -> tuple[bytes, bytes]:
    return (b"content-length", b"%d" % length)


def _content_type_header(media_type: str, charset: str) -> tuple[bytes, bytes]:
    if media_type.startswith("text/") and "charset=" not in media_type:
        media_type = f"{media_type}; charset={charset}"
    return encode_header("content-type", media_type)


# media type -> (charset, its Content-Type header), encoded once: the same few come with
# every response, and encoding one costs more than the rest of a small response's set-up.
# Keyed by the media type alone (a string keeps its hash; a tuple key would be hashed on
# every response), the charset checked beside it. Bounded: media_type= may come from anywhere.
_CONTENT_TYPES: dict[str, tuple[str, tuple[bytes, bytes]]] = {}
_CONTENT_TYPES_MAX = 256


class Response:
    """A complete response: status, headers and a body known up front."""

    media_type: str | None = None
    charset = "utf-8"
    # Whether the body's length is known once constructed (not for a stream or a file).
    sized: ClassVar[bool] = True
    _headers: CIMultiDict[str] | None = None  # made on first access to .headers

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
        self.body = body = self.render(content)
        self.background = background
        self._raw: RawHeaders | None = self._render_headers(
            headers, len(body) if self.sized else None
        )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__call__" in cls.__dict__ and "respond" not in cls.__dict__:
            # A response written for Starlette sends itself from __call__: the dispatcher
            # goes through that, so it answers the same way here.
            cls.respond = _respond_through_call  # type: ignore[method-assign,assignment]

    def render(self, content: Any) -> bytes:
        """Turn ``content`` into the body's bytes."""
        if isinstance(content, str):
            return content.encode(self.charset)
        if isinstance(content, bytes):
            return content
        if content is None:
            return b""
        if isinstance(content, bytearray | memoryview):
            return bytes(content)
        raise TypeError(f"{type(self).__name__} content must be bytes or str, not {content!r}")

    def _render_headers(self, headers: HeadersArg | None, length: int | None) -> RawHeaders:
        """``headers`` encoded, with Content-Type (for ``media_type``; text types name the
        charset) and, for a body of known ``length`` the status allows, Content-Length,
        unless they are there already.
        """
        media_type = self.media_type
        content_type = None
        if media_type is not None:
            charset = self.charset
            cached = _CONTENT_TYPES.get(media_type)
            if cached is not None and cached[0] == charset:
                content_type = cached[1]
            else:
                content_type = _content_type_header(media_type, charset)
                if len(_CONTENT_TYPES) < _CONTENT_TYPES_MAX:
                    _CONTENT_TYPES[media_type] = (charset, content_type)
        if headers is None:  # most responses: nothing to merge with
            status = self.status_code
            if length is None or (status != 200 and bodyless(status)):
                raw = []
            else:
                raw = [(b"content-length", b"%d" % length)]
            if content_type is not None:
                raw.append(content_type)
            return raw
        raw = encode_headers(headers)
        names = {name for name, _ in raw}
        if bodyless(self.status_code):
            if b"content-length" in names:
                raw = [(name, value) for name, value in raw if name != b"content-length"]
        elif length is not None and b"content-length" not in names:
            raw.append(_length(length))
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

    def copy_with(self: R, status_code: int, headers: HeadersArg | None = None) -> R:
        """A copy with ``status_code``, and ``headers`` replacing its own of the same names."""
        raw = self.raw_headers()
        if headers is not None:
            given = encode_headers(headers)
            replaced = {name for name, _ in given}
            raw = [(name, value) for name, value in raw if name not in replaced] + given
        copied = copy.copy(self)
        copied.status_code = status_code
        # The framing follows the new status: a 204 or 304 has no Content-Length.
        raw = [(name, value) for name, value in raw if name != b"content-length"]
        if self.sized and not bodyless(status_code):
            raw.append(_length(len(self.body)))
        copied._raw = raw
        copied._headers = None
        return copied

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

    def respond(self, exchange: Exchange) -> Awaitable[None]:
        """Send the response through the request's ``exchange``: start, then the whole
        body (none for HEAD), then the background task (await the result).

        Not a coroutine itself: without a background task, the exchange's send is the
        whole of it, and is handed back to be awaited rather than awaited in a frame
        of its own. Subclasses may define it ``async``.
        """
        status = self.status_code
        # The headers as rendered, unless .headers was used (then checked again).
        headers = self._raw or self.raw_headers()
        body = self.body
        if body and (exchange.scope["method"] == "HEAD" or (status != 200 and bodyless(status))):
            body = b""
        sent = exchange.send_whole(
            {"type": "http.response.start", "status": status, "headers": headers},
            {"type": "http.response.body", "body": body},
        )
        if self.background is None:
            return sent
        return self._then_background(sent)

    async def _then_background(self, sent: Awaitable[None]) -> None:
        await sent
        assert self.background is not None
        await run_callable(self.background)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response as an ASGI app (middleware may answer with one)."""
        await self.respond(Exchange(scope, receive, send))

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


async def _respond_through_call(response: Response, exchange: Exchange) -> None:
    """``respond`` for a subclass that overrides ``__call__`` only."""
    await response(exchange.scope, exchange.receive, exchange.asgi_send)
