"""A WebSocket chat: rooms, a small HTML page, every message broadcast to the room.

Run it with ``python -m microasgi examples.chat:app`` and open http://127.0.0.1:8000 in
two browser windows. Rooms are channels of a `Broadcast`: in this process by default, or
shared by every worker and machine through Redis when ``REDIS_URL`` is set, e.g.
``REDIS_URL=redis://localhost:6379/0 uvicorn examples.chat:app --workers 4``.

Each connection owns one task group with two tasks: the handler reads what its client
says and publishes it, and a relay sends the client what the room says. A client too
slow to keep up is dropped by the broadcast (its queue is bounded) and closed (1013,
"try again later") instead of making the server buffer without limit. When a
connection ends, both of its tasks end with it: nothing outlives the handler.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator

import anyio

from microasgi import App, HTMLResponse, Request, WebSocket, WebSocketDisconnect
from microasgi.broadcast import Broadcast, BroadcastUnavailable, Subscriber, SubscriberDropped

OUTBOX_SIZE = 64  # messages waiting for one slow client before it is dropped
MAX_TEXT = 1000  # characters kept of one chat message
MAX_NAME = 40
CLOSE_TIMEOUT = 5.0  # seconds to wait for a dropped client to take its close frame

broadcast = Broadcast(os.environ.get("REDIS_URL", "memory://"))

app = App()


@app.lifespan
async def lifespan(app: App) -> AsyncIterator[None]:
    """Connect the broadcast for as long as the app runs."""
    async with broadcast:
        yield


PAGE = """<!doctype html>
<meta charset="utf-8">
<title>microasgi chat</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  #log { list-style: none; padding: 0; min-height: 10rem; border: 1px solid #ccc; }
  #log li { padding: .2rem .5rem; }
  .system { color: #777; font-style: italic; }
</style>
<h1>Room <input id="room" value="lobby" size="12"> as <input id="name" size="12"></h1>
<button id="join">Join</button> <span id="status">not connected</span>
<ul id="log"></ul>
<form id="say"><input id="text" autocomplete="off" size="40"><button>Send</button></form>
<script>
const base = JSON.parse(document.getElementById("base").textContent);
const $ = (id) => document.getElementById(id);
let socket = null;
function show(user, text) {
  const item = document.createElement("li");
  if (user === "*") { item.className = "system"; item.textContent = text; }
  else { item.textContent = `${user}: ${text}`; }  // textContent: no HTML injection
  $("log").append(item);
}
$("join").onclick = () => {
  if (socket) socket.close();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const room = encodeURIComponent($("room").value || "lobby");
  const name = encodeURIComponent($("name").value || "anonymous");
  socket = new WebSocket(`${scheme}//${location.host}${base}/ws/${room}?name=${name}`);
  socket.onopen = () => { $("status").textContent = "connected"; };
  socket.onclose = (e) => { $("status").textContent = `closed (${e.code})`; };
  socket.onmessage = (e) => { const m = JSON.parse(e.data); show(m.user, m.text); };
};
$("say").onsubmit = (event) => {
  event.preventDefault();
  if (socket && socket.readyState === WebSocket.OPEN) socket.send($("text").value);
  $("text").value = "";
};
</script>
"""


@app.get("/")
async def page(request: Request) -> HTMLResponse:
    """The chat page; its WebSocket URL keeps the prefix the app is served under."""
    # The prefix goes in a JSON data block: "<" escaped, it cannot close the element.
    base = json.dumps(request.scope.get("root_path", "")).replace("<", "\\u003c")
    data = f'<script type="application/json" id="base">{base}</script>\n'
    return HTMLResponse(PAGE.replace("<script>", data + "<script>", 1))


@app.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str) -> None:
    """Join ``room``, publish what the client says, leave when it disconnects."""
    name = (websocket.query.get("name") or "anonymous")[:MAX_NAME]
    channel = f"chat:{room}"
    # Which worker process took the connection: the guide on scaling out shows it.
    await websocket.accept(headers={"x-worker-pid": str(os.getpid())})
    try:
        async with (
            broadcast.subscribe(channel, max_queue=OUTBOX_SIZE) as subscriber,
            anyio.create_task_group() as group,
        ):
            group.start_soon(relay, websocket, subscriber, group.cancel_scope)
            await say(channel, "*", f"{name} joined")
            async for text in websocket.iter_text():
                if not await say(channel, name, text[:MAX_TEXT]):
                    with contextlib.suppress(WebSocketDisconnect):
                        await websocket.send_text(notice("not delivered, try again"))
            await say(channel, "*", f"{name} left")
            group.cancel_scope.cancel()  # the client is gone: so is its relay
    except SubscriberDropped:  # too slow for the room
        await say(channel, "*", f"{name} left")
        await close_for_now(websocket)
    except BroadcastUnavailable:  # the room (Redis) is out of reach
        await close_for_now(websocket)


async def close_for_now(websocket: WebSocket) -> None:
    """Close with 1013: the client may come back later."""
    # Its connection may be the slow part: do not wait on it for ever.
    with anyio.move_on_after(CLOSE_TIMEOUT):
        await websocket.close(1013, "try again later")


async def say(channel: str, user: str, text: str) -> bool:
    """Publish a message to the room; False if it could not go out."""
    try:
        await broadcast.publish(channel, json.dumps({"user": user, "text": text}))
    except BroadcastUnavailable:
        return False
    return True


def notice(text: str) -> str:
    """A message from the chat itself, for one client."""
    return json.dumps({"user": "*", "text": text})


async def relay(websocket: WebSocket, subscriber: Subscriber, done: anyio.CancelScope) -> None:
    """Send the client what the room says, until either side is gone."""
    try:
        async for event in subscriber:
            if isinstance(event.message, str):  # the chat publishes text only
                await websocket.send_text(event.message)
    except WebSocketDisconnect:
        return  # the client left: the reader sees it too
    done.cancel()  # the broadcast closed (the app is stopping): end the connection
