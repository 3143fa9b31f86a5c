"""The scenarios: one prebuilt request each, the answer every framework must give, and its check.

Every app, raw or framework, must give exactly the answer described here; the runner checks it
before timing, so a framework cannot win by doing less.
"""

from __future__ import annotations

import base64
import hmac
import json
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.harness import ASGI_INFO, Answer, ASGIApp, Message, Request, Scope

HELLO = b"Hello, World!"
JSON_DATA = {"message": "Hello, World!"}
USER_ID = 12345
N_EXTRA_ROUTES = 1000
QUERY = [(f"p{i}", f"value{i}") for i in range(10)]
FORM = [(f"field{i}", f"value {i}&more") for i in range(10)]
UPLOAD_SIZE = 1 << 20
WS_ECHOES = 100
STREAM_CHUNKS = tuple(bytes([65 + i]) * 1024 for i in range(16))
# (id, data) of the 16 server-sent events: a small JSON document each, as feeds send.
SSE_EVENTS = tuple((str(i), f'{{"n":{i},"message":"Hello, World!"}}') for i in range(16))
FILE_SIZE = 1 << 20
BOUNDARY = "----microasgibenchboundary7MA4YWxkTrZu0gW"
FILE_URL = "/files/file.bin"  # a static route in falcon: same URL for everyone
CHUNK = 64 * 1024  # what a server typically hands over per http.request message
SESSION_SECRET = "bench-session-secret"
SESSION_USER = "ada"
STARLETTE_SESSION_COOKIE = "starlette_session"  # Starlette reads its own cookie
BEARER_TOKEN = "bench-token"
HOOK_HEADER = (b"x-hooked", b"after")  # what the after hook (or middleware) adds

_BASE_HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"bench/1.0"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b"en-GB,en;q=0.9"),
]


async def stream_chunks() -> AsyncIterator[bytes]:
    """The user's async generator behind every streaming response."""
    for chunk in STREAM_CHUNKS:
        yield chunk


T = TypeVar("T")


async def sse_events(make: Callable[[str, str], T]) -> AsyncIterator[T]:
    """The user's async generator behind every event stream: each event made by
    ``make(id, data)`` (the framework's event type; raw ASGI frames it by hand)."""
    for event_id, data in SSE_EVENTS:
        yield make(event_id, data)


def parse_event_stream(body: bytes) -> list[tuple[str, str]]:
    """``(id, data)`` of each event a browser would dispatch from ``body`` (lines end with
    CRLF, CR or LF; comments and events without data dispatch nothing)."""
    events: list[tuple[str, str]] = []
    event_id = ""
    data: list[str] = []
    text = body.decode().replace("\r\n", "\n").replace("\r", "\n")
    for line in text.split("\n"):
        if not line:
            if data:
                events.append((event_id, "\n".join(data)))
            data = []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "id":
                event_id = value
    return events


async def echo(ws: Any) -> None:
    """The WebSocket handler, the same text for every framework: accept, echo 100, close."""
    await ws.accept()
    for _ in range(WS_ECHOES):
        await ws.send_text(await ws.receive_text())
    await ws.close()


def extra_route_paths() -> list[str]:
    """The 1,000 dynamic routes registered before the measured one (``{x}`` is an int)."""
    return [f"/r{i}/{{x}}" for i in range(N_EXTRA_ROUTES)]


def expected_query_answer() -> bytes:
    """The body every query app answers: the 10 values, comma-joined."""
    return ",".join(v for _, v in QUERY).encode()


def expected_form_answer() -> bytes:
    """The body every form app answers: the 10 decoded values, comma-joined."""
    return ",".join(v for _, v in FORM).encode()


def _http_scope(
    method: str, path: str, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> Scope:
    return {
        "type": "http",
        "asgi": ASGI_INFO,
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": _BASE_HEADERS + (headers or []),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def session_key(secret: str = SESSION_SECRET) -> bytes:
    """The HMAC key microasgi's SessionMiddleware derives from a secret (its documented format)."""
    return hmac.digest(secret.encode(), b"microasgi.sessions.SessionMiddleware", "sha256")


def b64(data: bytes) -> bytes:
    """Unpadded URL-safe base64, as session cookies carry it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def session_cookie() -> bytes:
    """A session cookie holding ``{"user": "ada"}``, signed as microasgi signs one."""
    payload = json.dumps({"user": SESSION_USER}, separators=(",", ":")).encode()
    signed = b64(payload) + b".%d" % int(time.time())
    return signed + b"." + b64(hmac.digest(session_key(), signed, "sha256"))


def starlette_session_cookie() -> bytes:
    """The same session as Starlette's SessionMiddleware signs it (with itsdangerous)."""
    try:
        import itsdangerous
    except ImportError:  # Starlette's sessions need it: its app reports the scenario missing
        return b""
    data = base64.b64encode(json.dumps({"user": SESSION_USER}).encode())
    return itsdangerous.TimestampSigner(SESSION_SECRET).sign(data)


def _session_request() -> Request:
    """GET /session with both frameworks' session cookies (each reads its own)."""
    cookie = b"theme=dark; session=%s; %s=%s" % (
        session_cookie(),
        STARLETTE_SESSION_COOKIE.encode(),
        starlette_session_cookie(),
    )
    return Request(
        _http_scope("GET", "/session", headers=[(b"cookie", cookie)]), _body_messages(b"")
    )


def _body_messages(body: bytes) -> tuple[Message, ...]:
    if not body:
        return ({"type": "http.request", "body": b"", "more_body": False},)
    parts = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
    return tuple(
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    )


def _post(path: str, body: bytes, content_type: str) -> Request:
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    return Request(_http_scope("POST", path, headers=headers), _body_messages(body))


def urlencoded_body() -> bytes:
    """The urlencoded form of FORM (spaces as '+', '&' escaped)."""
    from urllib.parse import urlencode

    return urlencode(FORM).encode()


def upload_content() -> bytes:
    """The 1 MiB file every multipart app receives (not all one byte, so a mix-up shows)."""
    return bytes(range(256)) * (UPLOAD_SIZE // 256)


def multipart_body() -> bytes:
    """A multipart/form-data body holding one 1 MiB file field named ``file``."""
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="upload.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + upload_content() + f"\r\n--{BOUNDARY}--\r\n".encode()


def _websocket_request() -> Request:
    scope: Scope = {
        "type": "websocket",
        "asgi": ASGI_INFO,
        "http_version": "1.1",
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [*_BASE_HEADERS, (b"upgrade", b"websocket"), (b"sec-websocket-version", b"13")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
    }
    incoming: list[Message] = [{"type": "websocket.connect"}]
    incoming += [{"type": "websocket.receive", "text": f"message {i}"} for i in range(WS_ECHOES)]
    return Request(scope, tuple(incoming))


@dataclass(frozen=True)
class Fixtures:
    """Files the scenarios need, made once per run."""

    directory: Path

    @property
    def file_path(self) -> Path:
        """The 1 MiB file served by the FileResponse scenario."""
        return self.directory / "file.bin"


def make_fixtures() -> tuple[Fixtures, tempfile.TemporaryDirectory[str]]:
    """Create the fixture files in a temporary directory (the caller cleans it up)."""
    tmp = tempfile.TemporaryDirectory(prefix="microasgi-bench-")
    fixtures = Fixtures(Path(tmp.name))
    fixtures.file_path.write_bytes(file_content())
    return fixtures, tmp


def file_content() -> bytes:
    """The content of the served file (deterministic, not one repeated byte)."""
    return bytes((i * 7) & 0xFF for i in range(256)) * (FILE_SIZE // 256)


Check = Callable[[Answer], str | None]
Builder = Callable[[Fixtures], ASGIApp]


def _header(answer: Answer, name: bytes) -> bytes | None:
    for key, value in answer.headers:
        if key == name:
            return value
    return None


# Enough distinct user paths that none comes back before thousands of others (BlackSheep
# caches its last 1,200 lookups): the path-param scenarios again, as real traffic asks.
USER_PATHS = tuple(f"/users/{USER_ID + i}" for i in range(50_000))


def _id_check(answer: Answer) -> str | None:
    """A user answer for any of ``USER_PATHS``: 200 and the id's digits."""
    if answer.status != 200:
        return f"status {answer.status}, body {answer.body[:200]!r}"
    if not (answer.body.isdigit() and USER_ID <= int(answer.body) < USER_ID + len(USER_PATHS)):
        return f"body {answer.body[:80]!r} is not one of the users' ids"
    return None


def _http_check(
    body: bytes | None = None,
    content_type: bytes | None = None,
    json_value: object | None = None,
    header: tuple[bytes, bytes] | None = None,
) -> Check:
    def check(answer: Answer) -> str | None:
        if header is not None and _header(answer, header[0]) != header[1]:
            return f"no {header[0]!r}: {header[1]!r} header"
        if answer.status != 200:
            return f"status {answer.status}, body {answer.body[:200]!r}"
        if json_value is not None:
            try:
                got = json.loads(answer.body)
            except ValueError:
                return f"body is not JSON: {answer.body[:200]!r}"
            if got != json_value:
                return f"JSON {got!r} != {json_value!r}"
        elif body is not None and answer.body != body:
            return f"body {answer.body[:80]!r}... ({len(answer.body)} bytes) != expected"
        if content_type is not None:
            got_type = _header(answer, b"content-type") or b""
            if not got_type.startswith(content_type):
                return f"content-type {got_type!r}, expected {content_type!r}..."
        length = _header(answer, b"content-length")
        if length is not None and int(length) != len(answer.body):
            return f"content-length {length!r} but {len(answer.body)} body bytes"
        return None

    return check


def _sse_check(answer: Answer) -> str | None:
    if answer.status != 200:
        return f"status {answer.status}, body {answer.body[:200]!r}"
    content_type = _header(answer, b"content-type") or b""
    if not content_type.startswith(b"text/event-stream"):
        return f"content-type {content_type!r}, expected text/event-stream"
    events = parse_event_stream(answer.body)
    if events != list(SSE_EVENTS):
        return f"events {events[:3]!r}... ({len(events)}) are not the 16 sent, in order"
    return None


def _ws_check(answer: Answer) -> str | None:
    if not answer.accepted:
        return "not accepted"
    expected = [f"message {i}" for i in range(WS_ECHOES)]
    if answer.ws_texts != expected:
        return f"echoed {len(answer.ws_texts)} messages, not the {WS_ECHOES} sent, in order"
    if answer.ws_close_code != 1000:
        return f"closed with {answer.ws_close_code}, expected 1000"
    return None


@dataclass(frozen=True)
class Scenario:
    """One benchmark scenario."""

    id: str
    title: str
    request: Request
    check: Check
    unit: str = "req"
    app: str = ""  # the id of the scenario whose apps serve this one, if not its own

    @property
    def app_id(self) -> str:
        """The key of this scenario's app in each framework's ``APPS``."""
        return self.app or self.id


def all_scenarios() -> list[Scenario]:
    """Every in-process scenario, in report order."""
    query = "&".join(f"{k}={v}" for k, v in QUERY).encode()
    user = f"/users/{USER_ID}"
    return [
        Scenario(
            "plaintext",
            "GET plaintext",
            Request(_http_scope("GET", "/plaintext"), _body_messages(b"")),
            _http_check(HELLO, b"text/plain"),
        ),
        Scenario(
            "json",
            "GET JSON",
            Request(_http_scope("GET", "/json"), _body_messages(b"")),
            _http_check(content_type=b"application/json", json_value=JSON_DATA),
        ),
        Scenario(
            "plaintext_object",
            "GET plaintext, a PlainTextResponse returned",
            Request(_http_scope("GET", "/plaintext"), _body_messages(b"")),
            _http_check(HELLO, b"text/plain"),
        ),
        Scenario(
            "json_object",
            "GET JSON, a JSONResponse returned",
            Request(_http_scope("GET", "/json"), _body_messages(b"")),
            _http_check(content_type=b"application/json", json_value=JSON_DATA),
        ),
        Scenario(
            "param_1",
            "path param, 1 route",
            Request(_http_scope("GET", user), _body_messages(b"")),
            _http_check(str(USER_ID).encode()),
        ),
        Scenario(
            "param_1000",
            "same, 1,000 routes before it",
            Request(_http_scope("GET", user), _body_messages(b"")),
            _http_check(str(USER_ID).encode()),
        ),
        Scenario(
            "param_1_ids",
            "path param, 1 route, a new id each request",
            Request(_http_scope("GET", user), _body_messages(b""), USER_PATHS),
            _id_check,
            app="param_1",
        ),
        Scenario(
            "param_1000_ids",
            "same, 1,000 routes before it",
            Request(_http_scope("GET", user), _body_messages(b""), USER_PATHS),
            _id_check,
            app="param_1000",
        ),
        Scenario(
            "query_10",
            "10 query params read",
            Request(_http_scope("GET", "/query", query), _body_messages(b"")),
            _http_check(expected_query_answer()),
        ),
        Scenario(
            "form_10",
            "urlencoded form, 10 fields",
            _post("/form", urlencoded_body(), "application/x-www-form-urlencoded"),
            _http_check(expected_form_answer()),
        ),
        Scenario(
            "multipart_1mib",
            "multipart, 1 MiB file",
            _post("/upload", multipart_body(), f"multipart/form-data; boundary={BOUNDARY}"),
            _http_check(str(UPLOAD_SIZE).encode()),
        ),
        Scenario(
            "websocket_100",
            "WebSocket: accept, 100 echoes, close",
            _websocket_request(),
            _ws_check,
            unit="session",
        ),
        Scenario(
            "streaming",
            "streaming response, 16 x 1 KiB",
            Request(_http_scope("GET", "/stream"), _body_messages(b"")),
            _http_check(b"".join(STREAM_CHUNKS)),
        ),
        Scenario(
            "sse",
            "server-sent events, 16 from an async generator",
            Request(_http_scope("GET", "/events"), _body_messages(b"")),
            _sse_check,
        ),
        Scenario(
            "file_1mib",
            "FileResponse, 1 MiB",
            Request(_http_scope("GET", FILE_URL), _body_messages(b"")),
            _http_check(file_content()),
        ),
        Scenario(
            "session_read",
            "signed session cookie read",
            _session_request(),
            _http_check(SESSION_USER.encode()),
        ),
        Scenario(
            "auth_requires",
            "bearer token, authentication + @requires",
            Request(
                _http_scope(
                    "GET", "/me", headers=[(b"authorization", b"Bearer " + BEARER_TOKEN.encode())]
                ),
                _body_messages(b""),
            ),
            _http_check(SESSION_USER.encode()),
        ),
        Scenario(
            "hooks",
            "a before and an after hook around plaintext",
            Request(_http_scope("GET", "/hooks"), _body_messages(b"")),
            # The body comes from the before hook (through request state), the header
            # from the after hook: neither can be skipped.
            _http_check(HELLO, b"text/plain", header=HOOK_HEADER),
        ),
    ]


def scenario_ids() -> list[str]:
    """The ids of every scenario, in report order."""
    return [s.id for s in all_scenarios()]
