"""The scale app in microasgi, written as its documentation shows (the room as the chat
example's: a ``Broadcast``, in this process or through Redis when ``$REDIS_URL`` is set)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import anyio

from benchmarks.scale_apps import Counts, chunk, file_path, files_dir, ticks
from microasgi import App, FileResponse, Request, StreamingResponse, WebSocket
from microasgi.broadcast import Broadcast, Subscriber
from microasgi.sse import EventSourceResponse
from microasgi.staticfiles import StaticFiles


async def _relay(websocket: WebSocket, subscriber: Subscriber) -> None:
    async for event in subscriber:
        if isinstance(event.message, str):
            await websocket.send_text(event.message)


def app() -> App:
    """The microasgi scale app."""
    application = App()
    broadcast = Broadcast(os.environ.get("REDIS_URL", "memory://"))

    @application.lifespan
    async def lifespan(app: App) -> AsyncIterator[None]:
        async with broadcast:
            yield

    @application.get("/plaintext")
    async def plaintext(request: Request) -> str:
        return "Hello, World!"

    @application.get("/stats")
    async def stats(request: Request) -> str:
        return Counts.text()

    @application.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text)

    @application.get("/stream")
    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(ticks(chunk), media_type="text/plain")

    @application.get("/sse")
    async def sse(request: Request) -> EventSourceResponse:
        return EventSourceResponse(ticks(str))

    @application.get("/sse-noping")
    async def sse_without_ping(request: Request) -> EventSourceResponse:
        return EventSourceResponse(ticks(str), ping=None)

    @application.get("/file/{name}")
    async def file(request: Request, name: str) -> Any:
        path = file_path(name)
        return FileResponse(path) if path is not None else ("Not Found", 404)

    if files_dir().is_dir():
        application.mount("/static", StaticFiles(files_dir()))

    @application.websocket("/room/{room}")
    async def room(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        async with (
            broadcast.subscribe(room) as subscriber,
            anyio.create_task_group() as group,
        ):
            group.start_soon(_relay, websocket, subscriber)
            async for text in websocket.iter_text():
                await broadcast.publish(room, text)
            group.cancel_scope.cancel()

    return application
