"""Request hooks: before_request, after_request and before_websocket, on App and Router."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
from asgi_harness import run, websocket_scope

from microasgi import (
    App,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    Request,
    Response,
    Router,
    WebSocket,
)
from microasgi._types import Receive, Scope, Send
from microasgi.testing import TestClient, WebSocketDenied

pytestmark = pytest.mark.anyio


def recorder(log: list[str]) -> tuple[Any, Any]:
    """Hook makers that note their name in ``log``."""

    def before(name: str) -> Any:
        async def hook(request: Request) -> None:
            log.append(name)

        return hook

    def after(name: str) -> Any:
        async def hook(request: Request, response: Response) -> Response:
            log.append(name)
            response.headers.add("x-hooks", name)
            return response

        return hook

    return before, after


def app_with_router(log: list[str]) -> tuple[App, Router]:
    """An App and an included Router, each with two before and two after hooks."""
    before, after = recorder(log)
    app, router = App(), Router()
    app.before_request(before("app-1"))
    app.before_request(before("app-2"))
    app.after_request(after("app-1"))
    app.after_request(after("app-2"))
    router.before_request(before("router-1"))
    router.before_request(before("router-2"))
    router.after_request(after("router-1"))
    router.after_request(after("router-2"))

    @router.get("/items/{item_id:int}")
    async def item(request: Request, item_id: int) -> str:
        log.append("handler")
        return f"item {item_id}"

    @app.get("/plain")
    async def plain(request: Request) -> str:
        log.append("handler")
        return "plain"

    app.include_router(router, prefix="/api")
    return app, router


# --- order --------------------------------------------------------------------------


async def test_before_hooks_in_order_app_first_after_hooks_unwind_router_first() -> None:
    log: list[str] = []
    app, _ = app_with_router(log)
    async with TestClient(app) as client:
        response = await client.get("/api/items/3")
    assert response.text == "item 3"
    assert log == [
        "app-1",
        "app-2",
        "router-1",
        "router-2",
        "handler",
        "router-2",
        "router-1",
        "app-2",
        "app-1",
    ]
    assert response.headers.getall("x-hooks") == ["router-2", "router-1", "app-2", "app-1"]


async def test_a_routers_hooks_apply_to_its_routes_only() -> None:
    log: list[str] = []
    app, _ = app_with_router(log)
    async with TestClient(app) as client:
        response = await client.get("/plain")
    assert response.text == "plain"
    assert log == ["app-1", "app-2", "handler", "app-2", "app-1"]


async def test_nested_routers_outermost_first() -> None:
    log: list[str] = []
    before, after = recorder(log)
    app, outer, inner = App(), Router(), Router()
    for name, owner in [("app", app), ("outer", outer), ("inner", inner)]:
        owner.before_request(before(name))
        owner.after_request(after(name))

    @inner.get("/leaf")
    async def leaf(request: Request) -> str:
        log.append("handler")
        return "leaf"

    outer.include_router(inner, prefix="/in")
    app.include_router(outer, prefix="/out")
    async with TestClient(app) as client:
        assert (await client.get("/out/in/leaf")).text == "leaf"
    assert log == ["app", "outer", "inner", "handler", "inner", "outer", "app"]


async def test_hooks_added_after_routes_and_includes_still_apply() -> None:
    log: list[str] = []
    before, after = recorder(log)
    app, router = App(), Router()

    @router.get("/late")
    async def late(request: Request) -> str:
        log.append("handler")
        return "late"

    app.include_router(router)
    async with TestClient(app) as client:
        await client.get("/late")
        router.before_request(before("router"))
        app.after_request(after("app"))
        await client.get("/late")
    assert log == ["handler", "router", "handler", "app"]


async def test_a_router_included_twice_brings_its_hooks_to_both_places() -> None:
    log: list[str] = []
    before, _ = recorder(log)
    router = Router()
    router.before_request(before("router"))

    @router.get("/x")
    async def x(request: Request) -> str:
        return "x"

    first, second = App(), App()
    first.include_router(router, prefix="/a")
    second.include_router(router)
    async with TestClient(first) as a, TestClient(second) as b:
        assert (await a.get("/a/x")).text == "x"
        assert (await b.get("/x")).text == "x"
    assert log == ["router", "router"]


async def test_hooks_and_handler_share_one_request() -> None:
    app = App()
    seen: list[Request] = []

    @app.before_request
    async def load_user(request: Request) -> None:
        request.state.user = "ada"
        seen.append(request)

    @app.after_request
    async def stamp(request: Request, response: Response) -> Response:
        seen.append(request)
        response.headers["x-user"] = request.state.user
        return response

    @app.get("/me")
    async def me(request: Request) -> str:
        seen.append(request)
        return str(request.state.user)

    async with TestClient(app) as client:
        response = await client.get("/me")
    assert (response.text, response.headers["x-user"]) == ("ada", "ada")
    assert len(seen) == 3
    assert seen[0] is seen[1] is seen[2]


# --- before hooks that answer -------------------------------------------------------


async def test_a_before_hook_value_answers_and_skips_the_rest() -> None:
    log: list[str] = []
    before, after = recorder(log)
    app = App()
    app.before_request(before("first"))

    @app.before_request
    async def gate(request: Request) -> Any:
        if "token" not in request.query:
            return {"error": "no token"}, 401
        return None

    app.before_request(before("third"))
    app.after_request(after("after"))

    @app.get("/secret")
    async def secret(request: Request) -> str:
        log.append("handler")
        return "secret"

    async with TestClient(app) as client:
        refused = await client.get("/secret")
        assert log == ["first", "after"]
        log.clear()
        allowed = await client.get("/secret?token=1")
    assert (refused.status_code, refused.json()) == (401, {"error": "no token"})
    assert refused.headers["content-type"] == "application/json"
    assert refused.headers["x-hooks"] == "after"
    assert allowed.text == "secret"
    assert log == ["first", "third", "handler", "after"]


async def test_http_exception_in_a_before_hook_answers_and_after_hooks_see_it() -> None:
    log: list[str] = []
    _, after = recorder(log)
    app = App()
    app.after_request(after("after"))

    @app.before_request
    async def forbid(request: Request) -> None:
        raise HTTPException(403, "members only", headers={"x-reason": "member"})

    @app.get("/club")
    async def club(request: Request) -> str:
        log.append("handler")
        return "welcome"

    async with TestClient(app) as client:
        response = await client.get("/club")
    assert (response.status_code, response.text) == (403, "members only")
    assert response.headers["x-reason"] == "member"
    assert response.headers["x-hooks"] == "after"
    assert log == ["after"]


async def test_after_hooks_run_on_a_handlers_http_exception_shaped_by_its_handler() -> None:
    log: list[str] = []
    _, after = recorder(log)
    app = App()
    app.after_request(after("after"))

    @app.exception_handler(404)
    async def not_found(request: Request, exc: HTTPException) -> Response:
        return JSONResponse({"missing": request.path}, 404)

    @app.get("/items/{item_id:int}")
    async def item(request: Request, item_id: int) -> str:
        raise HTTPException(404)

    async with TestClient(app) as client:
        response = await client.get("/items/9")
    assert (response.status_code, response.json()) == (404, {"missing": "/items/9"})
    assert response.headers["x-hooks"] == "after"


async def test_after_hooks_run_on_an_error_a_class_handler_answers() -> None:
    app = App()

    class OutOfStock(Exception):
        pass

    @app.exception_handler(OutOfStock)
    async def out_of_stock(request: Request, exc: OutOfStock) -> Response:
        return PlainTextResponse("sold out", 409)

    @app.after_request
    async def stamp(request: Request, response: Response) -> Response:
        response.headers["x-stamped"] = "yes"
        return response

    @app.post("/buy")
    async def buy(request: Request) -> str:
        raise OutOfStock()

    async with TestClient(app) as client:
        response = await client.post("/buy")
    assert (response.status_code, response.text) == (409, "sold out")
    assert response.headers["x-stamped"] == "yes"


# --- crashes: a 500, no after hooks -------------------------------------------------


async def test_a_crashing_handler_is_a_500_without_after_hooks_and_propagates() -> None:
    log: list[str] = []
    before, after = recorder(log)
    app = App()
    app.before_request(before("before"))
    app.after_request(after("after"))

    @app.get("/boom")
    async def boom(request: Request) -> str:
        raise ValueError("kaboom")

    async with TestClient(app) as client:
        with pytest.raises(ValueError, match="kaboom"):
            await client.get("/boom")
    async with TestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/boom")
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert "x-hooks" not in response.headers
    assert log == ["before", "before"]


async def test_a_crashing_before_hook_is_a_500_and_the_handler_never_runs() -> None:
    log: list[str] = []
    _, after = recorder(log)
    app = App()
    app.after_request(after("after"))

    @app.before_request
    async def broken(request: Request) -> None:
        raise RuntimeError("no database")

    @app.get("/")
    async def index(request: Request) -> str:
        log.append("handler")
        return "index"

    async with TestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert log == []


async def test_the_500_handler_shapes_a_crash_but_after_hooks_still_skip_it() -> None:
    log: list[str] = []
    _, after = recorder(log)
    app = App()
    app.after_request(after("after"))

    @app.exception_handler(500)
    async def oops(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("we are on it", 500)

    @app.get("/boom")
    async def boom(request: Request) -> str:
        raise ValueError("kaboom")

    async with TestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/boom")
    assert (response.status_code, response.text) == (500, "we are on it")
    assert log == []


# --- after hooks that change or replace ---------------------------------------------


async def test_an_after_hook_may_replace_the_response() -> None:
    app = App()

    @app.after_request
    async def wrap(request: Request, response: Response) -> Response:
        return JSONResponse({"wrapped": response.body.decode()}, 200)

    @app.get("/")
    async def index(request: Request) -> str:
        return "inner"

    async with TestClient(app) as client:
        assert (await client.get("/")).json() == {"wrapped": "inner"}


async def test_an_after_hook_returning_none_is_a_clear_error() -> None:
    app = App()

    @app.after_request
    async def forgot(request: Request, response: Response) -> None:
        response.headers["x-lost"] = "1"

    @app.get("/")
    async def index(request: Request) -> str:
        return "index"

    async with TestClient(app) as client:
        with pytest.raises(TypeError, match="forgot returned None"):
            await client.get("/")
    async with TestClient(app, raise_server_exceptions=False) as client:
        assert (await client.get("/")).status_code == 500


async def test_an_http_exception_from_an_after_hook_answers() -> None:
    app = App()

    @app.after_request
    async def no_empty(request: Request, response: Response) -> Response:
        if not response.body:
            raise HTTPException(404, "nothing here")
        return response

    @app.get("/empty")
    async def empty(request: Request) -> str:
        return ""

    async with TestClient(app) as client:
        response = await client.get("/empty")
    assert (response.status_code, response.text) == (404, "nothing here")


async def test_head_goes_through_the_hooks_without_a_body() -> None:
    log: list[str] = []
    before, after = recorder(log)
    app = App()
    app.before_request(before("before"))
    app.after_request(after("after"))

    @app.get("/page")
    async def page(request: Request) -> str:
        return "a page"

    async with TestClient(app) as client:
        response = await client.head("/page")
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-length"] == "6"
    assert response.headers["x-hooks"] == "after"
    assert log == ["before", "after"]


# --- sync hooks ---------------------------------------------------------------------


async def test_sync_hooks_run_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []
    app = App()

    @app.before_request
    def gate(request: Request) -> Any:
        threads.append(threading.get_ident())
        return ("closed", 503) if request.query.get("closed") else None

    @app.after_request
    def stamp(request: Request, response: Response) -> Response:
        threads.append(threading.get_ident())
        response.headers["x-sync"] = "yes"
        return response

    @app.get("/")
    async def index(request: Request) -> str:
        return "open"

    async with TestClient(app) as client:
        opened = await client.get("/")
        closed = await client.get("/?closed=1")
    assert (opened.text, opened.headers["x-sync"]) == ("open", "yes")
    assert (closed.status_code, closed.text, closed.headers["x-sync"]) == (503, "closed", "yes")
    assert len(threads) == 4
    assert loop_thread not in threads


# --- requests no route answers ------------------------------------------------------


async def test_app_hooks_see_a_404_and_a_405_but_an_included_routers_do_not() -> None:
    log: list[str] = []
    app, _ = app_with_router(log)
    async with TestClient(app) as client:
        missing = await client.get("/nowhere")
        wrong_method = await client.delete("/api/items/3")
    assert missing.status_code == 404
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "GET, HEAD, OPTIONS")
    assert missing.headers.getall("x-hooks") == ["app-2", "app-1"]
    assert log == ["app-1", "app-2", "app-2", "app-1"] * 2


async def test_an_app_before_hook_can_answer_for_a_path_no_route_has() -> None:
    app = App()

    @app.before_request
    async def maintenance(request: Request) -> Any:
        return "down for maintenance", 503

    async with TestClient(app) as client:
        response = await client.get("/anything")
    assert (response.status_code, response.text) == (503, "down for maintenance")


# --- mounts -------------------------------------------------------------------------


async def test_a_mounted_router_gets_the_apps_hooks_then_its_own() -> None:
    log: list[str] = []
    before, after = recorder(log)
    app, admin = App(), Router()
    app.before_request(before("app"))
    app.after_request(after("app"))
    admin.before_request(before("admin"))
    admin.after_request(after("admin"))

    @admin.get("/users")
    async def users(request: Request) -> str:
        log.append("handler")
        return "users"

    app.mount("/admin", admin)
    async with TestClient(app) as client:
        assert (await client.get("/admin/users")).text == "users"
        assert log == ["app", "admin", "handler", "admin", "app"]
        log.clear()
        assert (await client.get("/admin/nothing")).status_code == 404
    assert log == ["app", "admin", "admin", "app"]  # the mount's 404 is the router's


async def test_a_router_mounted_inside_an_included_router_gets_both_outer_hooks() -> None:
    log: list[str] = []
    before, _ = recorder(log)
    app, section, mounted = App(), Router(), Router()
    app.before_request(before("app"))
    section.before_request(before("section"))
    mounted.before_request(before("mounted"))

    @mounted.get("/leaf")
    async def leaf(request: Request) -> str:
        return "leaf"

    section.mount("/m", mounted)
    app.include_router(section, prefix="/s")
    async with TestClient(app) as client:
        assert (await client.get("/s/m/leaf")).text == "leaf"
    assert log == ["app", "section", "mounted"]


async def test_a_mounted_app_keeps_its_own_hooks_only() -> None:
    log: list[str] = []
    before, after = recorder(log)
    parent, child = App(), App()
    parent.before_request(before("parent"))
    parent.after_request(after("parent"))
    child.before_request(before("child"))
    child.after_request(after("child"))

    @child.get("/hello")
    async def hello(request: Request) -> str:
        return "hello"

    parent.mount("/child", child)
    async with TestClient(parent) as client:
        response = await client.get("/child/hello")
    assert response.text == "hello"
    assert log == ["child", "child"]
    assert response.headers.getall("x-hooks") == ["child"]


async def test_a_foreign_asgi_app_gets_no_hooks() -> None:
    log: list[str] = []
    before, after = recorder(log)
    app = App()
    app.before_request(before("app"))
    app.after_request(after("app"))

    async def foreign(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":  # no lifespan support: tolerated
            await PlainTextResponse("foreign")(scope, receive, send)

    app.mount("/raw", foreign)
    async with TestClient(app) as client:
        response = await client.get("/raw/x")
    assert response.text == "foreign"
    assert "x-hooks" not in response.headers
    assert log == []


# --- WebSockets ---------------------------------------------------------------------


def websocket_app(log: list[str]) -> App:
    """An App with a before_websocket hook at each level and request hooks too."""
    before, after = recorder(log)
    app, router = App(), Router()
    app.before_request(before("request-hook"))
    app.after_request(after("request-hook"))

    @app.before_websocket
    async def app_check(websocket: WebSocket) -> None:
        log.append("app")
        if websocket.query.get("token") != "ok":
            raise HTTPException(401, "who are you?")

    @router.before_websocket
    def router_check(websocket: WebSocket) -> Any:  # sync: in a worker thread
        log.append("router")
        if websocket.query.get("room") == "closed":
            return PlainTextResponse("room closed", 423)
        return None

    @router.websocket("/chat")
    async def chat(websocket: WebSocket) -> None:
        log.append("handler")
        await websocket.accept()
        await websocket.send_text("welcome")
        await websocket.close()

    app.include_router(router, prefix="/ws")
    return app


async def test_before_websocket_hooks_run_app_first_then_the_handler() -> None:
    log: list[str] = []
    app = websocket_app(log)
    async with TestClient(app) as client, client.websocket_connect("/ws/chat?token=ok") as ws:
        assert await ws.receive_text() == "welcome"
    assert log == ["app", "router", "handler"]  # no request hook ran


async def test_an_http_exception_in_before_websocket_denies_with_its_response() -> None:
    log: list[str] = []
    app = websocket_app(log)
    async with TestClient(app) as client:
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/ws/chat"):
                pass
    assert (denied.value.response.status_code, denied.value.response.text) == (401, "who are you?")
    assert log == ["app"]


async def test_without_the_extension_a_denial_is_a_close_the_server_answers_403() -> None:
    log: list[str] = []
    app = websocket_app(log)
    sent = await run(app, websocket_scope("/ws/chat"))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]


async def test_a_value_from_before_websocket_denies_with_it() -> None:
    log: list[str] = []
    app = websocket_app(log)
    async with TestClient(app) as client:
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/ws/chat?token=ok&room=closed"):
                pass
    assert (denied.value.response.status_code, denied.value.response.text) == (423, "room closed")
    assert log == ["app", "router"]


async def test_a_crash_in_before_websocket_denies_and_propagates() -> None:
    app = App()

    @app.before_websocket
    async def broken(websocket: WebSocket) -> None:
        raise RuntimeError("session store down")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()

    with anyio.fail_after(5):
        async with TestClient(app) as client:
            with pytest.raises(RuntimeError, match="session store down"):
                async with client.websocket_connect("/ws"):
                    pass
        async with TestClient(app, raise_server_exceptions=False) as client:
            with pytest.raises(WebSocketDenied) as denied:
                async with client.websocket_connect("/ws"):
                    pass
    assert denied.value.response.status_code == 500


async def test_request_hooks_do_not_run_for_websockets_nor_websocket_hooks_for_requests() -> None:
    log: list[str] = []
    app = websocket_app(log)

    @app.get("/page")
    async def page(request: Request) -> str:
        return "page"

    async with TestClient(app) as client:
        assert (await client.get("/page")).text == "page"
    assert log == ["request-hook", "request-hook"]


async def test_a_mounted_routers_websockets_get_the_apps_hooks_then_its_own() -> None:
    log: list[str] = []
    app, live = App(), Router()

    @app.before_websocket
    async def app_hook(websocket: WebSocket) -> None:
        log.append("app")

    @live.before_websocket
    async def live_hook(websocket: WebSocket) -> None:
        log.append("live")
        if websocket.path_params.get("feed") == "closed":
            raise HTTPException(403, "closed feed")

    @live.websocket("/{feed}")
    async def feed(websocket: WebSocket, feed: str) -> None:
        await websocket.accept()
        await websocket.send_text(feed)

    app.mount("/live", live)
    async with TestClient(app) as client:
        async with client.websocket_connect("/live/news") as ws:
            assert await ws.receive_text() == "news"
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/live/closed"):
                pass
    assert denied.value.response.status_code == 403
    assert log == ["app", "live", "app", "live"]
