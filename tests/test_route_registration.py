"""Registering routes: handler signatures, method tokens, and routers included before
their routes were added. A mistake is refused when the route is registered, never
first noticed by a request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

from microasgi import App, Request, Router, WebSocket, routing
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio


def named(name: str) -> Any:
    """A handler that reports its own name and params."""

    async def handler(request: Request, **params: Any) -> dict[str, Any]:
        return {"route": name, **{k: str(v) for k, v in params.items()}}

    handler.__name__ = name
    return handler


class Lang:
    regex = "en|fr"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: Any) -> str:
        return str(value)


# --- handlers must take their path's parameters -------------------------------------


def test_a_handler_missing_a_path_parameter_is_refused_when_registered() -> None:
    # It used to register fine and answer every request with a 500.
    app = App()

    def user(request: Request, id: int) -> str:
        return str(id)

    with pytest.raises(TypeError, match=r"'/users/\{user_id:int\}'.*user_id"):
        app.add_route("/users/{user_id:int}", user)
    with pytest.raises(TypeError, match="user_id"):
        app.get("/users/{user_id:int}")(user)


def test_a_handler_with_a_required_argument_the_path_lacks_is_refused() -> None:
    app = App()

    async def page(request: Request, page_id: int, lang: str) -> str:
        return lang

    with pytest.raises(TypeError, match=r"/pages/\{page_id:int\}.*lang"):
        app.add_route("/pages/{page_id:int}", page)

    async def nothing() -> str:  # not even the request
        return ""

    with pytest.raises(TypeError, match="'/'"):
        app.add_route("/", nothing)


def test_a_websocket_handler_missing_a_path_parameter_is_refused() -> None:
    app = App()

    async def room(websocket: WebSocket) -> None:
        await websocket.close()

    with pytest.raises(TypeError, match=r"/rooms/\{name\}.*name"):
        app.add_websocket_route("/rooms/{name}", room)
    with pytest.raises(TypeError, match="name"):
        app.websocket("/rooms/{name}")(room)


def test_a_decorated_handler_is_checked_by_its_own_signature() -> None:
    # functools.wraps sets __wrapped__: the wrapper's (*args, **kwargs) hides nothing.
    def logged(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        return wrapper

    @logged
    def wrong(request: Request, ident: int) -> str:
        return ""

    @logged
    def right(request: Request, item_id: int) -> str:
        return ""

    router = Router()
    with pytest.raises(TypeError, match="item_id"):
        router.add_route("/items/{item_id:int}", wrong)
    router.add_route("/items/{item_id:int}", right)


async def test_every_callable_that_can_take_the_parameters_is_accepted() -> None:
    app = App()

    async def spread(request: Request, **params: Any) -> dict[str, Any]:
        return {k: str(v) for k, v in params.items()}

    async def defaults(request: Request, a: str, b: str = "none") -> dict[str, str]:
        return {"a": a, "b": b}

    async def tagged(request: Request, a: str, tag: str) -> dict[str, str]:
        return {"a": a, "tag": tag}

    class Handler:
        async def __call__(self, request: Request, a: str) -> dict[str, str]:
            return {"object": a}

    def blocking(request: Request, a: str) -> str:
        return f"sync {a}"

    app.add_route("/spread/{a}/{b:int}", spread)
    app.add_route("/defaults/{a}", defaults)
    app.add_route("/partial/{a}", functools.partial(tagged, tag="t"))
    app.add_route("/object/{a}", Handler())
    app.add_route("/sync/{a}", blocking)
    app.add_route("/builtin", int)  # no signature to read: accepted, as before
    async with TestClient(app) as client:
        assert (await client.get("/spread/x/2")).json() == {"a": "x", "b": "2"}
        assert (await client.get("/defaults/x")).json() == {"a": "x", "b": "none"}
        assert (await client.get("/partial/x")).json() == {"a": "x", "tag": "t"}
        assert (await client.get("/object/x")).json() == {"object": "x"}
        assert (await client.get("/sync/x")).text == "sync x"


async def test_a_prefix_with_parameters_is_checked_against_the_included_handlers() -> None:
    sub = Router()

    async def show(request: Request, item: str) -> str:
        return item

    async def tenant_show(request: Request, item: str, tenant: str = "") -> str:
        # the router's own path has no tenant: it can only be optional here
        return f"{tenant}:{item}"

    sub.add_route("/items/{item}", show)
    app = App()
    with pytest.raises(TypeError, match=r"/\{tenant\}/items/\{item\}.*tenant"):
        app.include_router(sub, prefix="/{tenant}")

    ok = Router()
    ok.add_route("/items/{item}", tenant_show)
    app.include_router(ok, prefix="/{tenant}")
    with pytest.raises(TypeError, match="tenant"):  # added after the include: checked too
        ok.add_route("/other/{item}", show)
    async with TestClient(app) as client:
        assert (await client.get("/acme/items/3")).text == "acme:3"
        assert (await client.get("/acme/other/3")).status_code == 404
        assert (await client.get("/items/3")).status_code == 404


# --- method tokens ------------------------------------------------------------------


async def test_any_method_token_can_be_routed() -> None:
    # PROPFIND and QUERY were refused by an allowlist of nine methods.
    app = App()

    async def dav(request: Request) -> str:
        return request.method

    app.add_route("/dav", dav, methods=["PROPFIND", "mkcol", "QUERY"])
    async with TestClient(app) as client:
        assert (await client.request("PROPFIND", "/dav")).text == "PROPFIND"
        assert (await client.request("MKCOL", "/dav")).text == "MKCOL"
        assert (await client.request("QUERY", "/dav", content=b"q")).text == "QUERY"
        refused = await client.get("/dav")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "MKCOL, OPTIONS, PROPFIND, QUERY"


@pytest.mark.parametrize("method", ["GET POST", "", "GE(T", "GET\r\n", "G\u00c9T"])
def test_a_method_that_is_not_a_token_is_refused(method: str) -> None:
    router = Router()
    with pytest.raises(ValueError, match="not an HTTP method token"):
        router.add_route("/x", named("x"), methods=[method])


def test_methods_given_as_one_string_are_refused() -> None:
    # "GET" would otherwise be the methods G, E and T.
    router = Router()
    with pytest.raises(TypeError, match="list"):
        router.add_route("/x", named("x"), methods="GET")


# --- include_router sees what is added later ----------------------------------------


async def test_routes_added_to_a_router_after_it_was_included_are_served() -> None:
    # They were copied at include time: anything added later was a silent 404.
    api = Router()
    api.add_route("/early", named("early"))
    app = App()
    app.include_router(api, prefix="/api")
    async with TestClient(app) as client:
        assert (await client.get("/api/early")).json() == {"route": "early"}
        api.add_route("/late/{n:int}", named("late"))

        @api.websocket("/live/{room}")
        async def live(websocket: WebSocket, room: str) -> None:
            await websocket.accept()
            await websocket.send_text(room)

        inner = App()
        inner.add_route("/", named("inner"))
        api.mount("/inner", inner)
        assert (await client.get("/api/late/3")).json() == {"route": "late", "n": "3"}
        assert (await client.get("/api/inner/")).json() == {"route": "inner"}
        async with client.websocket_connect("/api/live/blue") as ws:
            assert await ws.receive_text() == "blue"
    assert app.url_path_for("late", n=4) == "/api/late/4"


async def test_a_router_included_in_an_included_router_is_seen_too() -> None:
    v1, users = Router(), Router()
    v1.include_router(users, prefix="/users")
    app = App()
    app.include_router(v1, prefix="/v1")
    users.add_route("/{user_id:int}", named("user"))
    app.register_converter("slug", Lang())  # registered last, on the App: serves them all
    users.add_route("/by/{s:slug}", named("slug"))
    async with TestClient(app) as client:
        assert (await client.get("/v1/users/7")).json() == {"route": "user", "user_id": "7"}
        assert (await client.get("/v1/users/by/en")).json() == {"route": "slug", "s": "en"}
        assert (await client.get("/v1/users/by/de")).status_code == 404
    assert app.url_path_for("user", user_id=1) == "/v1/users/1"


async def test_included_routes_keep_the_place_of_the_include_in_the_order() -> None:
    sub = Router()
    app = App()
    app.include_router(sub)
    app.add_route("/t/{b}", named("app"))
    sub.add_route("/t/{a}", named("sub"))  # added last, included first: a tie it wins
    async with TestClient(app) as client:
        assert (await client.get("/t/x")).json() == {"route": "sub", "a": "x"}


def test_a_router_cannot_include_itself() -> None:
    a, b = Router(), Router()
    with pytest.raises(ValueError, match="itself"):
        a.include_router(a)
    a.include_router(b, prefix="/b")
    with pytest.raises(ValueError, match="itself"):
        b.include_router(a, prefix="/a")


async def test_the_lookup_is_built_once_after_a_change_not_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds: list[int] = []
    build = routing.Router._build

    def counting(self: routing.Router) -> Any:
        builds.append(1)
        return build(self)

    monkeypatch.setattr(routing.Router, "_build", counting)
    api = Router()
    app = App()
    app.include_router(api, prefix="/api")
    async with TestClient(app) as client:
        api.add_route("/a", named("a"))
        builds.clear()
        for _ in range(3):
            assert (await client.get("/api/a")).status_code == 200
        assert len(builds) == 1  # the change rebuilt the App's lookup once
        api.add_route("/b", named("b"))
        for _ in range(3):
            assert (await client.get("/api/b")).status_code == 200
        assert len(builds) == 2
