"""WebSocketException: a handler closes (or refuses) a connection with a chosen code."""

from __future__ import annotations

from typing import Any

import pytest
from asgi_harness import CONNECT, run, websocket_scope

from microasgi import App, PlainTextResponse, Response, WebSocket, WebSocketDisconnect
from microasgi import WebSocketException as WSException
from microasgi._types import ASGIApp, Receive, Scope, Send
from microasgi.testing import TestClient, WebSocketDenied

pytestmark = pytest.mark.anyio

WITH_DENIAL_RESPONSE = {"websocket.http.response": {}}


def policy_app() -> App:
    """``/after`` closes with 1008 after accept; ``/before`` refuses with 4003."""
    app = App()

    @app.websocket("/after")
    async def after(websocket: WebSocket) -> None:
        await websocket.accept()
        if await websocket.receive_text() == "swear":
            raise WSException(code=1008, reason="policy")

    @app.websocket("/before")
    async def before(websocket: WebSocket) -> None:
        raise WSException(4003, "banned")

    return app


async def test_after_accept_it_closes_with_its_code_and_reason_and_goes_no_further() -> None:
    async with TestClient(policy_app()) as client, client.websocket_connect("/after") as ws:
        await ws.send_text("swear")
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (1008, "policy")


@pytest.mark.parametrize("extensions", [{}, WITH_DENIAL_RESPONSE], ids=["plain", "http-response"])
async def test_before_accept_it_refuses_with_a_close_of_its_code(extensions: Any) -> None:
    sent = await run(policy_app(), websocket_scope("/before", extensions=extensions))
    assert sent == [{"type": "websocket.close", "code": 4003, "reason": "banned"}]
    async with TestClient(policy_app()) as client:
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/before"):
                pass
    assert denied.value.response.status_code == 403  # what a server answers that close with


async def test_the_500_handler_does_not_turn_it_into_an_error() -> None:
    app = policy_app()

    @app.exception_handler(500)
    async def oops(websocket: Any, exc: Exception) -> Response:
        return PlainTextResponse("oops", 500)

    sent = await run(app, websocket_scope("/before", extensions=WITH_DENIAL_RESPONSE))
    assert sent == [{"type": "websocket.close", "code": 4003, "reason": "banned"}]


async def test_a_handler_for_its_class_answers_a_refusal() -> None:
    app = policy_app()

    @app.exception_handler(WSException)
    async def explain(websocket: WebSocket, exc: WSException) -> Response:
        return PlainTextResponse(exc.reason, 403)

    async with TestClient(app) as client:
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/before"):
                pass
    assert (denied.value.response.status_code, denied.value.response.text) == (403, "banned")


async def test_raised_in_before_websocket_it_refuses_the_same_way() -> None:
    app = policy_app()

    @app.before_websocket
    async def closed_for_today(websocket: WebSocket) -> None:
        raise WSException(1013, "try again later")

    sent = await run(app, websocket_scope("/after"))
    assert sent == [{"type": "websocket.close", "code": 1013, "reason": "try again later"}]


async def test_raised_by_user_middleware_it_closes_with_its_code() -> None:
    class Gate:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "websocket" and scope["path"] == "/after":
                raise WSException(4001, "no entry")
            await self.app(scope, receive, send)

    app = policy_app()
    app.add_middleware(Gate)
    sent = await run(app, websocket_scope("/after"), [CONNECT])
    assert sent == [{"type": "websocket.close", "code": 4001, "reason": "no entry"}]
