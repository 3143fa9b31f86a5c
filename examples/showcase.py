"""The showcase: one app touching every part of microasgi.

Run it with ``python -m microasgi examples.showcase:app`` and open http://127.0.0.1:8000.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio

from examples import chat, cors_api, deny, push, static_site, upload
from microasgi import (
    App,
    EventSourceResponse,
    HTMLResponse,
    HTTPException,
    Request,
    Response,
    Router,
    ServerSentEvent,
    StreamingResponse,
)

api = Router()


@api.get("/items/{item_id:int}", name="item")
async def item(request: Request, item_id: int) -> dict[str, Any]:
    """A JSON API route with a typed path parameter and the query string."""
    if item_id > 1000:
        raise HTTPException(404, "no such item")
    return {
        "id": item_id,
        "q": request.query.get("q"),
        "url": str(request.url_for("item", item_id=item_id)),
    }


@api.post("/echo")
async def echo(request: Request) -> Any:
    """Echo a JSON body back (invalid JSON: 400)."""
    return await request.json()


app = App()
app.include_router(api, prefix="/api")
# Whole example apps, each under its own prefix (their pages use the prefix they get).
app.mount("/chat", chat.app, name="chat")
app.mount("/push", push.app, name="push")
app.mount("/deny", deny.app, name="deny")
app.mount("/upload", upload.app, name="upload")
# A JSON API open (with CORS) to a frontend served from another origin.
app.mount("/notes", cors_api.create_app("http://localhost:5173"), name="notes")
# A static site (StaticFiles at its root, beside two routes of its own); its pages link
# relatively, so they work under this prefix too.
app.mount("/static", static_site.app, name="static")


@app.lifespan
async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
    """Open app-wide resources at startup; their handles become request state."""
    yield {"started_at": anyio.current_time(), "visits": []}


@app.get("/")
async def index(request: Request) -> HTMLResponse:
    """The home page."""
    request.state.visits.append(request.url.path)
    return HTMLResponse(
        "<!doctype html><title>microasgi showcase</title>"
        "<h1>microasgi showcase</h1><ul>"
        '<li><a href="/api/items/7?q=demo">JSON API</a></li>'
        '<li><a href="/stream">a streaming response</a></li>'
        '<li><a href="/events">server-sent events</a> (a reconnecting browser resumes)</li>'
        '<li><a href="/chat/">a WebSocket chat</a> (its rooms shared by every worker '
        "through Redis when <code>REDIS_URL</code> is set)</li>"
        '<li><a href="/push/">a page that pushes its CSS (HTTP/2)</a></li>'
        "<li>a WebSocket behind a token: <code>/deny/ws?token=s3cret</code> echoes, "
        "without the token: 401 and a JSON body</li>"
        '<li><a href="/upload/">an upload form</a> (name, size and SHA-256 of the file)</li>'
        '<li><a href="/static/">static files</a> (ETag, ranges, 304)</li>'
        '<li><a href="/notes/api/notes">a JSON API with CORS</a> for http://localhost:5173</li>'
        "</ul>"
    )


@app.get("/stream")
async def stream(request: Request) -> StreamingResponse:
    """A response sent in chunks, stopped if the client leaves."""

    async def count() -> AsyncIterator[str]:
        for n in range(10):
            yield f"chunk {n}\n"
            await anyio.sleep(0.05)

    return StreamingResponse(count(), media_type="text/plain")


# --8<-- [start:events]
EVENTS_PER_CONNECTION = 4
EVENTS_TOTAL = 12


def first_event(last_event_id: str | None) -> int:
    """The event after the last one the client saw; 0 without an id we could have sent."""
    digits = last_event_id or ""
    if 0 < len(digits) < 10 and digits.isascii() and digits.isdigit():
        return int(digits) + 1
    return 0


@app.get("/events/stream")
async def event_stream(request: Request) -> Response:
    """Numbered events, a few per connection, then the stream ends; the browser comes
    back with the last id it saw (``Last-Event-ID``) and the stream resumes after it."""
    first = first_event(request.headers.get("last-event-id"))
    if first >= EVENTS_TOTAL:
        return Response(status_code=204)  # all sent: a 204 tells EventSource to stop

    async def numbered() -> AsyncIterator[ServerSentEvent]:
        for n in range(first, min(first + EVENTS_PER_CONNECTION, EVENTS_TOTAL)):
            # retry: how long the browser waits before it reconnects (milliseconds).
            yield ServerSentEvent(f"event {n}", id=str(n), retry=300)
            await anyio.sleep(0.1)

    return EventSourceResponse(numbered())


# --8<-- [end:events]


@app.get("/events")
async def events_page(request: Request) -> HTMLResponse:
    """A page that lists the events of ``/events/stream`` as they come."""
    return HTMLResponse(EVENTS_PAGE)


# --8<-- [start:page]
EVENTS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>server-sent events</title></head>
<body data-connections="0">
<h1>Server-sent events</h1>
<p>Four events per connection; the browser reconnects and the stream resumes after the
last id it saw, until all twelve came.</p>
<p id="status">connecting</p>
<ol id="events"></ol>
<script>
const source = new EventSource("/events/stream");
const status = document.getElementById("status");
source.onopen = () => {
  document.body.dataset.connections = Number(document.body.dataset.connections) + 1;
  status.textContent = "connected";
};
source.onmessage = (event) => {
  const item = document.createElement("li");
  item.textContent = `${event.data} (id ${event.lastEventId})`;
  document.getElementById("events").appendChild(item);
};
source.onerror = () => {
  const closed = source.readyState === EventSource.CLOSED;
  status.textContent = closed ? "all events received" : "reconnecting";
  if (closed) document.body.dataset.state = "done";
};
</script>
</body></html>
"""
# --8<-- [end:page]
