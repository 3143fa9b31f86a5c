"""Class-based views: HTTPEndpoint (a method per verb) and WebSocketEndpoint."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from asgi_harness import CONNECT, run, websocket_scope

from microasgi import (
    App,
    HTTPException,
    JSONResponse,
    Request,
    Response,
    Router,
    WebSocket,
    WebSocketDisconnect,
    WebSocketException,
)
from microasgi.endpoints import HTTPEndpoint, WebSocketEndpoint
from microasgi.testing import TestClient, WebSocketDenied

pytestmark = pytest.mark.anyio

ITEMS = {1: "apple", 2: "pear"}


class ItemView(HTTPEndpoint):
    """GET and PUT one item, sync DELETE."""

    async def get(self, request: Request, item_id: int) -> Any:
        if item_id not in ITEMS:
            raise HTTPException(404, "no such item")
        return {"id": item_id, "name": ITEMS[item_id]}

    async def put(self, request: Request, item_id: int) -> Any:
        return {"id": item_id, "name": (await request.json())["name"]}, 201

    def delete(self, request: Request, item_id: int) -> Response:
        return Response(None, 204, {"x-thread": str(threading.get_ident())})


def item_app() -> App:
    app = App()
    app.route("/items/{item_id:int}")(ItemView)
    return app


# --- HTTPEndpoint -------------------------------------------------------------------


async def test_each_verb_goes_to_its_method_with_the_path_params() -> None:
    async with TestClient(item_app()) as client:
        got = await client.get("/items/1")
        put = await client.put("/items/2", json={"name": "plum"})
        missing = await client.get("/items/9")
        deleted = await client.delete("/items/1")
    assert got.json() == {"id": 1, "name": "apple"}
    assert (put.status_code, put.json()) == (201, {"id": 2, "name": "plum"})
    assert (missing.status_code, missing.text) == (404, "no such item")
    assert deleted.status_code == 204
    assert int(deleted.headers["x-thread"]) != threading.get_ident()  # sync: a worker thread


async def test_other_verbs_get_a_405_listing_the_views_and_options_a_204() -> None:
    async with TestClient(item_app()) as client:
        refused = await client.post("/items/1")
        options = await client.options("/items/1")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PUT"
    assert (options.status_code, options.headers["allow"]) == (204, refused.headers["allow"])


async def test_head_answers_with_gets_headers_and_no_body() -> None:
    async with TestClient(item_app()) as client:
        get = await client.get("/items/1")
        head = await client.head("/items/1")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == get.headers["content-length"]


async def test_a_view_may_answer_head_and_options_itself() -> None:
    class Explicit(HTTPEndpoint):
        async def get(self, request: Request) -> str:
            return "body"

        async def head(self, request: Request) -> Response:
            return Response(None, 200, {"x-head": "own"})

        async def options(self, request: Request) -> Response:
            return Response(None, 200, {"allow": "GET, HEAD, OPTIONS", "x-options": "own"})

    app = App()
    app.add_route("/explicit", Explicit)
    async with TestClient(app) as client:
        head = await client.head("/explicit")
        options = await client.options("/explicit")
    assert head.headers["x-head"] == "own"
    assert (options.status_code, options.headers["x-options"]) == (200, "own")


async def test_a_view_on_a_router_add_route_and_an_include_with_a_prefix_parameter() -> None:
    class Greeting(HTTPEndpoint):
        async def get(self, request: Request, name: str, lang: str = "en") -> str:
            return f"{lang}: hello {name}"

    router = Router()
    router.add_route("/hello/{name}", Greeting, name="greet")
    app = App()
    app.include_router(router, prefix="/{lang}")
    async with TestClient(app) as client:
        assert (await client.get("/fr/hello/ada")).text == "fr: hello ada"
    assert app.url_path_for("greet", lang="en", name="bob") == "/en/hello/bob"


async def test_each_request_gets_its_own_instance() -> None:
    class Counter(HTTPEndpoint):
        def __init__(self, request: Request, **params: Any) -> None:
            super().__init__(request, **params)
            self.count = 0

        async def get(self, request: Request) -> str:
            self.count += 1
            return str(self.count)

    app = App()
    app.add_route("/count", Counter)
    async with TestClient(app) as client:
        assert [(await client.get("/count")).text for _ in range(3)] == ["1", "1", "1"]


async def test_hooks_apply_to_a_view_as_to_a_function() -> None:
    app = item_app()

    @app.after_request
    async def stamp(request: Request, response: Response) -> Response:
        response.headers["x-view"] = "yes"
        return response

    async with TestClient(app) as client:
        assert (await client.get("/items/2")).headers["x-view"] == "yes"


async def test_methods_narrow_what_a_view_answers() -> None:
    app = App()
    app.add_route("/read-only/{item_id:int}", ItemView, methods=["GET"])
    async with TestClient(app) as client:
        assert (await client.get("/read-only/1")).status_code == 200
        refused = await client.delete("/read-only/1")
    assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD, OPTIONS")


def test_a_method_that_cannot_take_the_path_params_is_refused_at_registration() -> None:
    class Wrong(HTTPEndpoint):
        async def get(self, request: Request, item_id: int) -> str:
            return "ok"

        async def post(self, request: Request) -> str:  # forgot item_id
            return "ok"

    app = App()
    with pytest.raises(TypeError, match=r"route '/w/\{item_id\}'.*Wrong\.post\(self, request"):
        app.add_route("/w/{item_id}", Wrong)

    class Plain(HTTPEndpoint):
        async def get(self, request: Request) -> str:
            return "ok"

    router = Router()
    router.add_route("/plain", Plain)  # fine without parameters
    with pytest.raises(TypeError, match=r"'/\{tenant\}/plain'.*Plain\.get"):
        app.include_router(router, prefix="/{tenant}")


def test_a_view_without_verbs_or_asked_for_one_it_lacks_is_refused() -> None:
    class Empty(HTTPEndpoint):
        def helper(self) -> None: ...

    app = App()
    with pytest.raises(TypeError, match="defines no method"):
        app.add_route("/empty", Empty)
    with pytest.raises(TypeError, match="ItemView has no method for POST"):
        app.add_route("/items/{item_id:int}", ItemView, methods=["GET", "POST"])


async def test_a_view_used_outside_a_route_still_refuses_what_it_lacks() -> None:
    class OnlyGet(HTTPEndpoint):
        async def get(self, request: Request) -> str:
            return "got"

    scope = {"type": "http", "method": "POST", "headers": [], "path": "/"}
    with pytest.raises(HTTPException) as refused:
        await OnlyGet(Request(scope))
    assert refused.value.status_code == 405
    assert refused.value.headers == {"allow": "GET, HEAD, OPTIONS"}


# --- WebSocketEndpoint --------------------------------------------------------------


def endpoint_app(endpoint: type[WebSocketEndpoint], path: str = "/ws") -> App:
    app = App()
    app.add_websocket_route(path, endpoint)
    return app


class Echo(WebSocketEndpoint):
    """Echoes text; notes how the connection ended."""

    encoding = "text"
    ends: list[int]

    async def on_receive(self, websocket: WebSocket, data: str) -> None:
        if data == "rude":
            raise WebSocketException(1008, "be nice")
        if data == "crash":
            raise ValueError("echo broke")
        await websocket.send_text(f"echo {data}")

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        type(self).ends.append(close_code)


@pytest.fixture
def echo() -> type[Echo]:
    Echo.ends = []
    return Echo


async def test_text_messages_reach_on_receive_and_the_clients_close_on_disconnect(
    echo: type[Echo],
) -> None:
    async with TestClient(endpoint_app(echo)) as client, client.websocket_connect("/ws") as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "echo hi"
        await ws.close(4000)
    assert echo.ends == [4000]


async def test_a_binary_message_to_a_text_endpoint_closes_with_1003(echo: type[Echo]) -> None:
    async with TestClient(endpoint_app(echo)) as client, client.websocket_connect("/ws") as ws:
        await ws.send_bytes(b"\x00")
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
    assert closed.value.code == 1003
    assert echo.ends == [1003]


async def test_a_websocket_exception_in_on_receive_closes_with_its_code(echo: type[Echo]) -> None:
    async with TestClient(endpoint_app(echo)) as client, client.websocket_connect("/ws") as ws:
        await ws.send_text("rude")
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (1008, "be nice")
    assert echo.ends == [1008]


async def test_a_crash_in_on_receive_closes_1011_reports_it_and_propagates(
    echo: type[Echo],
) -> None:
    async with (
        TestClient(endpoint_app(echo), raise_server_exceptions=False) as client,
        client.websocket_connect("/ws") as ws,
    ):
        await ws.send_text("crash")
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
    assert closed.value.code == 1011
    assert echo.ends == [1011]
    async with TestClient(endpoint_app(echo)) as client:
        with pytest.raises(ValueError, match="echo broke"):
            async with client.websocket_connect("/ws") as ws:
                await ws.send_text("crash")


async def test_json_and_bytes_encodings() -> None:
    class Sum(WebSocketEndpoint):
        encoding = "json"

        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            await websocket.send_json({"sum": sum(data)})

    class Size(WebSocketEndpoint):
        encoding = "bytes"

        async def on_receive(self, websocket: WebSocket, data: bytes) -> None:
            await websocket.send_text(str(len(data)))

    async with TestClient(endpoint_app(Sum)) as client, client.websocket_connect("/ws") as ws:
        await ws.send_text("[1, 2, 3]")
        assert await ws.receive_json() == {"sum": 6}
        await ws.send_text("{not json")
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json()
    assert closed.value.code == 1007
    async with TestClient(endpoint_app(Size)) as client, client.websocket_connect("/ws") as ws:
        await ws.send_bytes(b"12345")
        assert await ws.receive_text() == "5"


async def test_without_an_encoding_on_receive_gets_the_raw_message() -> None:
    class Raw(WebSocketEndpoint):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            await websocket.send_text(data["type"] + ":" + str(data.get("text")))

    async with TestClient(endpoint_app(Raw)) as client, client.websocket_connect("/ws") as ws:
        await ws.send_text("x")
        assert await ws.receive_text() == "websocket.receive:x"


async def test_on_connect_may_choose_a_subprotocol_read_params_or_refuse() -> None:
    received: list[str] = []

    class Room(WebSocketEndpoint):
        encoding = "text"

        async def on_connect(self, websocket: WebSocket) -> None:
            if self.params["room"] == "locked":
                await websocket.deny(JSONResponse({"error": "locked"}, 423))
                return
            await websocket.accept(subprotocol="chat")
            await websocket.send_text(f"room {self.params['room']}")

        async def on_receive(self, websocket: WebSocket, data: str) -> None:
            received.append(data)

    app = endpoint_app(Room, "/rooms/{room}")
    async with TestClient(app) as client:
        async with client.websocket_connect("/rooms/blue", subprotocols=["chat"]) as ws:
            assert ws.accepted_subprotocol == "chat"
            assert await ws.receive_text() == "room blue"
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/rooms/locked"):
                pass
    assert (denied.value.response.status_code, denied.value.response.json()) == (
        423,
        {"error": "locked"},
    )
    assert received == []


async def test_an_on_connect_that_does_nothing_leaves_the_connection_refused() -> None:
    class Silent(WebSocketEndpoint):
        async def on_connect(self, websocket: WebSocket) -> None:
            pass

    sent = await run(endpoint_app(Silent), websocket_scope("/ws"), [CONNECT])
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]


def test_an_unknown_encoding_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(ValueError, match="encoding must be"):

        class Wrong(WebSocketEndpoint):
            encoding = "utf-8"  # type: ignore[assignment]
