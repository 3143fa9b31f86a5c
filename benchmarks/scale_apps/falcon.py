"""The scale app in Falcon (ASGI), as its documentation shows. Falcon has no file
response (a static route serves files) and no broadcast: no ``/file`` and no room."""

from __future__ import annotations

from typing import Any, cast

import falcon
import falcon.asgi

from benchmarks.apps.falcon_app import Plaintext, Req, Resp
from benchmarks.harness import ASGIApp
from benchmarks.scale_apps import Counts, chunk, files_dir, ticks


class Stats:
    """This process's generator counts."""

    async def on_get(self, req: Req, resp: Resp) -> None:
        """GET."""
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = Counts.text()


class Echo:
    """Echo each text message until the client leaves."""

    async def on_websocket(self, req: Req, ws: falcon.asgi.WebSocket) -> None:
        """WebSocket."""
        await ws.accept()
        try:
            while True:
                await ws.send_text(await ws.receive_text())
        except falcon.WebSocketDisconnected:
            return


class Stream:
    """A chunk every tick."""

    async def on_get(self, req: Req, resp: Resp) -> None:
        """GET."""
        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = ticks(chunk)


class Events:
    """An event every tick."""

    async def on_get(self, req: Req, resp: Resp) -> None:
        """GET."""
        resp.sse = ticks(lambda i: falcon.asgi.SSEvent(data=str(i).encode()))


def app() -> ASGIApp:
    """The Falcon scale app."""
    application: falcon.asgi.App[Any, Any] = falcon.asgi.App()
    application.add_route("/plaintext", Plaintext())
    application.add_route("/stats", Stats())
    application.add_route("/ws", Echo())
    application.add_route("/stream", Stream())
    application.add_route("/sse", Events())
    if files_dir().is_dir():
        application.add_static_route("/static", str(files_dir()))
    return cast(ASGIApp, application)
