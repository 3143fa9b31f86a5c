"""``TestClient``: drive an ASGI app in-process, on asyncio or trio, like a server would.

It speaks the ASGI version real servers speak (2.3, as uvicorn does) and hands messages
over as they do, so tests run the code paths production runs; it advertises the server
extensions a test asks for (by default push, WebSocket denial responses, early hints and
trailers) and records what the app sent through them. An error that propagates out of
the app is raised in the test. Everything it opens is closed when ``async with`` exits.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import math
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from multidict import CIMultiDict, CIMultiDictProxy

from microasgi._types import ASGIApp, Message, Scope

__all__ = [
    "ServerChannel",
    "TestClient",
    "TestResponse",
    "WebSocketDenied",
    "WebSocketTestSession",
]

DEFAULT_EXTENSIONS: dict[str, dict[str, Any]] = {
    "http.response.push": {},
    "websocket.http.response": {},
    "http.response.early_hint": {},
    "http.response.trailers": {},
}

_MAX_REDIRECTS = 20
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding"})

FileSpec = bytes | str | tuple[str | None, bytes | str] | tuple[str | None, bytes | str, str]


def _on_trio() -> bool:
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


class ServerChannel:
    """Messages for the app, handed over the way servers hand them over.

    On trio, as trio's channels (hypercorn -k trio): ``receive`` checks for a cancel
    first, and yields to the scheduler even when a message is waiting. On asyncio, as
    uvicorn, hypercorn and daphne: a waiting message is returned at once, and ``receive``
    suspends only when there is none. ``repeat`` is answered to every receive once the
    messages are used up and the channel is closed (a server repeats http.disconnect).
    """

    def __init__(self, repeat: Message | None = None, capacity: float = math.inf) -> None:
        self._in: MemoryObjectSendStream[Message]
        self._out: MemoryObjectReceiveStream[Message]
        self._in, self._out = anyio.create_memory_object_stream[Message](capacity)
        self._repeat = repeat
        self._trio: bool | None = None  # known once receive() runs in the event loop

    def put_nowait(self, message: Message) -> None:
        """Queue ``message`` for the app (dropped once the channel is closed)."""
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._in.send_nowait(message)

    async def put(self, message: Message) -> None:
        """Queue ``message``, waiting for room (dropped once the channel is closed)."""
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            await self._in.send(message)

    def end(self) -> None:
        """No more messages: ``repeat`` from now on (or end of stream)."""
        self._in.close()

    async def receive(self) -> Message:
        """The next message, as a server's receive gives it."""
        if self._trio is None:
            self._trio = _on_trio()
        if self._trio:
            await anyio.lowlevel.checkpoint_if_cancelled()
        try:
            message = self._out.receive_nowait()
        except anyio.WouldBlock:
            try:
                return await self._out.receive()
            except anyio.EndOfStream:
                return self._repeated()
        except anyio.EndOfStream:
            message = self._repeated()
        if self._trio:
            await anyio.lowlevel.cancel_shielded_checkpoint()
        return message

    def _repeated(self) -> Message:
        if self._repeat is None:
            raise anyio.EndOfStream
        return dict(self._repeat)

    def close(self) -> None:
        """Close both ends."""
        self._in.close()
        self._out.close()


class TestResponse:
    """What the app answered: status, headers, body, and what went through extensions."""

    __test__ = False  # not a pytest test class

    def __init__(self, status_code: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self.status_code = status_code
        raw: CIMultiDict[str] = CIMultiDict()
        for name, value in headers:
            raw.add(name.decode("latin-1"), value.decode("latin-1"))
        self.headers = CIMultiDictProxy(raw)
        self.content = b""
        self.pushes: list[tuple[str, list[tuple[str, str]]]] = []
        self.early_hints: list[str] = []
        self.trailers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.content)

    def __repr__(self) -> str:
        return f"<TestResponse [{self.status_code}]>"


class WebSocketDenied(Exception):
    """The app refused the WebSocket handshake; ``.response`` is its HTTP answer."""

    def __init__(self, response: TestResponse) -> None:
        super().__init__(f"WebSocket denied with status {response.status_code}")
        self.response = response


class _Cookie:
    __slots__ = ("expires", "name", "path", "value")

    def __init__(self, name: str, value: str, path: str, expires: float | None) -> None:
        self.name, self.value, self.path, self.expires = name, value, path, expires


def _path_matches(cookie_path: str, request_path: str) -> bool:
    if request_path == cookie_path:
        return True
    prefix = cookie_path if cookie_path.endswith("/") else cookie_path + "/"
    return request_path.startswith(prefix)


def _quote_param(value: str) -> str:
    """Escape a multipart parameter the way browsers and httpx do."""
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _encode_multipart(data: Mapping[str, Any], files: Mapping[str, FileSpec]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in data.items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            parts.append(
                f"--{boundary}\r\nContent-Disposition: form-data; "
                f'name="{_quote_param(name)}"\r\n\r\n'.encode()
                + str(item).encode()
                + b"\r\n"
            )
    for name, spec in files.items():
        filename: str | None = name
        content_type = "application/octet-stream"
        if isinstance(spec, tuple):
            filename, content = spec[0], spec[1]
            if len(spec) == 3:
                content_type = spec[2]
        else:
            content = spec
        body = content.encode() if isinstance(content, str) else content
        disposition = f'form-data; name="{_quote_param(name)}"'
        if filename is not None:
            disposition += f'; filename="{_quote_param(filename)}"'
        parts.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Type: {content_type}\r\n\r\n".encode()
            + body
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class TestClient:
    """An in-process client: ``async with TestClient(app) as client: await client.get("/")``."""

    __test__ = False

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        *,
        raise_server_exceptions: bool = True,
        follow_redirects: bool = False,
        spec_version: str = "2.3",
        extensions: Mapping[str, Any] | None = None,
        root_path: str = "",
        client: tuple[str, int] = ("testclient", 50000),
        headers: Mapping[str, str] | None = None,
        http_version: str = "1.1",
    ) -> None:
        self.app = app
        url = urlsplit(base_url)
        self.scheme = url.scheme or "http"
        self.host = url.hostname or "testserver"
        self.port = url.port or (443 if self.scheme == "https" else 80)
        self.netloc = url.netloc or "testserver"
        self.raise_server_exceptions = raise_server_exceptions
        self.follow_redirects = follow_redirects
        self.spec_version = spec_version
        self.extensions = dict(DEFAULT_EXTENSIONS if extensions is None else extensions)
        self.root_path = root_path
        self.client = client
        self.default_headers = dict(headers or {})
        self.http_version = http_version
        self.lifespan_state: dict[str, Any] = {}
        self._cookies: dict[tuple[str, str], _Cookie] = {}
        self._exit = AsyncExitStack()

    # lifespan

    async def __aenter__(self) -> TestClient:
        """Run the app's lifespan startup (raises if it fails)."""
        to_app = ServerChannel()
        from_app_in: MemoryObjectSendStream[Message]
        from_app: MemoryObjectReceiveStream[Message]
        from_app_in, from_app = anyio.create_memory_object_stream[Message](math.inf)
        # Closed last, once the app's task has ended.
        self._exit.callback(to_app.close)
        self._exit.callback(from_app.close)
        group = await self._exit.enter_async_context(anyio.create_task_group())
        scope: Scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": self.spec_version},
            "state": self.lifespan_state,
        }
        errors: list[Exception] = []

        async def run() -> None:
            with from_app_in:
                try:
                    await self.app(scope, to_app.receive, from_app_in.send)
                except Exception as exc:  # before startup: no lifespan support, allowed
                    errors.append(exc)

        group.start_soon(run)
        to_app.put_nowait({"type": "lifespan.startup"})
        try:
            reply: Message | None = await from_app.receive()
        except anyio.EndOfStream:
            reply = None  # no lifespan support
        if reply is not None and reply["type"] == "lifespan.startup.failed":
            with anyio.move_on_after(10):  # the app's call ends once it has reported
                async for _ in from_app:
                    pass
            group.cancel_scope.cancel()
            await self._exit.aclose()
            raise self._lifespan_error("startup", reply, errors)

        async def shutdown() -> None:
            if reply is None:
                return
            to_app.put_nowait({"type": "lifespan.shutdown"})
            try:
                answer = await from_app.receive()
            except anyio.EndOfStream:
                raise RuntimeError("the app's lifespan ended without shutting down") from (
                    errors[0] if errors else None
                )
            if answer["type"] == "lifespan.shutdown.failed":
                with anyio.fail_after(10):  # the app's call ends once it has reported
                    async for _ in from_app:
                        pass
                raise self._lifespan_error("shutdown", answer, errors)

        self._exit.push_async_callback(shutdown)
        return self

    def _lifespan_error(self, phase: str, reply: Message, errors: list[Exception]) -> Exception:
        """What a failed startup or shutdown raises: the app's own error, if it raised one."""
        failure = RuntimeError(f"lifespan {phase} failed: {reply.get('message', '')}")
        if errors and self.raise_server_exceptions:
            return errors[0]
        failure.__cause__ = errors[0] if errors else None
        return failure

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Run the app's lifespan shutdown; close everything the client opened."""
        await self._exit.aclose()

    # cookies

    def _cookie_header(self, path: str) -> str | None:
        now = time.time()
        for key, cookie in list(self._cookies.items()):
            if cookie.expires is not None and cookie.expires <= now:
                del self._cookies[key]
        pairs = [
            f"{c.name}={c.value}" for c in self._cookies.values() if _path_matches(c.path, path)
        ]
        return "; ".join(pairs) or None

    def _store_cookies(self, response: TestResponse, request_path: str) -> None:
        for header in response.headers.getall("set-cookie", ()):
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(header)
            except Exception:  # a cookie a browser would ignore too
                continue
            for name, morsel in jar.items():
                path = morsel["path"] or request_path.rsplit("/", 1)[0] or "/"
                expires: float | None = None
                if morsel["max-age"]:
                    try:
                        expires = time.time() + int(morsel["max-age"])
                    except ValueError:
                        expires = None
                elif morsel["expires"]:
                    try:
                        expires = parsedate_to_datetime(morsel["expires"]).timestamp()
                    except (TypeError, ValueError):
                        expires = -math.inf
                cookie = _Cookie(name, morsel.value, path, expires)
                if expires is not None and expires <= time.time():
                    self._cookies.pop((name, path), None)
                else:
                    self._cookies[(name, path)] = cookie

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies the client holds now, by name."""
        self._cookie_header("/")  # drop expired ones
        return {c.name: c.value for c in self._cookies.values()}

    # requests

    def _scope(
        self,
        kind: str,
        method: str,
        path: str,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
        cookies: Mapping[str, str] | None,
    ) -> Scope:
        if path.startswith(("http://", "https://", "ws://", "wss://")):
            # An absolute URL, such as a redirect's Location: keep its path and query.
            absolute = urlsplit(path)
            path = (absolute.path or "/") + (f"?{absolute.query}" if absolute.query else "")
        path, _, query = path.partition("?")
        if params:
            extra = urlencode(list(params.items()) if isinstance(params, Mapping) else list(params))
            query = f"{query}&{extra}" if query else extra
        raw_headers: list[tuple[bytes, bytes]] = [(b"host", self.netloc.encode())]
        merged = dict(self.default_headers)
        items = headers.items() if isinstance(headers, Mapping) else (headers or ())
        pairs = list(merged.items()) + list(items)
        for name, value in pairs:
            raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        cookie = self._cookie_header(path)
        if cookies:
            sent = "; ".join(f"{k}={v}" for k, v in cookies.items())
            cookie = f"{cookie}; {sent}" if cookie else sent
        if cookie:
            raw_headers.append((b"cookie", cookie.encode("latin-1")))
        full_path = self.root_path + path
        scope: Scope = {
            "type": kind,
            "asgi": {"version": "3.0", "spec_version": self.spec_version},
            "http_version": self.http_version,
            "scheme": ("wss" if self.scheme == "https" else "ws")
            if kind == "websocket"
            else self.scheme,
            "path": unquote(full_path),
            # As a client sends it: percent-encoded, escapes already there kept.
            "raw_path": quote(full_path, safe="/%:@!$&'()*+,;=-._~").encode("ascii"),
            "root_path": self.root_path,
            "query_string": query.encode("latin-1"),
            "headers": raw_headers,
            "client": self.client,
            "server": (self.host, self.port),
            "extensions": {
                k: dict(v) if isinstance(v, dict) else v for k, v in self.extensions.items()
            },
            "state": dict(self.lifespan_state),
        }
        if kind == "http":
            scope["method"] = method.upper()
        return scope

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        cookies: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        data: Mapping[str, Any] | bytes | str | None = None,
        files: Mapping[str, FileSpec] | None = None,
        json: Any = None,
        follow_redirects: bool | None = None,
    ) -> TestResponse:
        """Send one request and return the complete response (following redirects if asked)."""
        extra: list[tuple[str, str]] = []
        body = b""
        if json is not None:
            body = jsonlib.dumps(json).encode()
            extra.append(("content-type", "application/json"))
        elif files:
            body, content_type = _encode_multipart(data if isinstance(data, Mapping) else {}, files)
            extra.append(("content-type", content_type))
        elif isinstance(data, Mapping):
            body = urlencode(list(data.items()), doseq=True).encode()
            extra.append(("content-type", "application/x-www-form-urlencoded"))
        elif data is not None:
            body = data.encode() if isinstance(data, str) else data
        elif content is not None:
            body = content.encode() if isinstance(content, str) else content
        given = list(headers.items() if isinstance(headers, Mapping) else (headers or ()))
        follow = self.follow_redirects if follow_redirects is None else follow_redirects
        for _ in range(_MAX_REDIRECTS + 1):
            names = {name.lower() for name, _ in given}
            framing = [(n, v) for n, v in extra if n not in names]
            if (
                body or method.upper() in ("POST", "PUT", "PATCH")
            ) and "content-length" not in names:
                framing.append(("content-length", str(len(body))))
            scope = self._scope("http", method, path, params, given + framing, cookies)
            response = await self._run_http(scope, body)
            self._store_cookies(response, scope["path"])
            location = response.headers.get("location")
            if not follow or response.status_code not in _REDIRECTS or location is None:
                return response
            # As browsers and httpx do: 303 (and 301/302 after a POST) turn into a GET.
            if response.status_code == 303 or (
                response.status_code in (301, 302) and method.upper() == "POST"
            ):
                method, body, extra = ("HEAD" if method.upper() == "HEAD" else "GET"), b"", []
                given = [(n, v) for n, v in given if n.lower() not in _BODY_HEADERS]
            target = urlsplit(urljoin(self._url(scope), location))
            path = target.path
            if self.root_path and (path + "/").startswith(self.root_path + "/"):
                path = path[len(self.root_path) :] or "/"
            path, params = path + (f"?{target.query}" if target.query else ""), None
        raise RuntimeError(f"more than {_MAX_REDIRECTS} redirects")

    def _url(self, scope: Scope) -> str:
        query = scope["query_string"].decode("latin-1")
        return f"{self.scheme}://{self.netloc}{scope['raw_path'].decode('latin-1')}" + (
            f"?{query}" if query else ""
        )

    async def _run_http(self, scope: Scope, body: bytes) -> TestResponse:
        response: TestResponse | None = None
        pushes: list[tuple[str, list[tuple[str, str]]]] = []
        hints: list[str] = []
        chunks: list[bytes] = []
        trailers: list[tuple[bytes, bytes]] = []
        state = {"wants_trailers": False, "body_done": False}
        incoming = ServerChannel(repeat={"type": "http.disconnect"})
        incoming.put_nowait({"type": "http.request", "body": body, "more_body": False})

        def complete() -> None:  # the client has its response, and goes
            incoming.end()

        async def send(message: Message) -> None:
            nonlocal response
            kind = message["type"]
            if kind == "http.response.start":
                if response is not None:
                    raise RuntimeError("http.response.start sent twice")
                response = TestResponse(message["status"], message.get("headers", []))
                state["wants_trailers"] = bool(message.get("trailers", False))
            elif kind == "http.response.body":
                if response is None:
                    raise RuntimeError("http.response.body sent before http.response.start")
                if state["body_done"]:
                    raise RuntimeError("http.response.body sent after the body was complete")
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    state["body_done"] = True
                    if not state["wants_trailers"]:
                        complete()
            elif kind == "http.response.pathsend":
                if response is None or "http.response.pathsend" not in scope["extensions"]:
                    raise RuntimeError("pathsend is not advertised or came before the start")
                chunks.append(await anyio.Path(message["path"]).read_bytes())
                state["body_done"] = True
                complete()
            elif kind == "http.response.push":
                if "http.response.push" not in scope["extensions"]:
                    raise RuntimeError("http.response.push sent but not advertised")
                if state["body_done"]:
                    raise RuntimeError("http.response.push sent after the body was complete")
                pushes.append(
                    (
                        message["path"],
                        [
                            (n.decode("latin-1").lower(), v.decode("latin-1"))
                            for n, v in message.get("headers", [])
                        ],
                    )
                )
            elif kind == "http.response.early_hint":
                if "http.response.early_hint" not in scope["extensions"]:
                    raise RuntimeError("http.response.early_hint sent but not advertised")
                if response is not None:
                    raise RuntimeError("early hints must come before http.response.start")
                hints.extend(v.decode("latin-1") for v in message.get("links", []))
            elif kind == "http.response.trailers":
                if not state["wants_trailers"] or not state["body_done"]:
                    raise RuntimeError("trailers not announced in start, or sent before the body")
                trailers.extend(message.get("headers", []))
                if not message.get("more_trailers", False):
                    complete()
            else:
                raise RuntimeError(f"unexpected message {kind!r}")

        try:
            await self.app(scope, incoming.receive, send)
        except Exception:
            if self.raise_server_exceptions:
                raise
            if response is None:  # what a server answers for an app that failed silently
                response = TestResponse(500, [(b"content-type", b"text/plain; charset=utf-8")])
                chunks[:] = [b"Internal Server Error"]
            state["body_done"] = True  # a truncated body is what the client got
        finally:
            incoming.close()
        if response is None:
            raise RuntimeError("the app returned without sending a response")
        if not state["body_done"]:
            raise RuntimeError("the app returned before completing the response body")
        response.content = b"".join(chunks)
        response.pushes = pushes
        response.early_hints = hints
        collected: CIMultiDict[str] = CIMultiDict()
        for name, value in trailers:
            collected.add(name.decode("latin-1"), value.decode("latin-1"))
        response.trailers = CIMultiDictProxy(collected)
        return response

    async def get(self, path: str, **kwargs: Any) -> TestResponse:
        """Send a GET request."""
        return await self.request("GET", path, **kwargs)

    async def head(self, path: str, **kwargs: Any) -> TestResponse:
        """Send a HEAD request."""
        return await self.request("HEAD", path, **kwargs)

    async def options(self, path: str, **kwargs: Any) -> TestResponse:
        """Send an OPTIONS request."""
        return await self.request("OPTIONS", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> TestResponse:
        """Send a POST request."""
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> TestResponse:
        """Send a PUT request."""
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> TestResponse:
        """Send a PATCH request."""
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> TestResponse:
        """Send a DELETE request."""
        return await self.request("DELETE", path, **kwargs)

    # websockets

    @asynccontextmanager
    async def websocket_connect(
        self,
        path: str,
        *,
        subprotocols: Iterable[str] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
    ) -> AsyncIterator[WebSocketTestSession]:
        """Open a WebSocket to ``path``; raises WebSocketDenied if the app refuses it."""
        scope = self._scope("websocket", "GET", path, params, headers, cookies)
        scope["subprotocols"] = list(subprotocols or ())
        session = WebSocketTestSession(self.app, scope)
        self._exit.callback(session.close_channels)  # also if the test leaves early
        # Errors are raised only once the task group is left: raised inside it, they would
        # come out wrapped in an ExceptionGroup and `pytest.raises(...)` would miss them.
        error: Exception | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(session._run)
            try:
                await session._handshake()
            except Exception as exc:  # denied, or the app failed
                error = exc
            else:
                try:
                    yield session
                except Exception as exc:
                    error = exc
            app_error = await session._finish()
        session.close_channels()
        if app_error is not None and self.raise_server_exceptions:
            if error is not None and error is not app_error:
                app_error.__context__ = error
            raise app_error
        if error is not None:
            raise error


class WebSocketTestSession:
    """The client side of an in-process WebSocket."""

    __test__ = False

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self.app = app
        self.scope = scope
        self.accepted_subprotocol: str | None = None
        self.accept_headers: list[tuple[str, str]] = []
        self.close_code: int | None = None
        self.close_reason: str = ""
        self._to_app = ServerChannel(capacity=100)
        self._from_app_send: MemoryObjectSendStream[Message]
        self._from_app_receive: MemoryObjectReceiveStream[Message]
        self._from_app_send, self._from_app_receive = anyio.create_memory_object_stream[Message](
            100
        )
        self._app_error: Exception | None = None
        self._closed_by_client = False

    async def _run(self) -> None:
        try:
            await self.app(self.scope, self._to_app.receive, self._from_app_send.send)
        except Exception as exc:  # raised again in the test's own task
            self._app_error = exc
        finally:
            self._from_app_send.close()
            # Nobody reads what the client sends any more: sends are dropped, as on a network.
            self._to_app.close()

    def close_channels(self) -> None:
        """Close both directions (idempotent)."""
        self._to_app.close()
        self._from_app_send.close()
        self._from_app_receive.close()

    async def _handshake(self) -> None:
        await self.send({"type": "websocket.connect"})
        message = await self._next_message()
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted_subprotocol = message.get("subprotocol")
            self.accept_headers = [
                (n.decode("latin-1"), v.decode("latin-1")) for n, v in message.get("headers", [])
            ]
            return
        if kind == "websocket.close":
            self.close_code = int(message.get("code", 1000))
            raise WebSocketDenied(TestResponse(403, []))
        if kind == "websocket.http.response.start":
            if "websocket.http.response" not in self.scope["extensions"]:
                raise RuntimeError("websocket.http.response sent but not advertised")
            response = TestResponse(message["status"], message.get("headers", []))
            body: list[bytes] = []
            while True:
                part = await self._next_message()
                if part["type"] != "websocket.http.response.body":
                    raise RuntimeError(f"unexpected {part['type']!r} in a denial response")
                body.append(part.get("body", b""))
                if not part.get("more_body", False):
                    break
            response.content = b"".join(body)
            raise WebSocketDenied(response)
        raise RuntimeError(f"unexpected first message {kind!r}")

    async def _next_message(self) -> Message:
        try:
            return await self._from_app_receive.receive()
        except anyio.EndOfStream:
            if self._app_error is not None:
                raise self._app_error from None
            raise RuntimeError("the app ended the WebSocket without a message") from None

    async def _finish(self) -> Exception | None:
        """Tell the app the client left, wait (bounded) for it to end; return its error."""
        if not self._closed_by_client:
            await self.send({"type": "websocket.disconnect", "code": 1000})
        with anyio.fail_after(10):  # a handler that never ends is a bug in the test
            async for _ in self._from_app_receive:
                pass
        return self._app_error

    async def send(self, message: Message) -> None:
        """Send a raw ASGI message to the app (dropped once the app has ended)."""
        await self._to_app.put(message)

    async def send_text(self, data: str) -> None:
        """Send a text message."""
        await self.send({"type": "websocket.receive", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        await self.send({"type": "websocket.receive", "bytes": data})

    async def send_json(self, data: Any) -> None:
        """Send ``data`` as JSON in a text message."""
        await self.send_text(jsonlib.dumps(data))

    async def receive(self) -> Message:
        """The next raw message from the app (a close raises WebSocketDisconnect)."""
        from microasgi.websockets import WebSocketDisconnect

        if self.close_code is not None:
            raise WebSocketDisconnect(self.close_code, self.close_reason)
        message = await self._next_message()
        if message["type"] == "websocket.close":
            self.close_code = int(message.get("code", 1000))
            self.close_reason = message.get("reason", "") or ""
            raise WebSocketDisconnect(self.close_code, self.close_reason)
        return message

    async def receive_text(self) -> str:
        """The next text message."""
        message = await self.receive()
        if message.get("text") is None:
            raise TypeError("expected a text message, got a binary one")
        return message["text"]  # type: ignore[no-any-return]

    async def receive_bytes(self) -> bytes:
        """The next binary message."""
        message = await self.receive()
        if message.get("bytes") is None:
            raise TypeError("expected a binary message, got a text one")
        return message["bytes"]  # type: ignore[no-any-return]

    async def receive_json(self) -> Any:
        """The next message parsed as JSON."""
        message = await self.receive()
        return jsonlib.loads(message.get("text") or message.get("bytes") or b"")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close from the client side."""
        if not self._closed_by_client:
            self._closed_by_client = True
            if self.close_code is None:  # later receives raise, as a real client's do
                self.close_code, self.close_reason = code, reason
            await self.send({"type": "websocket.disconnect", "code": code, "reason": reason})
