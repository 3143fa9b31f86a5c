"""The scale app in BlackSheep, as its documentation shows (no broadcast: no room)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from blacksheep import Application, Response, StreamedContent, text
from blacksheep.server.responses import file as file_response
from blacksheep.server.routing import Router
from blacksheep.server.sse import ServerSentEventsResponse, TextServerSentEvent
from blacksheep.server.websocket import WebSocket, WebSocketDisconnectError

from benchmarks.scale_apps import Counts, chunk, file_path, files_dir, ticks


async def _chunks() -> AsyncIterator[bytes]:
    async for item in ticks(chunk):
        yield item
    yield b""  # BlackSheep's StreamedContent ends on an empty chunk


def app() -> Application:
    """The BlackSheep scale app."""
    application = Application(router=Router(), show_error_details=False)
    get = application.router.add_get

    async def plaintext() -> Response:
        return text("Hello, World!")

    async def stats() -> Response:
        return text(Counts.text())

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnectError:
            return

    async def stream() -> Response:
        return Response(200, content=StreamedContent(b"text/plain", _chunks))

    async def sse() -> Response:
        return ServerSentEventsResponse(lambda: ticks(lambda i: TextServerSentEvent(str(i))))

    async def file(name: str) -> Response:
        path = file_path(name)
        if path is None:
            return text("Not Found", 404)
        return file_response(str(path), "application/octet-stream")

    get("/plaintext", plaintext)
    get("/stats", stats)
    application.router.add_ws("/ws", echo)
    get("/stream", stream)
    get("/sse", sse)
    get("/file/{name}", file)
    if files_dir().is_dir():
        application.serve_files(files_dir(), root_path="static", extensions={".bin"})
    return application
