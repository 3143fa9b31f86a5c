"""Routing: converters, matching order, backtracking, 404/405/OPTIONS/HEAD, slashes, url_for,
and registration: handler signatures, method tokens, routers included before their routes.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from asgi_harness import http_scope, run

from microasgi import App, NoMatchFound, PlainTextResponse, Request, Router, WebSocket, routing
from microasgi.routing import HTTP_METHODS, Miss
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio


def named(name: str) -> Any:
    """A handler that reports its own name and params (so tests see who answered)."""

    async def handler(request: Request, **params: Any) -> dict[str, Any]:
        return {"route": name, **{k: str(v) for k, v in params.items()}}

    handler.__name__ = name
    return handler


class Visits:
    """How many trie nodes the router's lookups visited."""

    count = 0


@pytest.fixture
def visits(monkeypatch: pytest.MonkeyPatch) -> Visits:
    """Count every call of the router's recursive tree search, from now on."""
    visited = Visits()
    walk = routing._Tree.walk

    def counting(self: Any, *args: Any) -> Any:
        visited.count += 1
        return walk(self, *args)

    monkeypatch.setattr(routing._Tree, "walk", counting)
    return visited


async def test_converters_arrive_converted() -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.get("/i/{v:int}")
    async def i(request: Request, v: int) -> str:
        seen["int"] = v
        return "ok"

    @app.get("/f/{v:float}")
    async def f(request: Request, v: float) -> str:
        seen["float"] = v
        return "ok"

    @app.get("/u/{v:uuid}")
    async def u(request: Request, v: uuid.UUID) -> str:
        seen["uuid"] = v
        return "ok"

    @app.get("/p/{v:path}")
    async def p(request: Request, v: str) -> str:
        seen["path"] = v
        return "ok"

    @app.get("/s/{v}")
    async def s(request: Request, v: str) -> str:
        seen["str"] = v
        assert request.path_params == {"v": v}
        return "ok"

    some = uuid.uuid4()
    async with TestClient(app) as client:
        assert (await client.get("/i/42")).status_code == 200
        assert (await client.get("/f/2.5")).status_code == 200
        assert (await client.get(f"/u/{some}")).status_code == 200
        assert (await client.get("/p/a/b/c.txt")).status_code == 200
        assert (await client.get("/s/hello%20world")).status_code == 200
        assert (await client.get("/i/abc")).status_code == 404
        assert (await client.get("/i/-1")).status_code == 404
        assert (await client.get("/u/not-a-uuid")).status_code == 404
    assert seen == {
        "int": 42,
        "float": 2.5,
        "uuid": some,
        "path": "a/b/c.txt",
        "str": "hello world",
    }


async def test_huge_int_is_a_404_not_a_500() -> None:
    # Python refuses to parse more than 4,300 digits: that must not become a 500.
    app = App()
    app.add_route("/i/{v:int}", named("i"))
    async with TestClient(app) as client:
        response = await client.get("/i/" + "9" * 5000)
    assert response.status_code == 404


async def test_a_static_routes_path_params_are_its_own_per_request() -> None:
    # A parameterless route's lookup result is built once; the dict a request sees is not.
    app = App()

    @app.get("/static")
    async def static(request: Request) -> dict[str, Any]:
        seen = dict(request.path_params)
        request.path_params["mine"] = "set by the previous request"
        return seen

    async with TestClient(app) as client:
        assert (await client.get("/static")).json() == {}
        assert (await client.get("/static")).json() == {}


async def test_only_ascii_digits_are_an_int_and_a_str_segment_is_never_empty() -> None:
    # The walk tests [0-9]+ and [^/]+ with string methods: exactly what the regexes accept.
    app = App()

    @app.get("/i/{v:int}")
    async def i(request: Request, v: int) -> str:
        return repr(v)

    @app.get("/s/{v}/x")
    async def s(request: Request, v: str) -> str:
        return v

    async with TestClient(app) as client:
        assert (await client.get("/i/007")).text == "7"
        for other in ("%D9%A3", "%C2%B9", "1%E2%80%8B", "%EF%BC%91", "1_000", "+1", "%201"):
            assert (await client.get(f"/i/{other}")).status_code == 404, other
        assert (await client.get("/s/a/x")).text == "a"
        assert (await client.get("/s//x")).status_code == 404


async def test_converters_sharing_a_regex_each_decide_for_their_own_routes() -> None:
    class Even:
        regex = "[0-9]+"

        def convert(self, value: str) -> int:
            if int(value) % 2:
                raise ValueError("odd")
            return int(value)

        def to_string(self, value: Any) -> str:
            return str(value)

    app = App()
    app.register_converter("even", Even())

    @app.get("/n/{x:even}")
    async def even(request: Request, x: int) -> str:
        return f"even {x!r}"

    @app.get("/n/{x:int}")
    async def number(request: Request, x: int) -> str:
        return f"int {x!r}"

    @app.get("/m/{x:even}/a")
    async def even_a(request: Request, x: int) -> str:
        return f"even/a {x!r}"

    @app.get("/m/{y:int}/b")
    async def int_b(request: Request, y: int) -> str:
        return f"int/b {y!r}"

    async with TestClient(app) as client:
        assert (await client.get("/n/4")).text == "even 4"
        assert (await client.get("/n/3")).text == "int 3"  # the even converter refused it
        assert (await client.get("/m/4/a")).text == "even/a 4"
        assert (await client.get("/m/4/b")).text == "int/b 4"  # backtracked to the int edge
        assert (await client.get("/m/3/a")).status_code == 404


async def test_custom_converter_registered_after_the_route_still_applies() -> None:
    class Hex:
        regex = "[0-9a-f]+"

        def convert(self, value: str) -> int:
            return int(value, 16)

        def to_string(self, value: Any) -> str:
            return format(int(value), "x")

    app = App()
    sub = Router()
    got: list[int] = []

    @sub.get("/color/{c:hex}", name="color")
    async def color(request: Request, c: int) -> str:
        got.append(c)
        return "ok"

    app.include_router(sub, prefix="/api")
    app.register_converter("hex", Hex())  # after the routes, on the App: still serves them
    async with TestClient(app) as client:
        assert (await client.get("/api/color/ff")).status_code == 200
        assert (await client.get("/api/color/zz")).status_code == 404
    assert got == [255]
    assert app.url_path_for("color", c=255) == "/api/color/ff"


async def test_router_converter_serves_that_routers_routes() -> None:
    class Upper:
        regex = "[A-Z]+"

        def convert(self, value: str) -> str:
            return value.lower()

        def to_string(self, value: Any) -> str:
            return str(value).upper()

    sub = Router()
    sub.register_converter("upper", Upper())
    sub.add_route("/{w:upper}", named("shout"))
    app = App()
    app.include_router(sub, prefix="/s")
    async with TestClient(app) as client:
        response = await client.get("/s/HEY")
    assert response.json() == {"route": "shout", "w": "hey"}


async def test_unknown_converter_is_a_clear_error() -> None:
    router = Router()
    router.add_route("/{x:nope}", named("x"))
    with pytest.raises(LookupError, match="nope"):
        router.prepare()


def test_malformed_templates_are_refused() -> None:
    router = Router()
    with pytest.raises(ValueError, match="start with"):
        router.add_route("no-slash", named("x"))
    router.add_route("/{x", named("x"))
    with pytest.raises(ValueError, match="malformed"):
        router.prepare()


async def test_trie_backtracks() -> None:
    # Litestar's trie commits to /a/b and never tries /a/{x}/d.
    app = App()
    app.add_route("/a/b/{y:int}", named("first"))
    app.add_route("/a/{x}/d", named("second"))
    async with TestClient(app) as client:
        assert (await client.get("/a/b/d")).json() == {"route": "second", "x": "b"}
        assert (await client.get("/a/b/3")).json() == {"route": "first", "y": "3"}


async def test_static_segment_beats_parameter_whatever_the_order() -> None:
    app = App()
    app.add_route("/users/{user_id}", named("by_id"))
    app.add_route("/users/me", named("me"))
    async with TestClient(app) as client:
        assert (await client.get("/users/me")).json() == {"route": "me"}
        assert (await client.get("/users/7")).json() == {"route": "by_id", "user_id": "7"}


async def test_typed_beats_str_beats_path_and_ties_go_to_registration() -> None:
    app = App()
    app.add_route("/x/{rest:path}", named("path"))
    app.add_route("/x/{s}", named("str"))
    app.add_route("/x/{n:int}", named("int"))
    app.add_route("/y/{a}", named("first"))
    app.add_route("/y/{b}", named("second"))
    async with TestClient(app) as client:
        assert (await client.get("/x/5")).json()["route"] == "int"
        assert (await client.get("/x/five")).json()["route"] == "str"
        assert (await client.get("/x/five/six")).json()["route"] == "path"
        assert (await client.get("/y/z")).json()["route"] == "first"


async def test_route_accepting_the_method_beats_a_more_specific_one() -> None:
    app = App()
    app.add_route("/users/me", named("me"), methods=["GET"])
    app.add_route("/users/{id}", named("update"), methods=["POST"])
    async with TestClient(app) as client:
        assert (await client.post("/users/me")).json() == {"route": "update", "id": "me"}
        assert (await client.get("/users/me")).json() == {"route": "me"}


async def test_405_allow_is_the_union_of_every_route_on_the_path() -> None:
    # Starlette lists only the first route's methods.
    app = App()
    app.add_route("/things/{id}", named("read"), methods=["GET"])
    app.add_route("/things/{id:int}", named("change"), methods=["PUT", "PATCH"])
    app.add_route("/things/{id}", named("remove"), methods=["DELETE"])
    async with TestClient(app) as client:
        response = await client.post("/things/3")
    assert response.status_code == 405
    allow = {m.strip() for m in response.headers["allow"].split(",")}
    assert allow == {"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"}


async def test_options_on_a_known_path_is_204_with_allow() -> None:
    app = App()
    app.add_route("/r", named("r"), methods=["GET", "POST"])
    async with TestClient(app) as client:
        response = await client.options("/r")
        missing = await client.options("/nothing")
    assert response.status_code == 204
    assert response.content == b""
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert missing.status_code == 404


async def test_head_on_a_get_route_has_the_get_headers_and_no_body() -> None:
    app = App()

    @app.get("/page")
    async def page(request: Request) -> str:
        return "x" * 100

    async with TestClient(app) as client:
        get = await client.get("/page")
        head = await client.head("/page")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"] == "100"
    assert head.headers["content-type"] == get.headers["content-type"]


async def test_methods_are_upper_cased_and_others_get_a_405() -> None:
    app = App()
    app.add_route("/x", named("x"), methods=[m.lower() for m in ["GET", "post"]])
    async with TestClient(app) as client:
        assert (await client.request("FROB", "/x")).status_code == 405
        assert (await client.request("post", "/x")).status_code == 200
    assert {"GET", "POST", "DELETE", "PATCH", "PUT", "OPTIONS", "HEAD"} <= HTTP_METHODS


async def test_redirect_slashes_both_ways_keeping_the_query() -> None:
    app = App()
    app.add_route("/a", named("a"))
    app.add_route("/b/", named("b"))
    async with TestClient(app) as client:
        to_a = await client.get("/a/?x=1&y=2")
        to_b = await client.get("/b?x=1")
        nowhere = await client.get("/c/")
    assert to_a.status_code == 308
    assert to_a.headers["location"] == "/a?x=1&y=2"
    assert to_b.status_code == 308
    assert to_b.headers["location"] == "/b/?x=1"
    assert nowhere.status_code == 404


async def test_redirect_slashes_can_be_turned_off() -> None:
    app = App(redirect_slashes=False)
    app.add_route("/a", named("a"))
    async with TestClient(app) as client:
        assert (await client.get("/a/")).status_code == 404


async def test_redirect_keeps_root_path() -> None:
    app = App()
    app.add_route("/a", named("a"))
    async with TestClient(app, root_path="/prefix") as client:
        response = await client.get("/a/")
    assert response.headers["location"] == "/prefix/a"


async def test_bad_percent_encoding_and_odd_paths_are_404_not_500() -> None:
    app = App()
    app.add_route("/a/{x}", named("a"))
    async with TestClient(app) as client:
        assert (await client.get("/a/%zz")).status_code == 200
        assert (await client.get("/%ff%fe")).status_code == 404
        assert (await client.get("//double//slash")).status_code == 404


async def test_path_not_starting_with_slash_is_a_404() -> None:
    app = App()
    app.add_route("/", named("root"))
    sent = await run(app, http_scope("*", "OPTIONS"))
    assert sent[0]["status"] == 404


def test_url_path_for_builds_and_refuses_clearly() -> None:
    app = App()
    app.add_route("/users/{user_id:int}", named("user"))
    app.add_route("/files/{p:path}", named("file"))
    app.add_route("/tags/{t}", named("tag"))
    assert app.url_path_for("user", user_id=3) == "/users/3"
    assert app.url_path_for("file", p="a b/c.txt") == "/files/a%20b/c.txt"
    with pytest.raises(NoMatchFound):
        app.url_path_for("nope")
    with pytest.raises(NoMatchFound, match="missing user_id"):
        app.url_path_for("user")
    with pytest.raises(NoMatchFound, match="unexpected"):
        app.url_path_for("user", user_id=1, extra=2)
    with pytest.raises(NoMatchFound, match="bad value"):
        app.url_path_for("user", user_id="x")
    with pytest.raises(NoMatchFound, match="bad value"):
        app.url_path_for("tag", t="a/b")
    assert issubclass(NoMatchFound, LookupError)


def test_default_route_name_is_the_handler_name() -> None:
    app = App()

    @app.get("/profile")
    async def profile(request: Request) -> str:
        return ""

    assert app.url_path_for("profile") == "/profile"


def test_include_router_does_not_namespace_names() -> None:
    api = Router()
    api.add_route("/items/{i:int}", named("item"))
    app = App()
    app.include_router(api, prefix="/api/v1")
    assert app.url_path_for("item", i=1) == "/api/v1/items/1"


def test_routing_cost_does_not_scan_the_table(visits: Visits) -> None:
    # Not a timing: count the trie nodes one lookup visits with 1,000 routes beside ours.
    app = App()
    for n in range(1000):
        app.add_route(f"/r{n}/{{x:int}}/detail", named(f"r{n}"))
        app.add_route(f"/static/{n}", named(f"s{n}"))
    app.add_route("/target/{x:int}/detail", named("target"))
    app.router.prepare()
    visits.count = 0  # from here on
    # What the dispatcher asks, once per request:
    match = app.router.lookup("http", "/target/5/detail", "GET")
    assert not isinstance(match, Miss)
    route, params = match
    assert route.name == "target"
    assert params == {"x": 5}
    assert visits.count <= 4  # root, "target", the int parameter, "detail"
    visits.count = 0
    match = app.router.lookup("http", "/static/999", "GET")
    assert not isinstance(match, Miss)
    assert match[0].name == "s999"
    assert visits.count == 0  # a static path is one dict hit


def test_mount_prefixes_are_literal() -> None:
    router = Router()
    with pytest.raises(ValueError, match="literal"):
        router.mount("/users/{id}", App())


async def test_a_mounted_router_is_served_as_part_of_the_app() -> None:
    # Its errors meet the App's exception handlers and debug, as its own routes' do.
    router = Router()
    router.add_route("/items/{i:int}", named("item"))

    @router.get("/broken")
    async def broken(request: Request) -> str:
        raise LookupError("in a mounted router")

    app = App(debug=True)
    app.mount("/v2", router)

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("the app's 404", 404)

    async with TestClient(app, raise_server_exceptions=False) as client:
        assert (await client.get("/v2/items/2")).json() == {"route": "item", "i": "2"}
        assert (await client.get("/v2/missing")).text == "the app's 404"
        assert (await client.post("/v2/items/2")).status_code == 405
        failed = await client.get("/v2/broken")
    assert failed.status_code == 500
    assert "LookupError: in a mounted router" in failed.text  # the App's debug


async def test_a_mounted_router_serves_under_the_prefix() -> None:
    router = Router()
    router.add_route("/items/{i:int}", named("item"))
    app = App()
    app.mount("/v2", router, name="v2")
    async with TestClient(app) as client:
        assert (await client.get("/v2/items/2")).json() == {"route": "item", "i": "2"}
    assert app.url_path_for("v2:item", i=9) == "/v2/items/9"


async def test_slash_redirect_never_leaves_the_host() -> None:
    # "//evil.com" in a Location header is a protocol-relative URL to another site.
    app = App()
    app.add_route("/{prefix:path}/{name}", named("deep"))
    async with TestClient(app) as client:
        response = await client.get("//evil.com/")
    assert response.status_code == 308
    assert response.headers["location"] == "/evil.com"


def test_a_parameter_name_used_twice_is_refused() -> None:
    router = Router()
    router.add_route("/{x}/{x:int}", named("twice"))
    with pytest.raises(ValueError, match="appears twice"):
        router.prepare()


def test_path_parameters_try_only_the_splits_that_can_match(visits: Visits) -> None:
    # A long URL against path routes must cost a linear walk, not every split.
    app = App()
    app.add_route("/files/{p:path}", named("file"))
    app.add_route("/a/{x:path}/edit/{y:path}", named("two"))
    app.add_route("/b/{x:path}/tail", named("tail"), methods=["GET"])
    app.router.prepare()
    visits.count = 0  # from here on
    deep = "/".join(["s"] * 5000)
    found = app.router.lookup("http", f"/files/{deep}", "POST")  # a 405: every match walked
    assert isinstance(found, Miss)
    assert found.allow == {"GET", "HEAD"}
    assert visits.count < 10
    visits.count = 0
    found = app.router.lookup("http", f"/b/{deep}/tail", "GET")
    assert not isinstance(found, Miss)
    assert found[1] == {"x": deep}
    assert visits.count < 10
    found = app.router.lookup("http", f"/a/{deep}/edit/{deep}", "GET")
    assert not isinstance(found, Miss)
    assert found[1] == {"x": deep, "y": deep}


# --- matching order: the rules of API.md "Details", each with the case that broke it ---


@pytest.mark.parametrize("edit_first", [True, False], ids=["edit-first", "edit-last"])
async def test_a_path_parameter_followed_by_segments_beats_one_ending_the_route(
    edit_first: bool,
) -> None:
    # Once /files/{p:path} took /files/x/y/edit whole, whatever the registration order.
    app = App()
    routes = [("/files/{p:path}/edit", "edit"), ("/files/{p:path}", "file")]
    for path, name in routes if edit_first else routes[::-1]:
        app.add_route(path, named(name))
    app.add_route("/docs/{p:path}/edit", named("post_edit"), methods=["POST"])
    app.add_route("/docs/{p:path}", named("doc"))
    async with TestClient(app) as client:
        assert (await client.get("/files/x/y/edit")).json() == {"route": "edit", "p": "x/y"}
        assert (await client.get("/files/x/edit/edit")).json() == {"route": "edit", "p": "x/edit"}
        assert (await client.get("/files/x/y")).json() == {"route": "file", "p": "x/y"}
        # the path parameter takes at least one segment: nothing is left for "/edit"
        assert (await client.get("/files/edit")).json() == {"route": "file", "p": "edit"}
        # a route accepting the method still comes first
        assert (await client.get("/docs/a/edit")).json() == {"route": "doc", "p": "a/edit"}
        assert (await client.post("/docs/a/edit")).json() == {"route": "post_edit", "p": "a"}


class Lang:
    """A converter whose regex has a capturing group of its own."""

    regex = "(en|fr)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: Any) -> str:
        return str(value)


class Locale:
    """A converter whose regex has named groups of its own."""

    regex = "(?P<language>[a-z]{2})(?:-(?P<region>[A-Z]{2}))?"

    def convert(self, value: str) -> tuple[str, ...]:
        return tuple(value.split("-"))

    def to_string(self, value: Any) -> str:
        return "-".join(value)


async def test_a_converters_own_groups_do_not_stop_it_matching() -> None:
    # A group in a converter's regex once shifted the captured values: a silent 404.
    app = App()
    app.register_converter("lang", Lang())
    app.register_converter("locale", Locale())
    app.add_route("/{lang:lang}/about", named("about"))
    app.add_route("/shop/{where:locale}", named("shop"))
    app.add_route("/pair/{a:lang}-{b:int}", named("pair"))
    app.add_route("/mix/{loc:locale}.{a:lang}", named("mix"))
    app.add_route("/names/{first}-{second:int}", named("names"))
    async with TestClient(app) as client:
        assert (await client.get("/fr/about")).json() == {"route": "about", "lang": "fr"}
        assert (await client.get("/de/about")).status_code == 404
        shop = await client.get("/shop/fr-CA")
        assert shop.json() == {"route": "shop", "where": "('fr', 'CA')"}
        assert (await client.get("/shop/fr")).json() == {"route": "shop", "where": "('fr',)"}
        assert (await client.get("/pair/en-12")).json() == {"route": "pair", "a": "en", "b": "12"}
        mix = await client.get("/mix/en-GB.fr")
        assert mix.json() == {"route": "mix", "loc": "('en', 'GB')", "a": "fr"}
        names = await client.get("/names/ada-lovelace-1815")
        assert names.json() == {"route": "names", "first": "ada-lovelace", "second": "1815"}
    assert app.url_path_for("about", lang="en") == "/en/about"
    assert app.url_path_for("shop", where=("fr", "CA")) == "/shop/fr-CA"


def test_a_converter_with_named_groups_twice_in_one_segment_is_a_clear_error() -> None:
    router = Router()
    router.register_converter("locale", Locale())
    router.add_route("/{a:locale}-{b:locale}", named("twice"))
    with pytest.raises(ValueError, match=r"\{a:locale\}-\{b:locale\}"):
        router.prepare()


async def test_a_slash_redirect_considers_routes_of_every_method() -> None:
    # POST /a/ with only GET /a was a 404, while GET /a/ was redirected.
    app = App()
    app.add_route("/a", named("a"))
    app.add_route("/b/", named("b"), methods=["POST"])
    app.add_route("/items/{i:int}", named("item"), methods=["PUT"])
    async with TestClient(app) as client:
        moved = await client.post("/a/?x=1")
        assert moved.status_code == 308
        assert moved.headers["location"] == "/a?x=1"
        there = await client.post(moved.headers["location"])
        assert there.status_code == 405
        assert there.headers["allow"] == "GET, HEAD, OPTIONS"
        assert (await client.get("/b")).headers["location"] == "/b/"
        assert (await client.delete("/items/3/")).headers["location"] == "/items/3"
        assert (await client.post("/c/")).status_code == 404


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


async def test_a_decorator_supplying_arguments_declares_what_its_wrapper_takes() -> None:
    # Through __wrapped__, the handler seems to need "user", which no path gives; the
    # decorator says what its wrapper takes instead, as inspect.signature documents.
    def with_user(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        async def wrapper(request: Request, **params: Any) -> Any:
            return await func(request, user="ada", **params)

        wrapper.__signature__ = inspect.signature(wrapper, follow_wrapped=False)  # type: ignore[attr-defined]
        return wrapper

    @with_user
    async def profile(request: Request, user: str, section: str) -> str:
        return f"{user}/{section}"

    app = App()
    app.add_route("/profile/{section}", profile)
    async with TestClient(app) as client:
        assert (await client.get("/profile/posts")).text == "ada/posts"


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


class Walks:
    """How many times the router walked its tree from the root."""

    count = 0


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> Walks:
    """Count every walk of a lookup tree from its root (a route decided once is one;
    a static path is a dict hit, no walk)."""
    counted = Walks()
    walk = routing._Tree.walk

    def counting(self: Any, node: Any, *args: Any) -> Any:
        if node is self.root:
            counted.count += 1
        return walk(self, node, *args)

    monkeypatch.setattr(routing._Tree, "walk", counting)
    return counted


async def test_a_mounted_apps_request_and_a_404_decide_the_route_once(walks: Walks) -> None:
    app = App(redirect_slashes=False)
    child = App()
    child.add_route("/items/{i:int}", named("item"))
    app.mount("/child", child)
    app.add_route("/users/{u:int}", named("user"))
    async with TestClient(app) as client:
        walks.count = 0
        assert (await client.get("/child/items/1")).status_code == 200
        assert walks.count == 2  # one in the parent, one in the mounted App
        walks.count = 0
        assert (await client.get("/users/abc")).status_code == 404
        assert walks.count == 1
        walks.count = 0
        assert (await client.post("/users/1")).status_code == 405
        assert walks.count == 1
