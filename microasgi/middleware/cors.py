"""Cross-Origin Resource Sharing: answer preflights, label responses for allowed origins.

What the middleware does, per http request:

- No ``Origin`` header: the app answers untouched, plus ``Vary: Origin`` unless the
  configuration answers every origin alike (``"*"`` without credentials).
- A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) never reaches
  the app: an allowed one gets 200 with the ``Access-Control-Allow-*`` headers, a refused one
  400 with a short plain-text reason.
- Any other request with an ``Origin``: the app answers, and an allowed origin gets
  ``Access-Control-Allow-Origin`` (and the credentials and expose headers) on the response.

WebSocket and lifespan scopes pass through untouched. Browsers send ``Origin`` on every
WebSocket handshake, same-origin ones included, so refusing unlisted origins there would break
an app's own pages; guard against cross-site WebSocket hijacking in the handler by checking
``websocket.headers.get("origin")``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from microasgi._types import ASGIApp, Message, RawHeaders, Receive, Scope, Send
from microasgi.datastructures import encode_header
from microasgi.middleware._headers import add_vary, split_tokens

# Headers a browser may send cross-origin whatever the server allows (Fetch's safelist; a
# Content-Type outside the safelisted values still triggers a preflight that names it).
SAFELISTED_HEADERS: Final = frozenset(
    {"accept", "accept-language", "content-language", "content-type"}
)

_ORIGIN_SHAPE: Final = re.compile(r"[a-z][a-z0-9+.\-]*://[^/?#\s]+", re.IGNORECASE)
_METHOD_SHAPE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# What an app may have set itself that we replace, so a browser never sees two values.
_LABEL_NAMES: Final = frozenset(
    {
        b"access-control-allow-origin",
        b"access-control-allow-credentials",
        b"access-control-expose-headers",
    }
)

_ALLOW_ORIGIN: Final = b"access-control-allow-origin"
_ALLOW_METHODS: Final = b"access-control-allow-methods"
_ALLOW_HEADERS: Final = b"access-control-allow-headers"
_ORIGIN: Final = b"Origin"


def _names(values: Iterable[str], what: str) -> tuple[str, ...]:
    """Materialise an option that takes several names, refusing a bare string."""
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{what} takes a list of strings, not the string {values!r}")
    return tuple(values)


def _origin(value: str) -> bytes:
    """Check one ``allow_origins`` entry and return it in the form browsers send."""
    if value in ("*", "null"):
        return value.encode("latin-1")
    if not _ORIGIN_SHAPE.fullmatch(value):
        raise ValueError(
            f"allow_origins entries are origins like 'https://example.com' "
            f"(scheme://host[:port], no path), '*' or 'null'; got {value!r}"
        )
    # Browsers serialise an origin's scheme and host in lower case.
    return value.lower().encode("latin-1")


def _method(value: str) -> bytes:
    """Check one ``allow_methods`` entry and return it upper-cased."""
    if not _METHOD_SHAPE.fullmatch(value):
        raise ValueError(f"invalid HTTP method {value!r} in allow_methods")
    return value.upper().encode("ascii")


def _header_list(names: Iterable[str]) -> bytes:
    """Join header names into one header value, refusing what cannot be a header name."""
    return b", ".join(encode_header(name, "")[0] for name in names)


def _plain(status: int, body: bytes, headers: RawHeaders) -> tuple[Message, Message]:
    """Build the two messages of a small plain-text response."""
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
            *headers,
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class CORSMiddleware:
    """Answer CORS preflights and add ``Access-Control-*`` headers for allowed origins."""

    def __init__(
        self,
        app: ASGIApp,
        allow_origins: Iterable[str] = (),
        allow_origin_regex: str | re.Pattern[str] | None = None,
        allow_methods: Iterable[str] = ("GET",),
        allow_headers: Iterable[str] = (),
        allow_credentials: bool = False,
        expose_headers: Iterable[str] = (),
        max_age: int | None = 600,
    ) -> None:
        """Wrap ``app``; every option is checked and turned into headers here, once."""
        self.app = app
        origins = {_origin(origin) for origin in _names(allow_origins, "allow_origins")}
        methods = {_method(method) for method in _names(allow_methods, "allow_methods")}
        headers = {name.lower() for name in _names(allow_headers, "allow_headers")}
        exposed = _names(expose_headers, "expose_headers")
        if max_age is not None and (
            isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0
        ):
            raise ValueError(f"max_age must be a non-negative int or None, got {max_age!r}")

        self._any_origin = b"*" in origins
        self._origins = frozenset(origins - {b"*"})
        self._regex = re.compile(allow_origin_regex) if allow_origin_regex is not None else None
        self._any_method = b"*" in methods
        self._methods = frozenset(methods)
        self._any_header = "*" in headers
        self._headers = frozenset(
            name.encode("latin-1") for name in (headers | SAFELISTED_HEADERS) - {"*"}
        )
        # "*" is only a wildcard for requests without credentials: otherwise we echo.
        self._wildcard = self._any_origin and not allow_credentials

        credentials: RawHeaders = (
            [(b"access-control-allow-credentials", b"true")] if allow_credentials else []
        )
        self._labels: RawHeaders = credentials[:]
        if exposed:
            self._labels.append((b"access-control-expose-headers", _header_list(exposed)))

        preflight: RawHeaders = []
        if not self._any_method:
            preflight.append((_ALLOW_METHODS, b", ".join(sorted(self._methods))))
        if not self._any_header:
            preflight.append((_ALLOW_HEADERS, _header_list(sorted(headers | SAFELISTED_HEADERS))))
        if max_age is not None:
            preflight.append((b"access-control-max-age", str(max_age).encode("ascii")))
        preflight += credentials
        if not self._wildcard:
            preflight.append((b"vary", _ORIGIN))
        self._preflight_start, self._preflight_body = _plain(200, b"OK", preflight)

        vary: RawHeaders = [] if self._wildcard else [(b"vary", _ORIGIN)]
        self._refusals = {
            reason: _plain(400, f"Disallowed CORS {reason}".encode("ascii"), vary)
            for reason in ("origin", "method", "headers")
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection: preflights here, everything else by the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = request_method = None
        request_headers: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"origin":
                if origin is None:
                    origin = value
            elif name == b"access-control-request-method":
                request_method = value
            elif name == b"access-control-request-headers":
                request_headers.append(value)

        if origin is None:
            if self._wildcard:
                await self.app(scope, receive, send)
            else:
                await self.app(scope, receive, _labelling(send, [], vary=True))
        elif scope["method"] == "OPTIONS" and request_method is not None:
            await self._preflight(origin, request_method, request_headers, send)
        elif self._allows(origin):
            allow_origin = b"*" if self._wildcard else origin
            labels = [(_ALLOW_ORIGIN, allow_origin), *self._labels]
            await self.app(scope, receive, _labelling(send, labels, vary=not self._wildcard))
        else:
            await self.app(scope, receive, _labelling(send, [], vary=True))

    def _allows(self, origin: bytes) -> bool:
        """Tell whether ``origin`` (as the browser sent it) is allowed."""
        if self._any_origin or origin in self._origins:
            return True
        return (
            self._regex is not None and self._regex.fullmatch(origin.decode("latin-1")) is not None
        )

    async def _preflight(
        self, origin: bytes, method: bytes, request_headers: list[bytes], send: Send
    ) -> None:
        """Answer a preflight request: 200 with the allowances, or 400 with the reason."""
        requested = split_tokens(b",".join(request_headers))
        headers: RawHeaders = []
        if not self._allows(origin):
            start, body = self._refusals["origin"]
        elif not (self._any_method or method in self._methods):
            start, body = self._refusals["method"]
        elif not (self._any_header or self._headers.issuperset(requested)):
            start, body = self._refusals["headers"]
        else:
            headers.append((_ALLOW_ORIGIN, b"*" if self._wildcard else origin))
            if self._any_method:
                headers.append((_ALLOW_METHODS, method))
            if self._any_header and requested:
                headers.append((_ALLOW_HEADERS, b", ".join(requested)))
            headers += self._preflight_start["headers"]
            start, body = self._preflight_start, self._preflight_body
        # Fresh messages each time: an outer middleware may edit what it is sent in place.
        await send({**start, "headers": headers or list(start["headers"])})
        await send({**body})


def _labelling(send: Send, labels: RawHeaders, *, vary: bool) -> Send:
    """Wrap ``send`` so the response start carries ``labels`` (and ``Vary: Origin``)."""

    async def send_labelled(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: RawHeaders = list(message.get("headers", ()))
            if labels:
                headers = [header for header in headers if header[0] not in _LABEL_NAMES]
                headers += labels
            if vary:
                add_vary(headers, _ORIGIN)
            # A new message: the app may send the same headers list again (a cached Response).
            message = {**message, "headers": headers}
        await send(message)

    return send_labelled
