"""The showcase the interop suite runs under every server, written against API.md.

It exercises what users build: text, JSON, path params, query, JSON/urlencoded/multipart
bodies, a streaming response, a ranged file download, WebSocket echo (text and bytes),
WebSocket denial with a 401 JSON body, server push, early hints, lifespan state, a
mounted microasgi sub-app and a mounted raw ASGI app. A few endpoints (``/stats``,
``/trace/...``) let the tests see what the app did inside the server process.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio

from interop import raw_app
from microasgi import (
    App,
    EventSourceResponse,
    FileResponse,
    HTMLResponse,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    Request,
    Response,
    ServerSentEvent,
    StreamingResponse,
    UploadFile,
    WebSocket,
)
from microasgi._types import ASGIApp, Message, Receive, Scope, Send

DOWNLOAD_FILE = Path(__file__)
STYLE = "body { font-family: sans-serif; }\n"
EXTENSIONS = (
    "http.response.push",
    "http.response.early_hint",
    "http.response.pathsend",
    "http.response.trailers",
    "websocket.http.response",
)
STREAM_CHUNK_DELAY = 0.01
MAX_TRACES = 64

active_streams = 0
# trace id -> ASGI message types the app sent for that request, oldest dropped first.
traces: OrderedDict[str, list[str]] = OrderedDict()


class TraceMiddleware:
    """Record the message types sent for requests carrying ``x-trace: ID``.

    The client cannot see whether a file went out as ``http.response.pathsend`` or
    whether a 103 was attempted; the trace lets a test ask the app afterwards.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        trace_id = None
        if scope["type"] == "http":
            trace_id = next((v.decode() for k, v in scope["headers"] if k == b"x-trace"), None)
        if trace_id is None:
            await self.app(scope, receive, send)
            return
        sent = traces[trace_id] = []
        while len(traces) > MAX_TRACES:
            traces.popitem(last=False)

        async def traced_send(message: Message) -> None:
            sent.append(message["type"])
            await send(message)

        await self.app(scope, receive, traced_send)


app = App()
app.add_middleware(TraceMiddleware)


@app.lifespan
async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
    """Leave a mark per process (the tests count workers) and share state."""
    mark_dir = os.environ.get("INTEROP_MARK_DIR")
    if mark_dir:
        await anyio.Path(mark_dir, f"showcase-{os.getpid()}-1").touch(exist_ok=False)
    yield {"greeting": "hello from lifespan", "started_by": os.getpid()}


@app.get("/")
async def index(request: Request) -> str:
    """Plain text from a str return."""
    return "Hello, world!"


@app.get("/json")
async def json_page(request: Request) -> dict[str, Any]:
    """JSON from a dict return."""
    return {"framework": "microasgi", "unicode": "héllo ✓"}


@app.get("/users/{user_id:int}", name="user")
async def user(request: Request, user_id: int) -> dict[str, Any]:
    """A converted path parameter."""
    return {"id": user_id, "is_int": isinstance(user_id, int)}


@app.get("/hello/{name}")
async def hello(request: Request, name: str) -> str:
    """A str path parameter, percent-decoded by the server."""
    return f"Hello, {name}!"


@app.get("/files/{rest:path}")
async def files(request: Request, rest: str) -> dict[str, str]:
    """A path parameter that may contain slashes."""
    return {"rest": rest}


@app.get("/search")
async def search(request: Request) -> dict[str, Any]:
    """Repeated query parameters."""
    return {"q": request.query.getall("q", []), "page": request.query.get("page")}


@app.post("/echo/json")
async def echo_json(request: Request) -> Any:
    """The JSON body, back."""
    return {"received": await request.json()}


@app.post("/echo/form")
async def echo_form(request: Request) -> dict[str, list[str]]:
    """An urlencoded form, back."""
    form = await request.form()
    return {key: [str(value) for value in form.getall(key)] for key in form}


@app.post("/upload")
async def upload(request: Request) -> dict[str, Any]:
    """Multipart fields and files: names, sizes and digests."""
    form = await request.form()
    fields: dict[str, str] = {}
    uploaded: dict[str, dict[str, Any]] = {}
    for key, value in form.items():
        if isinstance(value, UploadFile):
            data = await value.read()
            uploaded[key] = {
                "filename": value.filename,
                "content_type": value.content_type,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        else:
            fields[key] = value
    return {"fields": fields, "files": uploaded}


@app.post("/count")
async def count(request: Request) -> dict[str, int]:
    """Count a streamed body without buffering it."""
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
    return {"size": total}


@app.post("/ignore-body")
async def ignore_body(request: Request) -> str:
    """Answer without reading the body (the client may still be uploading)."""
    return "ignored"


@app.get("/stream")
async def stream(request: Request) -> StreamingResponse:
    """``n`` numbered lines, sent one chunk each."""
    lines = int(request.query.get("n", "5"))

    async def numbered() -> AsyncIterator[bytes]:
        for number in range(lines):
            yield f"line {number}\n".encode()
            await anyio.sleep(STREAM_CHUNK_DELAY)

    return StreamingResponse(numbered(), media_type="text/plain")


@app.get("/stream/forever")
async def stream_forever(request: Request) -> StreamingResponse:
    """Chunks until the client leaves; ``/stats`` shows it ends when it does."""

    async def endless() -> AsyncIterator[bytes]:
        global active_streams
        active_streams += 1
        try:
            while True:
                yield b"x" * 1024
                await anyio.sleep(STREAM_CHUNK_DELAY)
        finally:
            active_streams -= 1

    return StreamingResponse(endless(), media_type="application/octet-stream")


@app.get("/stream/firehose")
async def stream_firehose(request: Request) -> StreamingResponse:
    """Chunks that never wait on anything, until the client leaves (counted in /stats)."""

    async def firehose() -> AsyncIterator[bytes]:
        global active_streams
        active_streams += 1
        try:
            while True:
                yield b"x" * 1024
        finally:
            active_streams -= 1

    return StreamingResponse(firehose(), media_type="application/octet-stream")


@app.post("/raw-receive")
async def raw_receive(request: Request) -> str:
    """Read the body from ``request.receive`` directly, as ASGI-minded users do."""
    size = 0
    while True:
        message = await request.receive()
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return f"{size} bytes"


@app.post("/denied-upload")
async def denied_upload(request: Request) -> str:
    """Refuse an upload before reading it (as an auth check does)."""
    raise HTTPException(401)


left: set[str] = set()  # the long-polls whose client is_disconnected() saw leave


@app.get("/poll/{token}")
async def poll(request: Request, token: str) -> str:
    """A long-poll watching for its client to leave, for 10 s at most."""
    for _ in range(500):
        if await request.is_disconnected():
            left.add(token)
            return "gone"
        await anyio.sleep(0.02)
    return "timed out"


@app.get("/left/{token}")
async def has_left(request: Request, token: str) -> dict[str, bool]:
    """Whether /poll/{token} saw its client leave."""
    return {"left": token in left}


@app.get("/sse")
async def sse(request: Request) -> EventSourceResponse:
    """``n`` numbered two-line events, resuming after the ``Last-Event-ID`` sent back."""
    last = request.headers.get("last-event-id", "")
    first = int(last) + 1 if last.isdigit() and len(last) < 10 else 0
    count = int(request.query.get("n", "5"))

    async def numbered() -> AsyncIterator[ServerSentEvent]:
        for number in range(first, count):
            yield ServerSentEvent(f"event {number}\nsecond line", id=str(number))

    return EventSourceResponse(numbered())


@app.get("/sse/forever")
async def sse_forever(request: Request) -> EventSourceResponse:
    """Events until the client leaves (``silent=1``: one, then silence).

    While its generator runs, a file ``sse-TOKEN`` exists in the server's temporary
    directory, which every worker shares: the test sees the generator end from outside.
    """
    token = request.query.get("token", "")
    if not token.isalnum():
        raise HTTPException(400, "token: letters and digits")
    silent = request.query.get("silent") == "1"
    marker = os.path.join(tempfile.gettempdir(), f"sse-{token}")

    async def endless() -> AsyncIterator[str]:
        await anyio.Path(marker).touch()
        try:
            while True:
                yield "tick"
                if silent:
                    await anyio.sleep_forever()
                await anyio.sleep(STREAM_CHUNK_DELAY)
        finally:
            os.unlink(marker)  # not awaited: this runs while the request is being cancelled

    return EventSourceResponse(endless())


@app.get("/download")
async def download(request: Request) -> Response:
    """A file with ranges, validators and pathsend where the server offers it."""
    return FileResponse(DOWNLOAD_FILE, filename="showcase.py")


@app.get("/push")
async def push(request: Request) -> dict[str, bool]:
    """Push the stylesheet where the server can; the page works either way."""
    return {"pushed": await request.push("/style.css")}


@app.get("/hints")
async def hints(request: Request) -> dict[str, bool]:
    """103 Early Hints for the stylesheet where the server can."""
    return {"sent": await request.send_early_hints(["</style.css>; rel=preload; as=style"])}


@app.get("/style.css")
async def style(request: Request) -> Response:
    """The stylesheet the push and the hints name."""
    return PlainTextResponse(STYLE, media_type="text/css")


@app.get("/lifespan")
async def lifespan_state(request: Request) -> dict[str, Any]:
    """What lifespan left in the request's state (nothing where the server has no lifespan)."""
    return {
        "greeting": getattr(request.state, "greeting", None),
        "started_by": getattr(request.state, "started_by", None),
        "pid": os.getpid(),
    }


@app.get("/advertised")
async def advertised(request: Request) -> dict[str, bool]:
    """The extensions this request's scope advertised, as microasgi sees them."""
    return {name: request.supports(name) for name in EXTENSIONS}


@app.get("/links")
async def links(request: Request) -> dict[str, str]:
    """URLs built by name, including one inside the mounted sub-app."""
    return {
        "user": str(request.url_for("user", user_id=3)),
        "ping": str(request.url_for("sub:ping")),
        "path": app.url_path_for("user", user_id=3),
    }


@app.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    """What is still running in this worker."""
    return {"pid": os.getpid(), "active_streams": active_streams}


@app.get("/trace/{trace_id}")
async def trace(request: Request, trace_id: str) -> list[str]:
    """The message types sent for a traced request."""
    if trace_id not in traces:
        raise HTTPException(404, "no such trace")
    return traces[trace_id]


@app.get("/chat")
async def chat(request: Request) -> HTMLResponse:
    """A page that echoes messages over the WebSocket (the browser test uses it)."""
    return HTMLResponse(CHAT_PAGE)


@app.websocket("/ws/text")
async def ws_text(websocket: WebSocket) -> None:
    """Echo text messages until the client leaves."""
    await websocket.accept()
    async for message in websocket.iter_text():
        await websocket.send_text(message)


@app.websocket("/ws/bytes")
async def ws_bytes(websocket: WebSocket) -> None:
    """Echo binary messages until the client leaves."""
    await websocket.accept()
    async for message in websocket.iter_bytes():
        await websocket.send_bytes(message)


@app.websocket("/ws/private")
async def ws_private(websocket: WebSocket) -> None:
    """Deny with a 401 JSON body without the token; greet from lifespan state with it."""
    if websocket.query.get("token") != "secret":
        await websocket.deny(JSONResponse({"detail": "unauthorized"}, status_code=401))
        return
    await websocket.accept()
    await websocket.send_json({"greeting": getattr(websocket.state, "greeting", None)})
    await websocket.close()


sub = App()


@sub.get("/ping", name="ping")
async def ping(request: Request) -> dict[str, Any]:
    """The mounted sub-app sees its root_path and resolves names from the top."""
    return {
        "pong": True,
        "path": request.path,
        "root_path": request.scope["root_path"],
        "url": str(request.url_for("sub:ping")),
    }


app.mount("/sub", sub, name="sub")
app.mount("/raw", raw_app.app)

CHAT_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>chat</title></head>
<body>
<ul id="log"></ul>
<form id="form"><input id="message" autocomplete="off"><button>send</button></form>
<script>
const scheme = location.protocol === "https:" ? "wss" : "ws";
const socket = new WebSocket(`${scheme}://${location.host}/ws/text`);
const log = document.getElementById("log");
socket.onopen = () => { document.body.dataset.state = "open"; };
socket.onmessage = (event) => {
  const item = document.createElement("li");
  item.textContent = event.data;
  log.appendChild(item);
};
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("message");
  socket.send(input.value);
  input.value = "";
};
</script>
</body></html>
"""
