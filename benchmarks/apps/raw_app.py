"""Raw ASGI callables doing each scenario's work by hand: the floor every framework is measured on.

Minimal but correct: right status, Content-Type and Content-Length, the body read in full, the
same user code (generators, parsing) a framework handler runs. No routing table beyond what the
path needs; files are read on the event loop (page-cache reads of 64 KiB are cheaper than a
thread hop, so this is the floor a non-blocking implementation approaches, not matches).
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import time
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from benchmarks import scenarios as sc
from benchmarks.apps._urlencoded import parse_urlencoded
from benchmarks.harness import ASGIApp, Receive, Scope, Send
from benchmarks.scenarios import Builder, Fixtures

try:
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - orjson is a bench dependency
    import json

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


TEXT = b"text/plain; charset=utf-8"
QUERY_NAMES = tuple(name for name, _ in sc.QUERY)
FORM_NAMES = tuple(name for name, _ in sc.FORM)


async def _respond(send: Send, body: bytes, content_type: bytes = TEXT, status: int = 200) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def plaintext(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer the plaintext greeting."""
    await _respond(send, sc.HELLO)


async def json_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer the JSON greeting, serialised per request."""
    await _respond(send, _dumps(sc.JSON_DATA), b"application/json")


async def user(scope: Scope, receive: Receive, send: Send) -> None:
    """Split ``/users/{id}``, convert the id, answer it."""
    head, _, tail = scope["path"][1:].partition("/")
    if head != "users" or not tail.isdigit():
        await _respond(send, b"Not Found", status=404)
        return
    await _respond(send, str(int(tail)).encode())


async def query(scope: Scope, receive: Receive, send: Send) -> None:
    """Parse the query string and read the 10 params by name."""
    params = parse_urlencoded(scope["query_string"].decode())
    await _respond(send, ",".join([params[name] for name in QUERY_NAMES]).encode())


async def form(scope: Scope, receive: Receive, send: Send) -> None:
    """Read and parse the urlencoded body, answer the 10 values."""
    body = await _read_body(receive)
    fields = parse_urlencoded(body.decode())
    await _respond(send, ",".join([fields[name] for name in FORM_NAMES]).encode())


async def upload(scope: Scope, receive: Receive, send: Send) -> None:
    """Stream the multipart body through python-multipart, keep the file, answer its size."""
    content_type = b""
    for key, value in scope["headers"]:
        if key == b"content-type":
            content_type = value
    _, options = parse_options_header(content_type)
    # Pieces joined once at the end: growing one buffer costs a page fault per 4 KiB.
    pieces: list[bytes] = []

    def on_part_data(chunk: bytes, start: int, end: int) -> None:
        pieces.append(chunk[start:end])

    parser = MultipartParser(options[b"boundary"], {"on_part_data": on_part_data})
    while True:
        message = await receive()
        parser.write(message.get("body", b""))
        if not message.get("more_body", False):
            break
    parser.finalize()
    data = b"".join(pieces)
    await _respond(send, str(len(data)).encode())


async def websocket(scope: Scope, receive: Receive, send: Send) -> None:
    """Accept, echo 100 text messages, close."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    for _ in range(sc.WS_ECHOES):
        message = await receive()
        await send({"type": "websocket.send", "text": message["text"]})
    await send({"type": "websocket.close", "code": 1000})


async def stream(scope: Scope, receive: Receive, send: Send) -> None:
    """Send a generator's chunks as they come."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", TEXT)]})
    async for chunk in sc.stream_chunks():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _frame(event_id: str, data: str) -> bytes:
    """One event, framed by hand (the data is one line)."""
    return f"id: {event_id}\ndata: {data}\n\n".encode()


async def sse(scope: Scope, receive: Receive, send: Send) -> None:
    """Send each event of the generator as it comes, as an event stream."""
    headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    async for event in sc.sse_events(_frame):
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


SESSION_KEY = sc.session_key()
SESSION_MAX_AGE = 14 * 24 * 3600
USERS_BY_TOKEN = {sc.BEARER_TOKEN: (sc.SESSION_USER, ("authenticated",))}


def _verified_session(cookie_header: bytes) -> dict[str, Any]:
    """The session in a signed cookie, verified by hand as SessionMiddleware does; {} if bad."""
    for chunk in cookie_header.split(b";"):
        name, _, value = chunk.strip().partition(b"=")
        if name != b"session":
            continue
        signed, _, signature = value.rpartition(b".")
        encoded, _, timestamp = signed.partition(b".")
        expected = sc.b64(hmac.digest(SESSION_KEY, signed, "sha256"))
        if hmac.compare_digest(expected, signature) and (
            time.time() - int(timestamp) <= SESSION_MAX_AGE
        ):
            data = json.loads(base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4)))
            if isinstance(data, dict):
                return data
    return {}


async def session(scope: Scope, receive: Receive, send: Send) -> None:
    """Verify the signed session cookie and answer the user it names."""
    cookie = b""
    for key, value in scope["headers"]:
        if key == b"cookie":
            cookie = value
    await _respond(send, _verified_session(cookie).get("user", "").encode())


async def bearer(scope: Scope, receive: Receive, send: Send) -> None:
    """Look the bearer token up, check the user's scope, answer the user's name."""
    authorization = b""
    for key, value in scope["headers"]:
        if key == b"authorization":
            authorization = value
    kind, _, token = authorization.decode("latin-1").partition(" ")
    found = USERS_BY_TOKEN.get(token) if kind.lower() == "bearer" else None
    if found is None or "authenticated" not in found[1]:
        await _respond(send, b"Forbidden", status=403)
        return
    await _respond(send, found[0].encode())


async def hooks(scope: Scope, receive: Receive, send: Send) -> None:
    """What a before and an after hook do, by hand: state in, a header out."""
    state = scope.setdefault("state", {})
    state["greeting"] = sc.HELLO
    body: bytes = state["greeting"]
    headers = [(b"content-type", TEXT), (b"content-length", b"%d" % len(body)), sc.HOOK_HEADER]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def file_app(fixtures: Fixtures) -> ASGIApp:
    """Serve the fixture file in 64 KiB reads."""
    path = str(fixtures.file_path)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        size = os.stat(path).st_size
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", b"%d" % size),
                ],
            }
        )
        with open(path, "rb") as f:  # noqa: ASYNC230 - the floor: no thread hop
            while chunk := f.read(sc.CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


def _const(app: ASGIApp) -> Builder:
    return lambda fixtures: app


APPS = {
    "plaintext": _const(plaintext),
    "json": _const(json_app),
    "param_1": _const(user),
    "param_1000": _const(user),
    "query_10": _const(query),
    "form_10": _const(form),
    "multipart_1mib": _const(upload),
    "websocket_100": _const(websocket),
    "streaming": _const(stream),
    "sse": _const(sse),
    "file_1mib": file_app,
    "session_read": _const(session),
    "auth_requires": _const(bearer),
    "hooks": _const(hooks),
}
# A raw app builds its messages by hand either way: the same app serves both.
APPS["plaintext_object"] = APPS["plaintext"]
APPS["json_object"] = APPS["json"]


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def e2e_app() -> ASGIApp:
    """The plaintext + JSON app served end to end (a dict lookup on the path)."""
    routes = {"/plaintext": plaintext, "/json": json_app}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        handler = routes.get(scope["path"])
        if handler is None:
            await _respond(send, b"Not Found", status=404)
            return
        await handler(scope, receive, send)

    return app
