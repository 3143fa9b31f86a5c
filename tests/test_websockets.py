"""WebSockets as a user sees them: routes, the WebSocket API, denial, errors, cleanup.

Most tests go through TestClient; the ones about exactly which ASGI messages go out
(one denial start + one body, nothing before accept, no second receive) record a raw
``send``. Every wait is bounded, so a hang fails the test instead of stalling the run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from asgi_harness import run, websocket_scope

from microasgi import (
    App,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    Request,
    Router,
    StreamingResponse,
    WebSocket,
    WebSocketDisconnect,
)
from microasgi._types import ASGIApp, Message, Receive, Scope, Send
from microasgi.broadcast import Broadcast
from microasgi.testing import TestClient, TestResponse, WebSocketDenied, WebSocketTestSession

pytestmark = pytest.mark.anyio

NO_EXTENSIONS: dict[str, Any] = {}
WS_RESPONSE: dict[str, Any] = {"websocket.http.response": {}}
WITH_AND_WITHOUT = pytest.mark.parametrize(
    "extensions", [None, NO_EXTENSIONS], ids=["advertised", "not-advertised"]
)


def echo_app() -> App:
    app = App()

    @app.websocket("/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for message in websocket.iter_text():
            await websocket.send_text(message)

    return app


@asynccontextmanager
async def connected(
    app: App,
    path: str,
    extensions: dict[str, Any] | None,
    *,
    raise_server_exceptions: bool = True,
    **options: Any,
) -> AsyncIterator[WebSocketTestSession]:
    """A WebSocket to ``path`` from a client advertising ``extensions`` (None: defaults)."""
    async with (
        TestClient(
            app, extensions=extensions, raise_server_exceptions=raise_server_exceptions
        ) as client,
        client.websocket_connect(path, **options) as ws,
    ):
        yield ws


async def refusal(client: TestClient, path: str = "/ws") -> TestResponse:
    """What the app answered a WebSocket to ``path`` with; fails if it accepted."""
    try:
        async with client.websocket_connect(path):
            pass
    except WebSocketDenied as exc:
        return exc.response
    raise AssertionError(f"the WebSocket to {path} was accepted")


async def refusal_by(
    app: App,
    path: str = "/ws",
    extensions: dict[str, Any] | None = None,
    *,
    raises: type[Exception] | None = None,
) -> TestResponse:
    """``refusal`` with a fresh client advertising ``extensions`` (None: the defaults).

    With ``raises``, the app must also let that error out after refusing (an unexpected
    error reaches the server): checked by a second client that raises it.
    """
    with anyio.fail_after(5):
        async with TestClient(
            app, extensions=extensions, raise_server_exceptions=raises is None
        ) as client:
            response = await refusal(client, path)
        if raises is not None:
            async with TestClient(app, extensions=extensions) as client:
                with pytest.raises(raises):
                    await refusal(client, path)
    return response


# --- the handshake ----------------------------------------------------------------------


@WITH_AND_WITHOUT
async def test_accept_chooses_an_offered_subprotocol_and_sends_headers(
    extensions: dict[str, Any] | None,
) -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        assert websocket.subprotocols == ["v2.chat", "chat"]
        await websocket.accept(subprotocol="chat", headers={"X-Room": "lobby"})
        await websocket.close()

    with anyio.fail_after(5):
        async with connected(app, "/ws", extensions, subprotocols=["v2.chat", "chat"]) as ws:
            assert ws.accepted_subprotocol == "chat"
            assert ("x-room", "lobby") in ws.accept_headers


async def test_accept_without_subprotocol_sends_none() -> None:
    script: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent = await run(echo_app(), websocket_scope("/echo", subprotocols=["chat"]), script)
    assert sent[0] == {"type": "websocket.accept", "subprotocol": None}


@pytest.mark.parametrize(
    ("subprotocol", "headers"),
    [(None, {"x-evil": "a\r\nSet-Cookie: x=1"}), (None, [("x-evil", "a\nb")]), ("chat\r\n", None)],
)
async def test_accept_refuses_cr_lf_before_sending_anything(
    subprotocol: str | None, headers: Any
) -> None:
    refused: list[BaseException] = []
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        try:
            await websocket.accept(subprotocol=subprotocol, headers=headers)
        except ValueError as exc:
            refused.append(exc)
        await websocket.accept()  # the connection is still usable
        await websocket.close()

    sent = await run(app, websocket_scope("/ws", subprotocols=["chat"]))
    assert len(refused) == 1
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert "headers" not in sent[0] or sent[0]["headers"] == []


async def test_connection_details_are_views_over_the_scope() -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.lifespan
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hello"}

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        seen.update(
            path=websocket.path,
            url=str(websocket.url),
            query=dict(websocket.query),
            header=websocket.headers["x-client"],
            cookies=websocket.cookies,
            client=websocket.client,
            state=websocket.state.greeting,
        )
        await websocket.accept()

    with anyio.fail_after(5):
        async with (
            TestClient(app) as client,
            client.websocket_connect(
                "/ws?room=1",
                headers={"X-Client": "test"},
                cookies={"session": "abc"},
            ),
        ):
            pass
    assert seen == {
        "path": "/ws",
        "url": "ws://testserver/ws?room=1",
        "query": {"room": "1"},
        "header": "test",
        "cookies": {"session": "abc"},
        "client": ("testclient", 50000),
        "state": "hello",
    }


async def test_sending_or_receiving_before_accept_is_a_programming_error() -> None:
    errors: list[str] = []
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        for attempt in (websocket.receive_text(), websocket.send_text("early")):
            try:
                await attempt
            except RuntimeError as exc:
                errors.append(str(exc))
        await websocket.accept()

    await run(app, websocket_scope())
    assert len(errors) == 2
    assert all("accept" in e for e in errors)


async def test_accept_twice_is_a_programming_error() -> None:
    app = App()
    errors: list[RuntimeError] = []

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        with pytest.raises(RuntimeError) as info:
            await websocket.accept()
        errors.append(info.value)

    sent = await run(app, websocket_scope())
    assert len(errors) == 1
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]


# --- messages ---------------------------------------------------------------------------


@WITH_AND_WITHOUT
async def test_text_bytes_and_json_round_trip(extensions: dict[str, Any] | None) -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text((await websocket.receive_text()).upper())
        await websocket.send_bytes((await websocket.receive_bytes())[::-1])
        data = await websocket.receive_json()
        await websocket.send_json({"got": data})
        await websocket.send_json([1, "é"], mode="binary")

    with anyio.fail_after(5):
        async with connected(app, "/ws", extensions) as ws:
            await ws.send_text("hello")
            assert await ws.receive_text() == "HELLO"
            await ws.send_bytes(b"\x00\x01\xff")
            assert await ws.receive_bytes() == b"\xff\x01\x00"
            await ws.send_json({"n": 1, "s": "ü"})
            assert await ws.receive_json() == {"got": {"n": 1, "s": "ü"}}
            message = await ws.receive()
            assert message["bytes"] == '[1,"é"]'.encode()
            with pytest.raises(WebSocketDisconnect) as info:
                await ws.receive()
            assert info.value.code == 1000


async def test_receive_json_accepts_binary_frames() -> None:
    app = App()
    got: list[Any] = []

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        got.append(await websocket.receive_json())

    script: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "bytes": b'{"a":1}'},
    ]
    await run(app, websocket_scope(), script)
    assert got == [{"a": 1}]


@pytest.mark.parametrize(
    ("method", "message", "code"),
    [
        ("receive_text", {"type": "websocket.receive", "bytes": b"x"}, 1003),
        ("receive_bytes", {"type": "websocket.receive", "text": "x"}, 1003),
        ("receive_json", {"type": "websocket.receive", "text": "{not json"}, 1007),
        ("receive_json", {"type": "websocket.receive", "text": "[" * 100_000}, 1007),
    ],
)
async def test_an_unexpected_frame_closes_with_a_protocol_code(
    method: str, message: dict[str, Any], code: int, caplog: pytest.LogCaptureFixture
) -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await getattr(websocket, method)()

    sent = await run(app, websocket_scope(), [{"type": "websocket.connect"}, message])
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1]["code"] == code
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("kind", "frames", "expected"),
    [
        ("text", [{"text": "a"}, {"text": "b"}], ["a", "b"]),
        ("bytes", [{"bytes": b"a"}, {"bytes": b"b"}], [b"a", b"b"]),
        ("json", [{"text": "1"}, {"text": '{"x": 2}'}], [1, {"x": 2}]),
    ],
)
async def test_iterators_end_when_the_client_disconnects(
    kind: str, frames: list[dict[str, Any]], expected: list[Any]
) -> None:
    app = App()
    got: list[Any] = []
    ended: list[bool] = []

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        async for message in getattr(websocket, f"iter_{kind}")():
            got.append(message)
        ended.append(True)

    with anyio.fail_after(5):
        async with TestClient(app) as client, client.websocket_connect("/ws") as ws:
            for frame in frames:
                await ws.send({"type": "websocket.receive", **frame})
            await ws.close(1001)
    assert got == expected
    assert ended == [True]


# --- closing and disconnects --------------------------------------------------------------


@WITH_AND_WITHOUT
async def test_close_sends_code_and_reason(extensions: dict[str, Any] | None) -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(4000, "room closed")

    with anyio.fail_after(5):
        async with connected(app, "/ws", extensions) as ws:
            with pytest.raises(WebSocketDisconnect) as info:
                await ws.receive_text()
    assert (info.value.code, info.value.reason) == (4000, "room closed")


async def test_sending_after_close_raises_disconnect_and_close_is_idempotent() -> None:
    app = App()
    outcome: list[int] = []

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(4001)
        await websocket.close()  # no second close message
        try:
            await websocket.send_text("late")
        except WebSocketDisconnect as exc:
            outcome.append(exc.code)

    sent = await run(app, websocket_scope())
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert outcome == [4001]


async def test_disconnect_carries_the_clients_code_and_reason() -> None:
    app = App()
    seen: list[tuple[int, str]] = []

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.receive_text()
        except WebSocketDisconnect as exc:
            seen.append((exc.code, exc.reason))
            raise

    with anyio.fail_after(5):
        async with TestClient(app) as client, client.websocket_connect("/ws") as ws:
            await ws.close(4002, "going away")
    assert seen == [(4002, "going away")]


async def test_receiving_after_disconnect_raises_at_once_without_asking_the_server() -> None:
    app = App()
    seen: list[tuple[int, str]] = []

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        for _ in range(3):
            try:
                await websocket.receive_text()
            except WebSocketDisconnect as exc:
                seen.append((exc.code, exc.reason))

    # run_ws's receive would wait forever if asked a third time: fail_after would fire.
    script: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": 1001, "reason": "tab closed"},
    ]
    sent = await run(app, websocket_scope(), script)
    assert seen == [(1001, "tab closed")] * 3
    # The client is gone: nothing is sent after the accept.
    assert [m["type"] for m in sent] == ["websocket.accept"]


async def test_disconnect_without_a_code_is_1005() -> None:
    app = App()
    seen: list[int] = []

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.receive_bytes()
        except WebSocketDisconnect as exc:
            seen.append(exc.code)

    await run(
        app, websocket_scope(), [{"type": "websocket.connect"}, {"type": "websocket.disconnect"}]
    )
    assert seen == [1005]


async def test_a_client_gone_before_accept_is_a_quiet_end(caplog: pytest.LogCaptureFixture) -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()

    sent = await run(app, websocket_scope(), [{"type": "websocket.disconnect", "code": 1006}])
    assert sent == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_send_failing_because_the_client_left_becomes_a_disconnect() -> None:
    app = App()
    seen: list[int] = []
    sent: list[Message] = []

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.send_text("anyone?")
        except WebSocketDisconnect as exc:
            seen.append(exc.code)
            raise

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        if message["type"] != "websocket.accept":
            raise OSError("connection lost")  # what ASGI 2.4 servers do
        sent.append(message)

    with anyio.fail_after(5):
        await app(websocket_scope(), receive, send)
    assert seen == [1006]
    assert [m["type"] for m in sent] == ["websocket.accept"]


@WITH_AND_WITHOUT
async def test_a_handler_returning_without_closing_closes_with_1000(
    extensions: dict[str, Any] | None,
) -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("bye")

    with anyio.fail_after(5):
        async with connected(app, "/ws", extensions) as ws:
            assert await ws.receive_text() == "bye"
            with pytest.raises(WebSocketDisconnect) as info:
                await ws.receive_text()
    assert info.value.code == 1000


async def test_an_uncaught_disconnect_is_a_normal_end(caplog: pytest.LogCaptureFixture) -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            await websocket.receive_text()  # raises WebSocketDisconnect, left uncaught

    with anyio.fail_after(5):
        async with TestClient(app) as client, client.websocket_connect("/ws") as ws:
            await ws.send_text("hi")
            await ws.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_handler_raising_disconnect_itself_still_closes() -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        raise WebSocketDisconnect(1000)

    sent = await run(app, websocket_scope())
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]


# --- errors -----------------------------------------------------------------------------


async def test_an_error_before_accept_is_a_500_response_where_the_server_can(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        raise RuntimeError("secret detail")

    response = await refusal_by(app, raises=RuntimeError)
    assert response.status_code == 500
    assert "secret" not in response.text
    assert not [r for r in caplog.records if r.name == "microasgi"]


async def test_an_error_before_accept_is_a_403_without_the_extension(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        raise RuntimeError("boom")

    assert (await refusal_by(app, extensions={}, raises=RuntimeError)).status_code == 403
    assert not [r for r in caplog.records if r.name == "microasgi"]
    sent = await run(app, websocket_scope(), raises=RuntimeError)
    assert [m["type"] for m in sent] == ["websocket.close"]


@WITH_AND_WITHOUT
async def test_an_http_exception_before_accept_becomes_the_denial(
    extensions: dict[str, Any] | None, caplog: pytest.LogCaptureFixture
) -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        raise HTTPException(401, "who are you?", headers={"WWW-Authenticate": "Bearer"})

    response = await refusal_by(app, extensions=extensions)
    if extensions is None:
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.text == "who are you?"
    else:
        assert response.status_code == 403
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@WITH_AND_WITHOUT
async def test_an_error_after_accept_closes_with_1011_then_reaches_the_server(
    extensions: dict[str, Any] | None, caplog: pytest.LogCaptureFixture
) -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        raise ValueError("handler bug")

    codes: list[int] = []

    async def talk() -> None:
        async with connected(app, "/ws", extensions) as ws:
            await ws.send_text("go")
            with pytest.raises(WebSocketDisconnect) as info:
                await ws.receive_text()
            codes.append(info.value.code)

    with anyio.fail_after(5), pytest.raises(ValueError, match="handler bug"):
        await talk()
    assert codes == [1011]
    assert not [r for r in caplog.records if r.name == "microasgi"]


async def test_exception_handlers_answer_errors_before_accept() -> None:
    app = App()

    class Unauthorized(Exception):
        pass

    @app.exception_handler(Unauthorized)
    async def unauthorized(connection: Any, exc: Unauthorized) -> JSONResponse:
        return JSONResponse({"error": "unauthorized", "path": connection.path}, 401)

    @app.exception_handler(404)
    async def not_found(connection: Any, exc: HTTPException) -> PlainTextResponse:
        return PlainTextResponse("nothing here", 404)

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        raise Unauthorized()

    with anyio.fail_after(5):
        async with TestClient(app) as client:
            response = await refusal(client)
            assert response.status_code == 401
            assert response.json() == {"error": "unauthorized", "path": "/ws"}
            response = await refusal(client, "/nowhere")
            assert (response.status_code, response.text) == (404, "nothing here")


async def test_an_exception_handler_that_fails_gives_a_500_denial(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.exception_handler(KeyError)
    async def broken(connection: Any, exc: KeyError) -> None:
        raise RuntimeError("handler is broken too")

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        raise KeyError("x")

    sent = await run(app, websocket_scope(extensions=WS_RESPONSE), raises=RuntimeError)
    assert sent[0]["type"] == "websocket.http.response.start"
    assert sent[0]["status"] == 500


@WITH_AND_WITHOUT
async def test_an_unknown_path_is_refused_before_accept(
    extensions: dict[str, Any] | None,
) -> None:
    app = echo_app()
    response = await refusal_by(app, "/nope", extensions)
    assert response.status_code == (404 if extensions is None else 403)

    sent = await run(app, websocket_scope("/nope"))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]


async def test_an_http_route_is_not_a_websocket_route() -> None:
    app = App()

    @app.get("/page")
    async def page(request: Request) -> str:
        return "hi"

    sent = await run(app, websocket_scope("/page", extensions=WS_RESPONSE))
    assert sent[0]["type"] == "websocket.http.response.start"
    assert sent[0]["status"] == 404


# --- deny -------------------------------------------------------------------------------


def deny_app(response: Any) -> App:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.deny(response)

    return app


async def test_deny_sends_one_start_and_one_complete_body() -> None:
    response = JSONResponse({"error": "bad token"}, 401, headers={"WWW-Authenticate": "Bearer"})
    sent = await run(deny_app(response), websocket_scope(extensions=WS_RESPONSE))
    assert [m["type"] for m in sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    start, body = sent
    assert start["status"] == 401
    headers = dict(start["headers"])
    assert headers[b"www-authenticate"] == b"Bearer"
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == str(len(b'{"error":"bad token"}')).encode()
    assert body["body"] == b'{"error":"bad token"}'
    assert body.get("more_body", False) is False


async def test_deny_shows_the_response_to_the_test_client() -> None:
    app = deny_app(JSONResponse({"error": "bad token"}, 401, headers={"X-Why": "token"}))
    response = await refusal_by(app)
    assert response.status_code == 401
    assert response.headers["x-why"] == "token"
    assert response.json() == {"error": "bad token"}


async def test_deny_without_the_extension_is_a_plain_close_the_server_makes_403() -> None:
    app = deny_app(JSONResponse({"error": "bad token"}, 401))
    sent = await run(app, websocket_scope())
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert (await refusal_by(app, extensions={})).status_code == 403


async def test_deny_with_a_streaming_response_still_sends_the_whole_body_at_once() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"not "
        yield b"allowed"

    app = deny_app(StreamingResponse(parts(), 403, media_type="text/plain"))
    sent = await run(app, websocket_scope(extensions=WS_RESPONSE))
    assert [m["type"] for m in sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert sent[1]["body"] == b"not allowed"
    assert dict(sent[0]["headers"])[b"content-length"] == b"11"


async def test_deny_runs_the_responses_background_task() -> None:
    ran: list[str] = []

    async def note() -> None:
        ran.append("background")

    app = deny_app(PlainTextResponse("no", 403, background=note))
    await run(app, websocket_scope(extensions=WS_RESPONSE))
    assert ran == ["background"]


async def test_deny_after_accept_is_a_programming_error() -> None:
    app = App()
    errors: list[RuntimeError] = []

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.deny(PlainTextResponse("late", 403))
        except RuntimeError as exc:
            errors.append(exc)

    sent = await run(app, websocket_scope(extensions=WS_RESPONSE))
    assert len(errors) == 1
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]


async def test_close_before_accept_refuses_the_connection() -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.close()

    sent = await run(app, websocket_scope(extensions=WS_RESPONSE))
    assert [m["type"] for m in sent] == ["websocket.close"]


async def test_a_handler_returning_without_accepting_refuses_the_connection() -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        pass

    assert (await refusal_by(app)).status_code == 403


# --- routing ----------------------------------------------------------------------------


async def test_path_params_arrive_converted_as_keyword_arguments() -> None:
    app = App()
    seen: list[Any] = []

    @app.websocket("/rooms/{room}/seats/{seat:int}")
    async def endpoint(websocket: WebSocket, room: str, seat: int) -> None:
        seen.append((room, seat, websocket.path_params))
        await websocket.accept()

    with anyio.fail_after(5):
        async with TestClient(app) as client, client.websocket_connect("/rooms/blue/seats/7"):
            pass
    assert seen == [("blue", 7, {"room": "blue", "seat": 7})]


async def test_websocket_routes_through_include_router_and_mount() -> None:
    router = Router()

    @router.websocket("/feed/{name}")
    async def feed(websocket: WebSocket, name: str) -> None:
        await websocket.accept()
        await websocket.send_text(f"router {name} {websocket.scope['root_path']!r}")

    child = App()

    @child.websocket("/live")
    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(f"child {websocket.path} {websocket.scope['root_path']!r}")

    app = App()
    app.include_router(router, prefix="/api")
    app.mount("/sub", child)

    with anyio.fail_after(5):
        async with TestClient(app) as client:
            async with client.websocket_connect("/api/feed/news") as ws:
                assert await ws.receive_text() == "router news ''"
            async with client.websocket_connect("/sub/live") as ws:
                assert await ws.receive_text() == "child /sub/live '/sub'"
            assert (await refusal(client, "/sub/dead")).status_code == 404


async def test_errors_in_a_mounted_app_close_once() -> None:
    child = App()

    @child.websocket("/live")
    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        raise RuntimeError("child bug")

    app = App()
    app.mount("/sub", child)
    sent = await run(app, websocket_scope("/sub/live"), raises=RuntimeError)
    assert [(m["type"], m.get("code")) for m in sent] == [
        ("websocket.accept", None),
        ("websocket.close", 1011),
    ]


class PassThrough:
    """A pure ASGI middleware that changes nothing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class Crashing:
    """A middleware that fails on WebSockets before the app runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            raise RuntimeError("middleware bug")
        await self.app(scope, receive, send)


@pytest.mark.parametrize("ending", ["returns", "raises", "closes"])
async def test_with_middleware_a_connection_is_still_closed_exactly_once(ending: str) -> None:
    app = App()
    app.add_middleware(PassThrough)

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        if ending == "raises":
            raise RuntimeError("bug")
        if ending == "closes":
            await websocket.close(4000)

    sent = await run(app, websocket_scope(), raises=RuntimeError if ending == "raises" else None)
    expected = {"returns": 1000, "raises": 1011, "closes": 4000}[ending]
    assert [(m["type"], m.get("code")) for m in sent] == [
        ("websocket.accept", None),
        ("websocket.close", expected),
    ]


@WITH_AND_WITHOUT
async def test_a_middleware_failing_before_accept_refuses_the_connection(
    extensions: dict[str, Any] | None, caplog: pytest.LogCaptureFixture
) -> None:
    app = echo_app()
    app.add_middleware(Crashing)
    response = await refusal_by(app, "/echo", extensions, raises=RuntimeError)
    assert response.status_code == (500 if extensions is None else 403)
    assert not [r for r in caplog.records if r.name == "microasgi"]


# --- no leaks ---------------------------------------------------------------------------


async def test_errors_and_disconnects_leave_no_running_task() -> None:
    app = App()

    @app.websocket("/crash")
    async def crash(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        raise RuntimeError("crash")

    @app.websocket("/wait")
    async def wait(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text)

    @app.websocket("/deny")
    async def deny(websocket: WebSocket) -> None:
        await websocket.deny(PlainTextResponse("no", 403))

    async def crash_once(client: TestClient) -> None:
        async with client.websocket_connect("/crash") as ws:
            await ws.send_text("x")
            with pytest.raises(WebSocketDisconnect):
                await ws.receive_text()

    with anyio.fail_after(10):
        async with TestClient(app) as client:
            before = len(anyio.get_running_tasks())
            for _ in range(5):
                with pytest.raises(RuntimeError, match="crash"):
                    await crash_once(client)
                async with client.websocket_connect("/wait") as ws:
                    await ws.send_text("x")
                    assert await ws.receive_text() == "x"
                    await ws.close(1001)
                assert (await refusal(client, "/deny")).status_code == 403
            await anyio.lowlevel.checkpoint()
            assert len(anyio.get_running_tasks()) == before


# --- the test client --------------------------------------------------------------------


async def test_errors_from_the_test_body_come_out_unwrapped() -> None:
    with anyio.fail_after(5):
        async with TestClient(echo_app()) as client:
            with pytest.raises(KeyError):
                async with client.websocket_connect("/echo"):
                    raise KeyError("from the test")

            async def talk() -> None:
                async with client.websocket_connect("/echo") as ws:
                    await ws.send_text("x")
                    await ws.receive_text()
                    await ws.close(4003)
                    await ws.receive_text()

            with pytest.raises(WebSocketDisconnect) as info:
                await talk()
            assert info.value.code == 4003


async def test_an_error_escaping_the_app_reaches_the_test_unwrapped() -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return  # no lifespan support
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise LookupError("raw app bug")

    with anyio.fail_after(5):
        async with TestClient(raw) as client:
            with pytest.raises(LookupError):
                async with client.websocket_connect("/") as ws:
                    await ws.send_text("boom")


async def test_sending_to_an_app_that_ended_does_not_hang() -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    with anyio.fail_after(5):
        async with TestClient(app) as client, client.websocket_connect("/ws") as ws:
            with pytest.raises(WebSocketDisconnect):
                await ws.receive_text()
            for _ in range(200):  # more than any buffer
                await ws.send_text("into the void")


async def test_a_denied_app_runs_to_its_end() -> None:
    done: list[str] = []
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.deny(PlainTextResponse("no", 403))
        await anyio.sleep(0.01)
        done.append("after deny")

    with anyio.fail_after(5):
        async with TestClient(app) as client:
            assert (await refusal(client)).status_code == 403
    assert done == ["after deny"]


# --- examples/chat.py and examples/deny.py ------------------------------------------------


@pytest.fixture
def chat_app(monkeypatch: pytest.MonkeyPatch) -> App:
    from examples import chat

    # Rooms of its own, in memory, whatever REDIS_URL says (tests/interop runs it on Redis).
    monkeypatch.setattr(chat, "broadcast", Broadcast("memory://"))
    return chat.app


async def test_chat_broadcasts_to_everyone_in_the_room_and_no_one_else(chat_app: App) -> None:
    def said(user: str, text: str) -> dict[str, str]:
        return {"user": user, "text": text}

    with anyio.fail_after(5):
        async with (
            TestClient(chat_app) as client,
            client.websocket_connect("/ws/lobby?name=ann") as ann,
        ):
            assert await ann.receive_json() == said("*", "ann joined")
            async with (
                client.websocket_connect("/ws/lobby?name=bob") as bob,
                client.websocket_connect("/ws/attic?name=cat") as cat,
            ):
                assert await ann.receive_json() == said("*", "bob joined")
                assert await bob.receive_json() == said("*", "bob joined")
                assert await cat.receive_json() == said("*", "cat joined")
                await ann.send_text("hello")
                assert await ann.receive_json() == said("ann", "hello")
                assert await bob.receive_json() == said("ann", "hello")
                # cat's next message is its own: nothing from the lobby came before it.
                await cat.send_text("anyone?")
                assert await cat.receive_json() == said("cat", "anyone?")
                await bob.close()
                assert await ann.receive_json() == said("*", "bob left")
            # The room keeps no history: a newcomer hears only what comes after it joined.
            async with client.websocket_connect("/ws/lobby?name=dan") as dan:
                assert await dan.receive_json() == said("*", "dan joined")
            assert await ann.receive_json() == said("*", "dan joined")


async def drain(ws: WebSocketTestSession) -> int:
    """Read until the server closes; return how many messages came before the close."""
    count = 0
    try:
        while True:
            await ws.receive()
            count += 1
    except WebSocketDisconnect:
        return count


async def test_chat_drops_a_client_too_slow_to_keep_up(
    chat_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from examples import chat

    monkeypatch.setattr(chat, "OUTBOX_SIZE", 2)
    with anyio.fail_after(10):
        async with (
            TestClient(chat_app) as client,
            client.websocket_connect("/ws/lobby?name=fast") as fast,
            client.websocket_connect("/ws/lobby?name=slow") as slow,
        ):
            # The test client buffers 100 messages per connection, the chat 2 more: past
            # that, slow (which reads nothing) is dropped instead of holding fast up.
            assert [(await fast.receive_json())["text"] for _ in range(2)] == [
                "fast joined",
                "slow joined",
            ]
            notices: list[str] = []
            for n in range(150):
                await fast.send_text(f"m{n}")
                while (text := (await fast.receive_json())["text"]) != f"m{n}":
                    notices.append(text)
            assert notices == ["slow left"]
            received = await drain(slow)
            assert slow.close_code == 1013
            assert 100 <= received < 150


async def test_chat_leaves_no_task_behind(chat_app: App) -> None:
    with anyio.fail_after(5):
        async with TestClient(chat_app) as client:
            before = len(anyio.get_running_tasks())
            for _ in range(3):
                async with (
                    client.websocket_connect("/ws/r?name=a") as a,
                    client.websocket_connect("/ws/r?name=b") as b,
                ):
                    await a.send_text("x")
                    await b.close(1001)
            await anyio.lowlevel.checkpoint()
            assert len(anyio.get_running_tasks()) == before
            page = await client.get("/")
            assert page.status_code == 200
            assert "new WebSocket" in page.text


async def test_chat_page_keeps_the_prefix_it_is_served_under(chat_app: App) -> None:
    parent = App()
    parent.mount("/chat", chat_app)
    with anyio.fail_after(5):
        async with TestClient(parent) as client:
            page = await client.get("/chat/")
            assert '<script type="application/json" id="base">"/chat"</script>' in page.text
            async with client.websocket_connect("/chat/ws/lobby?name=x") as ws:
                assert await ws.receive_json() == {"user": "*", "text": "x joined"}


@pytest.mark.parametrize(
    ("query", "headers", "error"),
    [
        ("", {}, "missing token"),
        ("?token=nope", {}, "invalid token"),
        ("", {"Authorization": "Bearer nope"}, "invalid token"),
    ],
)
async def test_deny_example_answers_401_with_json(
    query: str, headers: dict[str, str], error: str
) -> None:
    from examples.deny import app

    with anyio.fail_after(5):
        async with TestClient(app) as client:
            response = await refusal(client, "/ws" + query) if not headers else None
            if headers:
                try:
                    async with client.websocket_connect("/ws", headers=headers):
                        pass
                except WebSocketDenied as exc:
                    response = exc.response
    assert response is not None
    assert response.status_code == 401
    assert response.json() == {"error": error}
    assert response.headers["www-authenticate"] == 'Bearer realm="echo"'
    assert response.headers["content-type"] == "application/json"
    # A server without websocket.http.response: a plain 403.
    assert (await refusal_by(app, "/ws" + query, extensions={})).status_code == 403


@pytest.mark.parametrize(
    ("query", "headers"), [("?token=s3cret", {}), ("", {"Authorization": "Bearer s3cret"})]
)
async def test_deny_example_echoes_text_and_bytes_with_the_token(
    query: str, headers: dict[str, str]
) -> None:
    from examples.deny import app

    with anyio.fail_after(5):
        async with (
            TestClient(app) as client,
            client.websocket_connect("/ws" + query, headers=headers) as ws,
        ):
            await ws.send_text("héllo")
            assert await ws.receive_text() == "héllo"
            await ws.send_bytes(b"\x00\xff")
            assert await ws.receive_bytes() == b"\x00\xff"


async def test_the_showcase_serves_the_chat_and_the_guarded_echo() -> None:
    from examples.showcase import app

    with anyio.fail_after(5):
        async with TestClient(app) as client:
            index = await client.get("/")
            for link in ('href="/chat/"', 'href="/push/"', "/deny/ws?token=s3cret"):
                assert link in index.text
            assert (await client.get("/api/items/7")).json()["id"] == 7
            assert "new WebSocket" in (await client.get("/chat/")).text
            async with client.websocket_connect("/chat/ws/lobby?name=z") as ws:
                assert await ws.receive_json() == {"user": "*", "text": "z joined"}
            denied = await refusal(client, "/deny/ws")
            assert (denied.status_code, denied.json()) == (401, {"error": "missing token"})
            async with client.websocket_connect("/deny/ws?token=s3cret") as ws:
                await ws.send_text("hi")
                assert await ws.receive_text() == "hi"
