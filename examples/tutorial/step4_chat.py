"""Tutorial step 4: a WebSocket chat page.

Run it with ``python -m microasgi step4_chat:app`` and open http://127.0.0.1:8000 in two
browser windows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from microasgi import App, HTMLResponse, Request, WebSocket, WebSocketDisconnect

app = App()


@app.lifespan
async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
    """Run once at startup: what it yields is in every request's and WebSocket's state."""
    rooms: dict[str, set[WebSocket]] = {}
    yield {"rooms": rooms}
    # After the yield: shutdown. Say goodbye to whoever is still connected.
    for members in rooms.values():
        for member in list(members):
            await member.close(1001, "server shutting down")


PAGE = """<!doctype html>
<meta charset="utf-8">
<title>Chat</title>
<h1>Room <span id="room"></span></h1>
<ul id="log"></ul>
<form id="say"><input id="text" autocomplete="off" autofocus><button>Send</button></form>
<script>
const room = location.hash.slice(1) || "lobby";
const name = prompt("Your name?") || "anonymous";
document.getElementById("room").textContent = room;
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const url = `${scheme}${location.host}/ws/${encodeURIComponent(room)}`;
const ws = new WebSocket(`${url}?name=${encodeURIComponent(name)}`);
ws.onmessage = (event) => {
  const { user, text } = JSON.parse(event.data);
  const item = document.createElement("li");
  item.textContent = `${user}: ${text}`;  // textContent: a message cannot inject HTML
  document.getElementById("log").append(item);
};
document.getElementById("say").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  ws.send(input.value);
  input.value = "";
};
</script>
"""


@app.get("/")
async def page(request: Request) -> HTMLResponse:
    """The chat page (the room is the part of the URL after ``#``)."""
    return HTMLResponse(PAGE)


async def broadcast(members: set[WebSocket], message: dict[str, str]) -> None:
    """Send ``message`` to every member of a room, dropping those who have left."""
    for member in list(members):
        try:
            await member.send_json(message)
        except WebSocketDisconnect:  # gone, its own handler will notice too
            members.discard(member)


@app.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str) -> None:
    """Join ``room``, relay every text message to its members, leave on disconnect."""
    name = websocket.query.get("name", "anonymous")[:40]
    await websocket.accept()
    members = websocket.state.rooms.setdefault(room, set())
    members.add(websocket)
    try:
        await broadcast(members, {"user": "*", "text": f"{name} joined"})
        async for text in websocket.iter_text():  # ends when the client leaves
            if len(text) > 1000:
                await websocket.close(1009, "message too long")
                break
            await broadcast(members, {"user": name, "text": text})
    finally:
        members.discard(websocket)
    await broadcast(members, {"user": "*", "text": f"{name} left"})
