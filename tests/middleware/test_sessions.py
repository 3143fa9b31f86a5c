"""SessionMiddleware: what a user's browser keeps, and what a client's bad cookie gets."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import time
from http.cookies import SimpleCookie
from typing import Any

import pytest
from asgi_harness import (
    CONNECT,
    Recorder,
    http_scope,
    request_body,
    scripted,
    start_of,
    websocket_scope,
)

from microasgi import App, Request, WebSocket
from microasgi.middleware.sessions import SessionMiddleware
from microasgi.testing import TestClient, TestResponse

pytestmark = pytest.mark.anyio

SECRET = "s3cret-for-tests"
DAY = 24 * 3600


def notes_app(**options: Any) -> App:
    """A user story in five routes: log in, see who you are, keep a list, log out."""
    app = App()

    @app.post("/login")
    async def login(request: Request) -> str:
        request.session["user"] = (await request.form())["user"]
        return "welcome"

    @app.get("/me")
    async def me(request: Request) -> dict[str, Any]:
        return {"user": request.session.get("user")}

    @app.post("/cart")
    async def add(request: Request) -> list[str]:
        cart = request.session.get("cart")
        if cart is None:
            cart = request.session["cart"] = []
        cart.append((await request.form())["item"])  # then a change inside a value only
        return list(cart)

    @app.get("/public")
    async def public(request: Request) -> str:
        return "the same for everyone"

    @app.post("/logout")
    async def logout(request: Request) -> str:
        request.session.clear()
        return "bye"

    app.add_middleware(SessionMiddleware, **{"secret_key": SECRET, **options})
    return app


def cookie_of(response: TestResponse, name: str = "session") -> dict[str, str] | None:
    """The attributes of the Set-Cookie for ``name`` (``value`` under ""), or None."""
    found = [v for v in response.headers.getall("set-cookie", ()) if v.startswith(f"{name}=")]
    assert len(found) <= 1, found
    if not found:
        return None
    value, *attributes = (part.strip() for part in found[0].split(";"))
    parsed = {"": value.partition("=")[2]}
    for attribute in attributes:
        key, _, text = attribute.partition("=")
        parsed[key.lower()] = text
    return parsed


def forge(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    """A cookie in the module's documented format, signed with ``secret``.

    It lets a test make what only a holder of the key could: a signed cookie that is not a
    session, or an old one.
    """
    key = hmac.digest(secret.encode(), b"microasgi.sessions.SessionMiddleware", "sha256")
    encoded = base64.urlsafe_b64encode(payload).rstrip(b"=")
    signed = encoded + b"." + str(timestamp or int(time.time())).encode()
    signature = base64.urlsafe_b64encode(hmac.digest(key, signed, "sha256")).rstrip(b"=")
    return (signed + b"." + signature).decode()


async def log_in(client: TestClient, user: str = "ada") -> str:
    """Log in; return the session cookie's value."""
    response = await client.post("/login", data={"user": user})
    assert response.status_code == 200
    cookie = cookie_of(response)
    assert cookie is not None
    return cookie[""]


async def cookie_from(app: App, user: str = "ada") -> str:
    """A session cookie the app gave to a user who logged in, on another client."""
    async with TestClient(app) as client:
        return await log_in(client, user)


# --- what a browser keeps ------------------------------------------------------------


async def test_a_login_is_remembered_across_requests() -> None:
    async with TestClient(notes_app()) as client:
        assert (await client.get("/me")).json() == {"user": None}
        await log_in(client)
        assert (await client.get("/me")).json() == {"user": "ada"}


async def test_the_cookie_is_httponly_lax_and_lasts_two_weeks_by_default() -> None:
    async with TestClient(notes_app()) as client:
        response = await client.post("/login", data={"user": "ada"})
    cookie = cookie_of(response)
    assert cookie is not None
    assert cookie["httponly"] == ""
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["max-age"] == str(14 * DAY)
    assert "secure" not in cookie
    assert "domain" not in cookie


async def test_the_cookie_options_are_starlettes() -> None:
    app = notes_app(
        session_cookie="sid",
        max_age=3600,
        path="/app",
        same_site="strict",
        https_only=True,
        domain="example.com",
    )
    async with TestClient(app, base_url="https://example.com") as client:
        response = await client.post("/login", data={"user": "ada"})
    cookie = cookie_of(response, "sid")
    assert cookie is not None
    assert cookie_of(response) is None
    assert cookie["max-age"] == "3600"
    assert cookie["path"] == "/app"
    assert cookie["samesite"] == "Strict"
    assert cookie["secure"] == ""
    assert cookie["domain"] == "example.com"
    assert cookie["httponly"] == ""


async def test_no_max_age_is_a_browser_session_cookie() -> None:
    async with TestClient(notes_app(max_age=None)) as client:
        response = await client.post("/login", data={"user": "ada"})
        assert (await client.get("/me")).json() == {"user": "ada"}
    cookie = cookie_of(response)
    assert cookie is not None
    assert "max-age" not in cookie
    assert "expires" not in cookie


async def test_the_cookie_is_written_only_when_the_session_changed() -> None:
    async with TestClient(notes_app()) as client:
        await log_in(client)
        read = await client.get("/me")
        same_again = await client.post("/login", data={"user": "ada"})
        untouched = await client.get("/public")
    assert read.json() == {"user": "ada"}
    assert cookie_of(read) is None
    assert cookie_of(same_again) is None
    assert cookie_of(untouched) is None


async def test_a_response_that_read_the_session_varies_by_cookie() -> None:
    async with TestClient(notes_app()) as client:
        anonymous = await client.get("/me")
        await log_in(client)
        known = await client.get("/me")
        public = await client.get("/public")
    # A shared cache must not give one user's page to another, nor the anonymous page
    # to someone logged in.
    assert anonymous.headers["vary"] == "Cookie"
    assert known.headers["vary"] == "Cookie"
    assert "vary" not in public.headers


async def test_a_change_inside_a_value_is_saved() -> None:
    async with TestClient(notes_app()) as client:
        await client.post("/cart", data={"item": "tea"})
        response = await client.post("/cart", data={"item": "milk"})
        assert response.json() == ["tea", "milk"]
        assert cookie_of(response) is not None
        assert (await client.post("/cart", data={"item": "jam"})).json() == ["tea", "milk", "jam"]


async def test_a_cleared_session_removes_the_cookie() -> None:
    async with TestClient(notes_app()) as client:
        await log_in(client)
        response = await client.post("/logout")
        assert client.cookies == {}
        assert (await client.get("/me")).json() == {"user": None}
        again = await client.post("/logout")
    cookie = cookie_of(response)
    assert cookie is not None
    assert cookie[""] == ""
    assert cookie["max-age"] == "0"
    assert cookie["httponly"] == ""
    assert cookie_of(again) is None  # nothing to remove


async def test_the_cookie_value_needs_no_quoting() -> None:
    async with TestClient(notes_app()) as client:
        await client.post("/login", data={"user": 'ada "the first"; ∑ é'})
        assert (await client.get("/me")).json() == {"user": 'ada "the first"; ∑ é'}
    jar: SimpleCookie = SimpleCookie()
    jar.load(f"session={next(iter(client.cookies.values()))}")
    assert jar["session"].coded_value == jar["session"].value


# --- key rotation ----------------------------------------------------------------------


async def test_a_new_key_signs_and_the_old_one_still_verifies() -> None:
    async with TestClient(notes_app(secret_key="old")) as client:
        old_cookie = await log_in(client)
    async with TestClient(notes_app(secret_key=["new", "old"])) as client:
        response = await client.get("/me", cookies={"session": old_cookie})
    assert response.json() == {"user": "ada"}
    renewed = cookie_of(response)
    assert renewed is not None  # signed again with the new key
    async with TestClient(notes_app(secret_key="new")) as client:
        assert (await client.get("/me", cookies={"session": renewed[""]})).json() == {"user": "ada"}


async def test_bytes_secrets_are_accepted() -> None:
    async with TestClient(notes_app(secret_key=b"\x00\xffkey")) as client:
        await log_in(client)
        assert (await client.get("/me")).json() == {"user": "ada"}


# --- what a bad cookie gets ------------------------------------------------------------


def tampered(value: str) -> str:
    payload, rest = value.split(".", 1)
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["user"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{forged}.{rest}"


BAD_COOKIES = {
    "tampered": tampered,
    "truncated": lambda good: good[:-3],
    "signature cut off": lambda good: good.rsplit(".", 1)[0],
    "not base64": lambda good: "!!!not*base64!!!.123.%%%",
    "not JSON, signed": lambda good: forge(SECRET, b"{not json"),
    "JSON but not an object, signed": lambda good: forge(SECRET, b'["ada"]'),
    "signed with another secret": lambda good: forge("another secret", b'{"user":"admin"}'),
    "100 KiB": lambda good: good + "A" * (100 * 1024),
    "100 KiB, signed": lambda good: forge(SECRET, json.dumps({"x": "y" * 102400}).encode()),
    "empty": lambda good: "",
    "a huge timestamp": lambda good: good.replace(".", "." + "9" * 5000, 1),
    "non-ASCII": lambda good: "sé.ssion.ü",
}


@pytest.mark.parametrize("bad", BAD_COOKIES.values(), ids=BAD_COOKIES.keys())
async def test_a_bad_cookie_is_an_empty_session_and_the_next_request_is_served(bad: Any) -> None:
    app = notes_app()
    good = await cookie_from(app)
    async with TestClient(app) as client:
        response = await client.get("/me", cookies={"session": bad(good)})
        assert response.status_code == 200
        assert response.json() == {"user": None}
        assert cookie_of(response) is None  # nothing saved for a session never loaded
        assert (await client.get("/me", cookies={"session": good})).json() == {"user": "ada"}


async def test_the_forging_helper_makes_cookies_the_app_accepts() -> None:
    """The bad cookies above are refused for what they are, not for the helper's format."""
    async with TestClient(notes_app()) as client:
        cookie = forge(SECRET, b'{"user":"ada"}')
        assert (await client.get("/me", cookies={"session": cookie})).json() == {"user": "ada"}


async def test_a_cookie_replayed_after_max_age_is_an_empty_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with TestClient(notes_app(max_age=DAY)) as client:
        cookie = await log_in(client)
        issued = time.time()
        monkeypatch.setattr(time, "time", lambda: issued + DAY - 5)
        assert (await client.get("/me", cookies={"session": cookie})).json() == {"user": "ada"}
        monkeypatch.setattr(time, "time", lambda: issued + DAY + 5)
        replayed = await client.get("/me", cookies={"session": cookie})
        assert replayed.status_code == 200
        assert replayed.json() == {"user": None}


async def test_a_rotated_out_key_no_longer_verifies() -> None:
    async with TestClient(notes_app(secret_key="retired")) as client:
        cookie = await log_in(client)
    async with TestClient(notes_app(secret_key=["current", "previous"])) as client:
        response = await client.get("/me", cookies={"session": cookie})
    assert response.status_code == 200
    assert response.json() == {"user": None}


async def test_of_several_cookies_of_that_name_the_valid_one_is_used() -> None:
    app = notes_app()
    good = await cookie_from(app)
    async with TestClient(app) as client:
        response = await client.get("/me", headers={"cookie": f"session=junk; session={good}"})
    assert response.json() == {"user": "ada"}


# --- what the app is told ---------------------------------------------------------------


async def test_a_cookie_browsers_would_drop_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async with TestClient(notes_app()) as client:
        with caplog.at_level(logging.WARNING, logger="microasgi"):
            await client.post("/login", data={"user": "ada"})
            assert not caplog.records
            response = await client.post("/login", data={"user": "x" * 5000})
    assert cookie_of(response) is not None  # still sent: the app decides what to keep
    (record,) = [r for r in caplog.records if r.name == "microasgi"]
    assert record.levelno == logging.WARNING
    assert "browsers drop cookies over 4096 bytes" in record.getMessage()


async def test_a_value_json_cannot_hold_is_a_500_and_the_next_request_is_served() -> None:
    app = notes_app()

    @app.get("/bad")
    async def bad(request: Request) -> str:
        request.session["when"] = object()
        return "too late to tell"

    send = Recorder()
    # After its 500 the error propagates to the server, which logs it.
    with pytest.raises(TypeError, match="JSON cannot encode"):
        await app(http_scope("/bad"), scripted(request_body(b"")), send)
    assert start_of(send.messages)["status"] == 500
    async with TestClient(app) as client:
        assert (await client.get("/me")).status_code == 200


async def test_without_the_middleware_the_error_says_what_to_add() -> None:
    request = Request(http_scope())
    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        request.session  # noqa: B018


# --- WebSocket ----------------------------------------------------------------------------


async def test_a_websocket_reads_the_session_but_cannot_change_it() -> None:
    app = notes_app()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"user": websocket.session.get("user")})
        try:
            websocket.session["user"] = "mallory"
        except TypeError as exc:
            await websocket.send_text(str(exc))
        await websocket.close()

    async with TestClient(app) as client:
        await log_in(client)
        async with client.websocket_connect("/ws") as session:
            assert await session.receive_json() == {"user": "ada"}
            assert "read-only" in await session.receive_text()


async def test_a_websocket_with_a_bad_cookie_gets_an_empty_session() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope["session"]))
        await receive()
        await send({"type": "websocket.close", "code": 1000})

    scope = websocket_scope(headers=[("cookie", "session=forged.1.x")])
    await SessionMiddleware(app, SECRET)(scope, scripted([CONNECT]), Recorder())
    assert seen == [{}]


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"secret_key": ""}, "secret"),
        ({"secret_key": []}, "secret"),
        ({"secret_key": ["ok", ""]}, "secret"),
        ({"secret_key": None}, "secret"),
        ({"max_age": 0}, "max_age"),
        ({"max_age": -1}, "max_age"),
        ({"max_age": True}, "max_age"),
        ({"max_age": "14 days"}, "max_age"),
        ({"same_site": "sideways"}, "same_site"),
        ({"same_site": "none"}, "https_only"),  # browsers refuse SameSite=None without Secure
        ({"path": "app"}, "path"),
        ({"path": "/a;b"}, "path"),
        ({"session_cookie": "my session"}, "session_cookie"),
        ({"session_cookie": ""}, "session_cookie"),
        ({"domain": "example.com; Secure"}, "domain"),
        ({"domain": "exämple.com"}, "domain"),
    ],
    ids=repr,
)
def test_a_bad_option_is_refused_when_the_middleware_is_built(
    options: dict[str, Any], message: str
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match=message):
        SessionMiddleware(app, **{"secret_key": SECRET, **options})


def test_same_site_none_works_over_https() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    SessionMiddleware(app, SECRET, same_site="none", https_only=True)
