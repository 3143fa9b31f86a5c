"""Authentication: a backend says who is asking, ``@requires`` says who may."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from asgi_harness import http_scope

from microasgi import App, HTTPException, JSONResponse, Request, Response, WebSocket
from microasgi.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    SimpleUser,
    UnauthenticatedUser,
    has_required_scope,
    requires,
)
from microasgi.middleware.authentication import AuthenticationMiddleware
from microasgi.requests import HTTPConnection
from microasgi.testing import TestClient, WebSocketDenied

pytestmark = pytest.mark.anyio

TOKENS = {"ada-token": ("ada", ["authenticated", "notes:read"]), "bob-token": ("bob", [])}


class TokenBackend(AuthenticationBackend):
    """Bearer tokens from a table; a malformed Authorization header is an error."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        header = conn.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("Authorization must be 'Bearer <token>'")
        if token not in TOKENS:
            return None
        name, scopes = TOKENS[token]
        return AuthCredentials(scopes), SimpleUser(name)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def make_app(**options: Any) -> App:
    app = App()

    @app.get("/login", name="login")
    async def login(request: Request) -> str:
        return f"please log in, then go to {request.query.get('next')}"

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        return {
            "user": request.user.display_name,
            "authenticated": request.user.is_authenticated,
            "scopes": request.auth.scopes,
        }

    @app.get("/notes/{note_id:int}")
    @requires("authenticated")
    async def note(request: Request, note_id: int) -> dict[str, Any]:
        return {"note": note_id, "owner": request.user.identity}

    @app.get("/sync")
    @requires(["authenticated", "notes:read"], status_code=404)
    def sync_notes(request: Request) -> str:
        return f"{request.user.display_name}'s notes, read in a worker thread"

    @app.get("/page")
    @requires("authenticated", redirect="login")
    async def page(request: Request) -> str:
        return "a page for members"

    @app.get("/api")
    @requires("authenticated", status_code=401)
    async def api(request: Request) -> dict[str, str]:
        return {"ok": "yes"}

    @app.websocket("/ws")
    @requires("authenticated")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(f"hello {websocket.user.display_name}")
        await websocket.close()

    app.add_middleware(AuthenticationMiddleware, **{"backend": TokenBackend(), **options})
    return app


# --- request.user and request.auth ------------------------------------------------------


async def test_the_backend_names_the_user_and_what_they_may_do() -> None:
    async with TestClient(make_app()) as client:
        known = await client.get("/whoami", headers=bearer("ada-token"))
        anonymous = await client.get("/whoami")
        unknown_token = await client.get("/whoami", headers=bearer("nope"))
    assert known.json() == {
        "user": "ada",
        "authenticated": True,
        "scopes": ["authenticated", "notes:read"],
    }
    nobody = {"user": "", "authenticated": False, "scopes": []}
    assert anonymous.json() == nobody
    assert unknown_token.json() == nobody


async def test_anonymous_credentials_are_not_shared_between_requests() -> None:
    app = make_app()

    @app.get("/grant")
    async def grant(request: Request) -> list[str]:
        request.auth.scopes.append("admin")
        return list(request.auth.scopes)

    async with TestClient(app) as client:
        assert (await client.get("/grant")).json() == ["admin"]
        assert (await client.get("/whoami")).json()["scopes"] == []


async def test_without_the_middleware_the_error_says_what_to_add() -> None:
    request = Request(http_scope())
    with pytest.raises(RuntimeError, match="AuthenticationMiddleware"):
        request.user  # noqa: B018
    with pytest.raises(RuntimeError, match="AuthenticationMiddleware"):
        request.auth  # noqa: B018


def test_the_users() -> None:
    ada = SimpleUser("ada")
    assert (ada.is_authenticated, ada.display_name, ada.identity) == (True, "ada", "ada")
    nobody = UnauthenticatedUser()
    assert (nobody.is_authenticated, nobody.display_name, nobody.identity) == (False, "", "")
    assert AuthCredentials().scopes == []
    assert AuthCredentials(("a", "b")).scopes == ["a", "b"]


# --- @requires on HTTP handlers -----------------------------------------------------------


async def test_requires_lets_in_who_has_the_scopes_and_refuses_the_others() -> None:
    async with TestClient(make_app()) as client:
        allowed = await client.get("/notes/7", headers=bearer("ada-token"))
        anonymous = await client.get("/notes/7")
        lacking = await client.get("/notes/7", headers=bearer("bob-token"))
    assert allowed.json() == {"note": 7, "owner": "ada"}
    assert anonymous.status_code == 403
    assert lacking.status_code == 403


async def test_a_sync_handler_stays_sync_and_every_scope_is_needed() -> None:
    async with TestClient(make_app()) as client:
        allowed = await client.get("/sync", headers=bearer("ada-token"))
        refused = await client.get("/sync", headers=bearer("bob-token"))
    assert allowed.text == "ada's notes, read in a worker thread"
    assert refused.status_code == 404  # the status_code chosen: the page's existence is hidden


async def test_status_code_chooses_the_refusal() -> None:
    async with TestClient(make_app()) as client:
        response = await client.get("/api")
    assert response.status_code == 401


async def test_redirect_sends_the_visitor_to_log_in_and_back() -> None:
    async with TestClient(make_app()) as client:
        response = await client.get("/page?tab=new&x=a%20b")
        assert response.status_code == 303
        assert response.headers["location"] == (
            "http://testserver/login?next=http%3A%2F%2Ftestserver%2Fpage%3Ftab%3Dnew%26x%3Da%2520b"
        )
        login = await client.get(response.headers["location"])
    assert login.text == "please log in, then go to http://testserver/page?tab=new&x=a%20b"


async def test_a_refusal_goes_through_the_apps_exception_handlers() -> None:
    app = make_app()

    @app.exception_handler(403)
    async def forbidden(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "members only"}, 403)

    async with TestClient(app) as client:
        response = await client.get("/notes/1")
    assert response.status_code == 403
    assert response.json() == {"error": "members only"}


def test_the_handler_keeps_its_name_signature_and_kind() -> None:
    async def show(request: Request, note_id: int) -> str:
        return "note"

    def show_sync(request: Request, note_id: int) -> str:
        return "note"

    guarded, guarded_sync = requires("authenticated")(show), requires("x")(show_sync)
    assert guarded.__name__ == "show"
    assert inspect.signature(guarded) == inspect.signature(show)
    assert inspect.iscoroutinefunction(guarded)
    assert not inspect.iscoroutinefunction(guarded_sync)
    assert inspect.signature(guarded_sync) == inspect.signature(show_sync)


async def test_routes_keep_their_default_names_and_params() -> None:
    app = make_app()
    assert app.url_path_for("note", note_id=3) == "/notes/3"
    assert app.url_path_for("sync_notes") == "/sync"


async def test_the_request_is_found_by_name_or_first_position() -> None:
    class Notes:
        @requires("authenticated")
        async def get(self, request: Request) -> str:
            return "from a method"

    @requires("authenticated")
    async def by_keyword(note_id: int, request: Request) -> str:
        return "by keyword"

    @requires("authenticated")
    async def first(req: Request) -> str:
        return "first position"

    request = Request(http_scope())
    request.scope["auth"] = AuthCredentials(["authenticated"])
    assert await Notes().get(request) == "from a method"
    assert await by_keyword(1, request=request) == "by keyword"
    assert await first(request) == "first position"
    request.scope["auth"] = AuthCredentials()
    with pytest.raises(HTTPException) as refused:
        await first(request)
    assert refused.value.status_code == 403


def test_a_handler_without_a_request_is_refused_when_decorated() -> None:
    with pytest.raises(TypeError, match="takes no request"):

        @requires("authenticated")
        async def nothing() -> str:
            return "?"


async def test_a_call_without_a_request_is_a_clear_error() -> None:
    @requires("authenticated")
    async def show(request: Request) -> str:
        return "?"

    with pytest.raises(TypeError, match="without a request"):
        await show("not a request")  # type: ignore[arg-type]


def test_scopes_are_names_and_the_status_a_number() -> None:
    with pytest.raises(TypeError, match="scope names"):
        requires(["authenticated", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="status_code"):
        requires("authenticated", status_code="403")  # type: ignore[arg-type]


def test_has_required_scope() -> None:
    request = Request(http_scope())
    request.scope["auth"] = AuthCredentials(["a", "b"])
    assert has_required_scope(request, ["a", "b"])
    assert has_required_scope(request, [])
    assert not has_required_scope(request, ["a", "c"])


# --- @requires on WebSocket handlers --------------------------------------------------------


async def test_a_websocket_with_the_scopes_is_served() -> None:
    async with (
        TestClient(make_app()) as client,
        client.websocket_connect("/ws", headers=bearer("ada-token")) as ws,
    ):
        assert await ws.receive_text() == "hello ada"


async def test_a_websocket_without_them_is_denied_with_a_403() -> None:
    async with TestClient(make_app()) as client:
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/ws"):
                raise AssertionError("accepted")
        assert denied.value.response.status_code == 403
        assert denied.value.response.text == "Forbidden"
        # The next connection is served.
        async with client.websocket_connect("/ws", headers=bearer("ada-token")) as ws:
            assert await ws.receive_text() == "hello ada"


async def test_a_websocket_is_closed_before_accept_where_no_response_can_be_sent() -> None:
    async with TestClient(make_app(), extensions={}) as client:
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/ws"):
                raise AssertionError("accepted")
    assert denied.value.response.status_code == 403  # what the server answers to the close


# --- a backend's errors ---------------------------------------------------------------------


async def test_bad_credentials_are_a_400_and_the_next_request_is_served() -> None:
    async with TestClient(make_app()) as client:
        response = await client.get("/whoami", headers={"authorization": "Basic YWRhOg=="})
        assert response.status_code == 400
        assert response.text == "Authorization must be 'Bearer <token>'"
        assert (await client.get("/whoami", headers=bearer("ada-token"))).status_code == 200


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_on_error_answers_bad_credentials(kind: str) -> None:
    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        return JSONResponse(
            {"error": str(exc), "path": conn.url.path},
            401,
            headers={"www-authenticate": "Bearer"},
        )

    async def on_error_async(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        return on_error(conn, exc)

    app = make_app(on_error=on_error if kind == "sync" else on_error_async)
    async with TestClient(app) as client:
        response = await client.get("/whoami", headers={"authorization": "Token x"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"error": "Authorization must be 'Bearer <token>'", "path": "/whoami"}


async def test_on_error_returning_none_leaves_the_400() -> None:
    app = make_app(on_error=lambda conn, exc: None)
    async with TestClient(app) as client:
        response = await client.get("/whoami", headers={"authorization": "Token x"})
    assert response.status_code == 400


async def test_bad_credentials_on_a_websocket_deny_it() -> None:
    async with TestClient(make_app()) as client:
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/ws", headers={"authorization": "Token x"}):
                raise AssertionError("accepted")
    assert denied.value.response.status_code == 400
    assert denied.value.response.text == "Authorization must be 'Bearer <token>'"


async def test_an_http_exception_from_the_backend_is_its_status() -> None:
    class Locked(AuthenticationBackend):
        async def authenticate(self, conn: HTTPConnection) -> None:
            raise HTTPException(429, "too many attempts")

    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        return "never"

    app.add_middleware(AuthenticationMiddleware, backend=Locked())
    async with TestClient(app) as client:
        response = await client.get("/")
    assert response.status_code == 429
    assert response.text == "too many attempts"


# --- configuration ----------------------------------------------------------------------------


class SyncBackend:
    def authenticate(self, conn: HTTPConnection) -> None:
        return None


@pytest.mark.parametrize(
    "options",
    [
        {"backend": SyncBackend()},
        {"backend": object()},
        {"backend": TokenBackend(), "on_error": "a 401, please"},
    ],
    ids=["sync authenticate", "no authenticate", "on_error not callable"],
)
def test_a_bad_option_is_refused_when_the_middleware_is_built(options: dict[str, Any]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    with pytest.raises(TypeError):
        AuthenticationMiddleware(app, **options)
