"""The TestClient behaves like a careful server and a cookie-keeping client."""

from __future__ import annotations

from typing import Any

import pytest

from microasgi import App, PlainTextResponse, Request, Response
from microasgi._types import Message, Receive, Scope, Send
from microasgi.testing import DEFAULT_EXTENSIONS, TestClient, TestResponse

pytestmark = pytest.mark.anyio


async def test_request_shapes() -> None:
    app = App()

    @app.route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def echo(request: Request) -> dict[str, Any]:
        return {
            "method": request.method,
            "type": request.headers.get("content-type"),
            "body": (await request.body()).decode(),
            "query": list(request.query.items()),
        }

    async with TestClient(app) as client:
        r = await client.post("/echo", json={"a": 1})
        assert r.json()["type"] == "application/json"
        assert r.json()["body"] == '{"a": 1}'
        r = await client.put("/echo", data={"x": "1 2", "y": ["a", "b"]})
        assert r.json()["body"] == "x=1+2&y=a&y=b"
        r = await client.patch("/echo", content=b"raw")
        assert (r.json()["method"], r.json()["body"]) == ("PATCH", "raw")
        r = await client.delete("/echo", params={"a": "1"})
        assert r.json()["query"] == [["a", "1"]]
        r = await client.request("GET", "/echo?x=1", params=[("y", "2")])
        assert r.json()["query"] == [["x", "1"], ["y", "2"]]
        r = await client.post("/echo", files={"f": ("a.txt", b"data", "text/plain")})
        assert r.json()["type"].startswith("multipart/form-data; boundary=")
        assert 'filename="a.txt"' in r.json()["body"]


async def test_response_fields() -> None:
    app = App()
    app.add_route("/", lambda request: {"é": 1})
    async with TestClient(app) as client:
        r = await client.get("/")
    assert isinstance(r, TestResponse)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == '{"é":1}'.encode()
    assert r.text == '{"é":1}'
    assert r.json() == {"é": 1}
    assert (r.pushes, r.early_hints, dict(r.trailers)) == ([], [], {})


async def test_cookie_jar_honours_path_and_expiry() -> None:
    app = App()

    @app.get("/set")
    async def set_(request: Request) -> Response:
        response = PlainTextResponse("")
        response.set_cookie("keep", "1")
        response.set_cookie("short", "2", max_age=0)
        response.set_cookie("old", "3", expires="Thu, 01 Jan 1970 00:00:00 GMT")
        response.set_cookie("api", "4", path="/api")
        return response

    @app.get("/{p:path}")
    async def read(request: Request, p: str) -> dict[str, str]:
        return request.cookies

    async with TestClient(app) as client:
        await client.get("/set")
        assert client.cookies == {"keep": "1", "api": "4"}
        assert (await client.get("/other")).json() == {"keep": "1"}
        assert (await client.get("/api/x")).json() == {"keep": "1", "api": "4"}
        assert (await client.get("/apix")).json() == {"keep": "1"}
        assert (await client.get("/x", cookies={"extra": "e"})).json() == {
            "keep": "1",
            "extra": "e",
        }


async def test_extensions_default_and_none_and_custom() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan")
        seen.append(scope["extensions"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with TestClient(app) as client:
        await client.get("/")
    async with TestClient(app, extensions=None) as client:
        await client.get("/")
    async with TestClient(app, extensions={"http.response.push": {}}) as client:
        await client.get("/")
    assert set(seen[0]) == set(DEFAULT_EXTENSIONS) == set(seen[1])
    assert set(DEFAULT_EXTENSIONS) == {
        "http.response.push",
        "websocket.http.response",
        "http.response.early_hint",
        "http.response.trailers",
    }
    assert seen[2] == {"http.response.push": {}}


async def test_protocol_violations_are_reported() -> None:
    async def no_response(scope: Scope, receive: Receive, send: Send) -> None:
        return

    async def unfinished(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})

    async def late_hint(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.early_hint", "links": [b"</a.css>"]})

    client = TestClient(no_response)
    with pytest.raises(RuntimeError, match="without sending a response"):
        await client.get("/")
    with pytest.raises(RuntimeError, match="before completing"):
        await TestClient(unfinished).get("/")
    with pytest.raises(RuntimeError, match=r"before http\.response\.start"):
        await TestClient(late_hint).get("/")


async def test_receive_after_the_body_waits_for_the_end_then_disconnects() -> None:
    messages: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        messages.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        messages.append(await receive())

    r = await TestClient(app).post("/", content=b"abc")
    assert r.content == b"done"
    assert messages == [
        {"type": "http.request", "body": b"abc", "more_body": False},
        {"type": "http.disconnect"},
    ]


async def test_absolute_urls_are_accepted_like_a_location_header() -> None:
    app = App()
    app.add_route("/target", lambda request: dict(request.query))
    async with TestClient(app) as client:
        response = await client.get("http://testserver/target?x=1")
    assert response.json() == {"x": "1"}


async def test_a_push_after_the_body_is_refused_like_servers_do() -> None:
    async def late_push(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        await send({"type": "http.response.push", "path": "/late.css", "headers": []})

    with pytest.raises(RuntimeError, match="after the body was complete"):
        await TestClient(late_push).get("/")
