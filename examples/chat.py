"""A WebSocket chat: rooms, a small HTML page, every message broadcast to the room.

Run it with ``python -m microasgi examples.chat:app`` and open http://127.0.0.1:8000 in
two browser windows.

Each connection owns one task group with two tasks: the handler reads what its client
says, and a writer sends the client what the room says. Broadcasting only puts the
message in each member's bounded outbox, so a slow client never holds up the room; a
client so slow that its outbox fills up is dropped and closed (1013, "try again later")
instead of making the server buffer without limit. When a connection ends, both of its
tasks end with it: nothing outlives the handler.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from microasgi import App, HTMLResponse, Request, WebSocket, WebSocketDisconnect

OUTBOX_SIZE = 64  # messages waiting for one slow client before it is dropped
MAX_TEXT = 1000  # characters kept of one chat message
MAX_NAME = 40
CLOSE_TIMEOUT = 5.0  # seconds to wait for a dropped client to take its close frame


@dataclass(eq=False)
class Member:
    """One connected client: its name, its outbox, and the scope of its connection."""

    name: str
    outbox: MemoryObjectSendStream[str]
    connection: anyio.CancelScope
    dropped: bool = False


@dataclass
class Room:
    """The members of one room."""

    members: set[Member] = field(default_factory=set)

    def broadcast(self, message: dict[str, str]) -> None:
        """Queue ``message`` for every member, without waiting for any of them."""
        text = json.dumps(message)
        for member in list(self.members):
            try:
                member.outbox.send_nowait(text)
            except anyio.WouldBlock:  # too slow to keep up: let it go
                self.members.discard(member)
                member.dropped = True
                member.connection.cancel()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self.members.discard(member)


class Rooms:
    """Every room of this process, created on first join, removed when empty."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}

    def get(self, name: str) -> Room | None:
        """The room ``name``, if anyone is in it."""
        return self._rooms.get(name)

    def join(self, name: str, member: Member) -> Room:
        """Add ``member`` to the room ``name`` and tell the room."""
        room = self._rooms.setdefault(name, Room())
        room.members.add(member)
        room.broadcast({"user": "*", "text": f"{member.name} joined"})
        return room

    def leave(self, name: str, member: Member) -> None:
        """Remove ``member`` from the room ``name`` and tell whoever is left."""
        room = self._rooms.get(name)
        if room is None:
            return
        room.members.discard(member)
        if room.members:
            room.broadcast({"user": "*", "text": f"{member.name} left"})
        else:
            del self._rooms[name]


app = App()
app.state.rooms = Rooms()


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
    """Join ``room``, broadcast what the client says, leave when it disconnects."""
    name = (websocket.query.get("name") or "anonymous")[:MAX_NAME]
    rooms: Rooms = websocket.app.state.rooms
    await websocket.accept()
    outbox, inbox = anyio.create_memory_object_stream[str](OUTBOX_SIZE)
    async with anyio.create_task_group() as group:
        member = Member(name, outbox, group.cancel_scope)
        group.start_soon(deliver, websocket, inbox)
        joined = rooms.join(room, member)
        try:
            async for text in websocket.iter_text():
                joined.broadcast({"user": name, "text": text[:MAX_TEXT]})
        finally:
            rooms.leave(room, member)
            outbox.close()
            group.cancel_scope.cancel()  # the client is gone: so is its writer
    if member.dropped:
        # Its connection may be the slow part: do not wait on it for ever.
        with anyio.move_on_after(CLOSE_TIMEOUT):
            await websocket.close(1013, "too slow, try again later")


async def deliver(websocket: WebSocket, inbox: MemoryObjectReceiveStream[str]) -> None:
    """Send the client what the room says, until its connection closes."""
    async with inbox:
        try:
            async for text in inbox:
                await websocket.send_text(text)
        except WebSocketDisconnect:
            return  # the client left: the reader sees it too
