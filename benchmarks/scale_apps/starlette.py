"""The scale app in Starlette (server-sent events from sse-starlette), as their
documentation shows. Starlette has no broadcast of its own: no room."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from benchmarks.scale_apps import Counts, chunk, file_path, files_dir, ticks


async def plaintext(request: Request) -> Response:
    """The readiness probe."""
    return PlainTextResponse("Hello, World!")


async def stats(request: Request) -> Response:
    """This process's generator counts."""
    return PlainTextResponse(Counts.text())


async def echo(websocket: WebSocket) -> None:
    """Echo each text message until the client leaves."""
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text)


async def stream(request: Request) -> Response:
    """A chunk every tick."""
    return StreamingResponse(ticks(chunk), media_type="text/plain")


async def sse(request: Request) -> Response:
    """An event every tick."""
    from sse_starlette import EventSourceResponse, ServerSentEvent

    return EventSourceResponse(ticks(lambda i: ServerSentEvent(data=str(i))))


async def file(request: Request) -> Response:
    """One of the files, as a FileResponse."""
    path = file_path(request.path_params["name"])
    return FileResponse(path) if path is not None else PlainTextResponse("Not Found", 404)


def app() -> Starlette:
    """The Starlette scale app."""
    routes: list[BaseRoute] = [
        Route("/plaintext", plaintext),
        Route("/stats", stats),
        WebSocketRoute("/ws", echo),
        Route("/stream", stream),
        Route("/sse", sse),
        Route("/file/{name}", file),
    ]
    if files_dir().is_dir():
        routes.append(Mount("/static", StaticFiles(directory=files_dir())))
    return Starlette(routes=routes)
