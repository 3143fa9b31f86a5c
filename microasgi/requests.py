"""``Request`` (and ``HTTPConnection``, shared with ``WebSocket``): lazy views over a scope.

Nothing is parsed until a handler reads it: headers, query, cookies and the URL are
built on first access and cached on the object. The body is read through the request's
``Exchange`` and cached in the scope, so a second ``Request`` over the same scope (a
middleware's, then the handler's) gets the same bytes instead of waiting for messages
that were already consumed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, cast
from urllib.parse import quote, unquote

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy
from yarl import URL

from microasgi import _extensions, _json
from microasgi._types import Message, Receive, Scope, Send
from microasgi.datastructures import (
    DEFAULT_LIMITS,
    FormData,
    HeadersArg,
    Limits,
    State,
    encode_headers,
    overridden,
    raw_header,
)
from microasgi.exceptions import ClientDisconnect, HTTPException
from microasgi.exchange import Exchange
from microasgi.formparsers import URLENCODED, decode_text, parse_form, parse_urlencoded

if TYPE_CHECKING:
    # A default (PEP 696) keeps a bare ``Request`` meaning ``Request[State]`` for type
    # checkers; at run time the parameter is only a name (no typing_extensions needed).
    from typing_extensions import TypeVar

    from microasgi.app import App

    StateT = TypeVar("StateT", bound=Mapping[str, Any] | State, default=State)
else:
    from typing import TypeVar

    StateT = TypeVar("StateT")

__all__ = ["APP_KEY", "ROOT_KEY", "Address", "ClientDisconnect", "HTTPConnection", "Request"]

# What microasgi adds to the request's own scope dict (never to nested server values),
# written by the App and read only here.
APP_KEY = "microasgi.app"  # the App handling the request (innermost)
ROOT_KEY = "microasgi.root"  # (the outermost App, root_path as the server gave it)
BODY_KEY = "microasgi.body"  # the body, once read: every Request over the scope shares it
FORM_KEY = "microasgi.form"  # the parsed form, likewise

# A form body declared this small is read whole before it is parsed.
_SMALL_FORM = 64 * 1024

# A Host header we may build a URL from: a name or an IP literal, and a port.
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.\-_]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class Address(NamedTuple):
    """A peer's ``(host, port)``."""

    host: str
    port: int


def parse_cookies(header: str) -> dict[str, str]:
    """Parse a ``Cookie`` header leniently, as browsers send it (later names win)."""
    cookies: dict[str, str] = {}
    for chunk in header.split(";"):
        name, sep, value = chunk.partition("=")
        name, value = name.strip(), value.strip()
        if not sep and not name:
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        cookies[name] = value
    return cookies


def parse_query(text: str) -> list[tuple[str, str]]:
    """Parse ``a=1&b=2`` like ``parse_qsl(text, keep_blank_values=True)``, faster.

    parse_qsl unquotes each name and value in its own call, and the calls are the cost.
    Here the pieces are joined with NUL (which no piece can hold unescaped and no UTF-8
    sequence contains), unquoted in one call, and split again.
    """
    if "+" in text:
        text = text.replace("+", " ")
    flat: list[str] = []
    for pair in text.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            flat.append(name)
            flat.append(value)
    if "%" in text:
        if "%00" in text or "\x00" in text:
            flat = [unquote(piece) for piece in flat]
        else:
            flat = unquote("\x00".join(flat)).split("\x00")
    return list(zip(flat[::2], flat[1::2], strict=True))


def limits_for(scope: Scope) -> Limits:
    """The limits of the App handling ``scope`` (defaults outside any App)."""
    app = scope.get(APP_KEY)
    return app.limits if app is not None else DEFAULT_LIMITS


class HTTPConnection(Generic[StateT]):
    """What HTTP requests and WebSocket connections share: the scope's lazy views.

    ``Request[MyState]`` (and ``WebSocket[MyState]``) types ``.state`` as ``MyState``,
    a ``TypedDict`` of the lifespan state (read as ``request.state["pool"]``) or a
    ``State`` subclass with annotations (read as ``request.state.pool``).
    """

    # Built on first access; class-level defaults keep construction to one assignment.
    _headers: CIMultiDictProxy[str] | None = None
    _query: MultiDictProxy[str] | None = None
    _cookies: dict[str, str] | None = None
    _url: URL | None = None
    _state: State | None = None

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    @property
    def app(self) -> App:
        """The microasgi App handling this connection."""
        return self.scope[APP_KEY]  # type: ignore[no-any-return]

    @property
    def path(self) -> str:
        """The full request path, as the server decoded it (``root_path`` included)."""
        return self.scope["path"]  # type: ignore[no-any-return]

    @property
    def path_params(self) -> dict[str, Any]:
        """The converted path parameters of the matched route."""
        return self.scope.get("path_params", {})  # type: ignore[no-any-return]

    @property
    def scheme(self) -> str:
        """``http``, ``https``, ``ws`` or ``wss``."""
        default = "ws" if self.scope["type"] == "websocket" else "http"
        scheme: str = self.scope.get("scheme") or default
        return scheme

    @property
    def http_version(self) -> str:
        """The HTTP version the server spoke, e.g. ``"1.1"`` or ``"2"``."""
        return self.scope.get("http_version", "1.1")  # type: ignore[no-any-return]

    @property
    def client(self) -> Address | None:
        """The peer's address, when the server knows it."""
        client = self.scope.get("client")
        return Address(client[0], client[1]) if client else None

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """The request headers (case-insensitive, repeated names kept)."""
        if self._headers is None:
            headers: CIMultiDict[str] = CIMultiDict()
            for name, value in self.scope["headers"]:
                headers.add(name.decode("latin-1"), value.decode("latin-1"))
            self._headers = CIMultiDictProxy(headers)
        return self._headers

    @property
    def query(self) -> MultiDictProxy[str]:
        """The query string's parameters, percent-decoded."""
        if self._query is None:
            raw = self.scope.get("query_string", b"").decode("latin-1")
            self._query = MultiDictProxy(MultiDict(parse_query(raw)))
        return self._query

    @property
    def cookies(self) -> dict[str, str]:
        """The request's cookies."""
        if self._cookies is None:
            cookie = self.headers.getall("cookie", ())
            self._cookies = parse_cookies("; ".join(cookie)) if cookie else {}
        return self._cookies

    @property
    def state(self) -> StateT:
        """Per-request state over ``scope["state"]`` (starts as a copy of lifespan state)."""
        if self._state is None:
            if "state" not in self.scope:
                app = self.scope.get(APP_KEY)
                self.scope["state"] = dict(app.lifespan_state) if app is not None else {}
            self._state = State(self.scope["state"])
        # The declared type is the user's promise about the lifespan's state: not checked.
        return cast(StateT, self._state)

    @property
    def url(self) -> URL:
        """The absolute URL of the request."""
        if self._url is None:
            query = self.scope.get("query_string", b"").decode("latin-1")
            self._url = self._build_url(self._raw_path(), query)
        return self._url

    def _host(self) -> tuple[str, int | None]:
        host_header = raw_header(self.scope["headers"], b"host")
        # A malformed Host (a path, spaces, userinfo) must not reshape request.url.
        if host_header and _HOST.fullmatch(host_header):
            if host_header.startswith("["):
                host, _, port = host_header[1:].partition("]")
                port = port[1:]
            else:
                host, _, port = host_header.partition(":")
            if not port or int(port) <= 65535:
                return host, int(port) if port else None
        server = self.scope.get("server")
        if server:
            return str(server[0]), server[1]
        return "localhost", None

    def _build_url(self, path: str, query: str = "") -> URL:
        scheme = self.scheme
        host, port = self._host()
        if port is not None and port == _DEFAULT_PORTS.get(scheme):
            port = None
        if ":" in host:  # an IPv6 literal: encoded=True wants it bracketed
            host = f"[{host}]"
        try:
            return URL.build(
                scheme=scheme, host=host, port=port, path=path, query_string=query, encoded=True
            )
        except ValueError:  # a query yarl refuses: keep the URL, drop the query
            return URL.build(scheme=scheme, host=host, port=port, path=path, encoded=True)

    def _raw_path(self) -> str:
        raw = self.scope.get("raw_path")
        text: str
        if raw:
            text = raw.decode("latin-1").partition("?")[0]
        else:
            text = quote(str(self.scope.get("path", "/")), safe="/:@!$&'()*+,;=-._~%")
        # A path that is not origin-form ("*", absolute-form) must not become the URL's host.
        return text if text.startswith("/") else "/" + text.lstrip("/")

    def url_for(self, name: str, /, **params: Any) -> URL:
        """The absolute URL of the route ``name``, resolved from the outermost App."""
        root: tuple[App, str] | None = self.scope.get(ROOT_KEY)
        app, root_path = root if root is not None else (self.app, self.scope.get("root_path", ""))
        return self._build_url(quote(root_path) + app.url_path_for(name, **params))

    def supports(self, extension: str) -> bool:
        """Tell whether the server advertised ``extension`` in ``scope["extensions"]``."""
        return _extensions.supports(self.scope, extension)

    # Set by middleware (sessions, authentication), under Starlette's scope keys.

    @property
    def session(self) -> dict[str, Any]:
        """The session ``SessionMiddleware`` loaded: a dict, saved when it changes."""
        try:
            return self.scope["session"]  # type: ignore[no-any-return]
        except KeyError:
            raise RuntimeError(
                "no session: it needs SessionMiddleware, "
                "app.add_middleware(SessionMiddleware, secret_key=...)"
            ) from None

    @property
    def user(self) -> Any:
        """The user ``AuthenticationMiddleware``'s backend found, or ``UnauthenticatedUser``."""
        try:
            return self.scope["user"]
        except KeyError:
            raise RuntimeError(
                "no user: it needs AuthenticationMiddleware, "
                "app.add_middleware(AuthenticationMiddleware, backend=...)"
            ) from None

    @property
    def auth(self) -> Any:
        """The ``AuthCredentials`` ``AuthenticationMiddleware``'s backend granted."""
        try:
            return self.scope["auth"]
        except KeyError:
            raise RuntimeError(
                "no auth: it needs AuthenticationMiddleware, "
                "app.add_middleware(AuthenticationMiddleware, backend=...)"
            ) from None


async def _empty_receive() -> Message:
    raise RuntimeError("this Request was built without a receive channel")


async def _no_send(message: Message) -> None:
    raise RuntimeError("this Request was built without a send channel")


class Request(HTTPConnection[StateT]):
    """An HTTP request: the scope's views, the body and form, and extension sends.

    The body's state belongs to the request's ``Exchange``: the dispatcher hands its
    own to the handler's Request; a Request built from ``(scope, receive, send)`` (in
    middleware) makes one of its own.
    """

    _form: FormData | None = None

    def __init__(
        self, scope: Scope, receive: Receive = _empty_receive, send: Send | None = _no_send
    ) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Request needs an http scope, not {scope['type']!r}")
        self.scope = scope
        self.exchange = Exchange(
            scope, receive, _no_send if send is None else send, limits_for(scope)
        )

    @classmethod
    def for_exchange(cls, scope: Scope, exchange: Exchange) -> Request[Any]:
        """The Request the dispatcher hands a handler: ``scope`` (a mount's, maybe) over
        the body and response of the request's ``exchange``."""
        # Not through __init__ with an exchange keyword: a keyword argument to a class
        # call costs a dict, on the line every request passes.
        request: Request[Any] = cls.__new__(cls)
        request.scope = scope
        request.exchange = exchange
        return request

    @property
    def method(self) -> str:
        """The request method, upper-case."""
        return self.scope["method"]  # type: ignore[no-any-return]

    @property
    def receive(self) -> Receive:
        """The ASGI receive channel (reading the body here is seen like any other read)."""
        return self.exchange.receive

    async def stream(self) -> AsyncIterator[bytes]:
        """Yield the body as it arrives (at most ``max_body_size`` bytes, else 413)."""
        body = self.scope.get(BODY_KEY)
        if body is not None:
            if body:
                yield body
            return
        async for chunk in self.exchange.stream_body():
            yield chunk

    async def body(self) -> bytes:
        """The whole body (cached in the scope: later calls return the same bytes)."""
        body: bytes | None = self.scope.get(BODY_KEY)
        if body is None:
            body = self.scope[BODY_KEY] = await self.exchange.read_body()
        return body

    async def text(self) -> str:
        """The body decoded (by the Content-Type charset, UTF-8 by default)."""
        body = await self.body()
        return decode_text(body, _charset(self.exchange.content_headers()[0]))

    async def json(self) -> Any:
        """The body parsed as JSON (``HTTPException(400)`` when it is not)."""
        body = await self.body()
        try:
            return _json.loads(body)
        except (ValueError, RecursionError, UnicodeDecodeError):
            raise HTTPException(400, "invalid JSON body") from None

    async def form(
        self,
        *,
        max_files: int | None = None,
        max_fields: int | None = None,
        max_part_size: int | None = None,
    ) -> FormData:
        """The body parsed as a form (urlencoded or multipart), within the route's limits
        (the App's unless the route sets its own); ``max_files``, ``max_fields`` and
        ``max_part_size`` override those for this call (Starlette's names).

        The form is parsed once: later calls return it. Uploaded files are closed when
        the request ends.
        """
        form = self._form
        if form is None:
            form = self.scope.get(FORM_KEY)  # another Request over this scope parsed it
            if form is None:
                limits = self.exchange.limits
                if max_files is not None or max_fields is not None or max_part_size is not None:
                    given = {
                        "max_form_files": max_files,
                        "max_form_fields": max_fields,
                        "max_part_size": max_part_size,
                    }
                    limits = overridden(
                        limits, tuple((name, n) for name, n in given.items() if n is not None)
                    )
                content_type, declared = self.exchange.content_headers()
                # A small body is read whole (and cached for body()), and parsed in one step.
                body: bytes | None = self.scope.get(BODY_KEY)
                if body is None and declared is not None and declared <= _SMALL_FORM:
                    body = self.scope[BODY_KEY] = await self.exchange.read_body()
                if body is None:
                    form = await parse_form(content_type, self.stream(), limits)
                elif content_type == URLENCODED:  # what browsers send needs no coroutine
                    form = parse_urlencoded(body, limits)
                else:
                    form = await parse_form(content_type, body, limits)
                self.scope[FORM_KEY] = form
            if form.has_uploads:
                self.exchange.close_at_end(form)
            self._form = form
        return form

    async def is_disconnected(self) -> bool:
        """Tell, without waiting, whether the client has gone away."""
        return await self.exchange.is_disconnected()

    async def push(self, path: str, headers: HeadersArg | None = None) -> bool:
        """Ask the server to push ``path`` (HTTP/2); False, doing nothing, if unsupported."""
        if any(c in path for c in "\r\n\0") or not path.startswith("/"):
            raise ValueError(f"a push path must start with '/' and hold no CR, LF or NUL: {path!r}")
        raw = encode_headers(headers)
        if not self.supports(_extensions.PUSH):
            return False
        await self.exchange.send({"type": "http.response.push", "path": path, "headers": raw})
        return True

    async def send_early_hints(self, links: Iterable[str]) -> bool:
        """Send a 103 Early Hints with these ``Link`` values; False if unsupported."""
        if isinstance(links, str):
            raise TypeError("send_early_hints takes a list of Link values, not one string")
        raw = encode_headers(("link", link) for link in links)
        if not self.supports(_extensions.EARLY_HINT):
            return False
        if self.exchange.started:
            raise RuntimeError("early hints must be sent before the response starts")
        if raw:
            await self.exchange.send(
                {"type": "http.response.early_hint", "links": [v for _, v in raw]}
            )
        return True

    def accepts_trailers(self) -> bool:
        """Tell whether trailers can be sent: advertised and asked for (``TE: trailers``)."""
        return _extensions.wants_trailers(self.scope)


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None
