"""TrustedHostMiddleware and HTTPSRedirectMiddleware: which host and scheme an app answers on."""

from __future__ import annotations

import re
from typing import Any

import pytest
from asgi_harness import CONNECT, http_scope, run, start_of, websocket_scope

from microasgi import App, Request, WebSocket
from microasgi.middleware.httpsredirect import HTTPSRedirectMiddleware
from microasgi.middleware.trustedhost import TrustedHostMiddleware
from microasgi.testing import TestClient, WebSocketDenied

from ._asgi import assert_passes_through, body_of, call, header, responder

pytestmark = pytest.mark.anyio

ALLOWED = ["example.com", "*.example.org", "127.0.0.1", "::1"]


def trusted(app: Any = None, **options: Any) -> TrustedHostMiddleware:
    return TrustedHostMiddleware(app or responder(), **{"allowed_hosts": ALLOWED, **options})


async def status_for(*hosts: str | None, **options: Any) -> int:
    """The status a request with these Host headers gets (none for ``None``)."""
    headers = [("host", host) for host in hosts if host is not None]
    sent = await call(trusted(**options), http_scope(host=None, headers=headers))
    return int(start_of(sent)["status"])


# --- which hosts pass ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "example.com:8000",  # a port
        "EXAMPLE.Com",  # mixed case
        "example.com.",  # a trailing dot: the same name, fully qualified
        "example.com.:443",
        "api.example.org",  # a subdomain of a wildcard
        "a.b.example.org",
        "127.0.0.1:8000",
        "[::1]:8000",  # an IPv6 literal with a port
        "[::1]",
        "[0:0::1]",  # the same address, written longer
    ],
)
async def test_an_allowed_host_reaches_the_app(host: str) -> None:
    assert await status_for(host) == 200


@pytest.mark.parametrize(
    "hosts",
    [
        ("evil.com",),
        ("example.com.evil.com",),
        ("evilexample.com",),
        ("example.org",),  # a wildcard matches subdomains, not the domain itself
        ("example.com", "evil.com"),  # a second Host header
        ("example.com", "example.com"),
        ("",),  # empty
        (None,),  # missing
        ("example.com:99999",),
        ("example.com:80:80",),
        ("example.com/path",),
        ("user@example.com",),
        ("exa mple.com",),
        ("::1",),  # an IPv6 literal must be bracketed
        ("[::1",),
        ("[fe80::1%eth0]",),
        ("[example.com]",),
        ("example..com",),
    ],
    ids=repr,
)
async def test_any_other_host_is_a_400(hosts: tuple[str | None, ...]) -> None:
    assert await status_for(*hosts) == 400


async def test_the_400_says_why_and_the_next_request_is_served() -> None:
    middleware = trusted()
    refused = await call(middleware, http_scope(host="evil.com"))
    assert start_of(refused)["status"] == 400
    assert body_of(refused) == b"Invalid host header"
    assert header(refused, "content-type") == "text/plain; charset=utf-8"
    served = await call(middleware, http_scope(host="example.com"))
    assert body_of(served) == b"hello"


async def test_star_allows_every_host() -> None:
    await assert_passes_through(
        lambda app: TrustedHostMiddleware(app),  # the default: ["*"]
        http_scope(host="anything.test"),
        http_scope(host=None),
        websocket_scope(host="x"),
    )
    await assert_passes_through(trusted, {"type": "lifespan"})


async def test_url_for_builds_links_only_from_an_allowed_host() -> None:
    app = App()

    @app.get("/reset", name="reset")
    async def reset(request: Request) -> str:
        return str(request.url_for("reset"))

    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["example.com"])
    async with TestClient(app, base_url="http://example.com") as client:
        assert (await client.get("/reset")).text == "http://example.com/reset"
    async with TestClient(app, base_url="http://evil.com") as client:
        poisoned = await client.get("/reset")
    assert poisoned.status_code == 400
    assert "evil" not in poisoned.text


# --- www redirect --------------------------------------------------------------------------


async def test_the_bare_domain_is_redirected_to_www_when_only_www_is_listed() -> None:
    middleware = trusted(allowed_hosts=["www.example.com"])
    sent = await call(
        middleware, http_scope("/a b", host="example.com:8000", query_string=b"q=1", scheme="https")
    )
    assert start_of(sent)["status"] == 307
    assert header(sent, "location") == "https://www.example.com:8000/a%20b?q=1"


async def test_no_www_redirect_when_turned_off_or_when_the_bare_domain_is_listed() -> None:
    off = trusted(allowed_hosts=["www.example.com"], www_redirect=False)
    assert start_of(await call(off, http_scope(host="example.com")))["status"] == 400
    both = trusted(allowed_hosts=["www.example.com", "example.com"])
    assert start_of(await call(both, http_scope(host="example.com")))["status"] == 200


# --- WebSockets ----------------------------------------------------------------------------


def websocket_app() -> App:
    app = App()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    return app


async def test_a_websocket_to_a_host_not_allowed_is_denied() -> None:
    app = websocket_app()
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["example.com"])
    async with TestClient(app, base_url="http://evil.com") as client:
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/ws"):
                raise AssertionError("accepted")
    assert denied.value.response.status_code == 400
    async with (
        TestClient(app, base_url="http://example.com") as client,
        client.websocket_connect("/ws") as ws,
    ):
        assert await ws.receive_text() == "hello"


async def test_without_the_denial_extension_the_handshake_is_closed() -> None:
    sent = await run(trusted(), websocket_scope(host="evil.com"), [CONNECT])
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern", ["*.", "a*b", "*example.com", "*.*.example.com", "example.*", "", "example.com:80"]
)
def test_a_bad_pattern_is_refused_when_the_middleware_is_built(pattern: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(pattern))):
        trusted(allowed_hosts=["example.com", pattern])


def test_a_string_is_not_a_list_of_hosts() -> None:
    with pytest.raises(TypeError, match="list"):
        trusted(allowed_hosts="example.com")


def test_patterns_are_normalised() -> None:
    middleware = trusted(allowed_hosts=["Example.COM.", "*.Example.org", "[::1]", "0:0::2"])
    assert middleware.allowed_hosts == ["example.com", "*.example.org", "::1", "::2"]


# --- HTTPSRedirectMiddleware ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "scheme", "expected"),
    [
        ("example.com", "http", "https://example.com/path?q=1"),
        ("example.com:80", "http", "https://example.com/path?q=1"),  # default ports dropped
        ("example.com:443", "http", "https://example.com/path?q=1"),
        ("example.com:8080", "http", "https://example.com:8080/path?q=1"),
        ("[::1]:8000", "http", "https://[::1]:8000/path?q=1"),
    ],
)
async def test_http_is_redirected_to_https_with_a_307(
    host: str, scheme: str, expected: str
) -> None:
    middleware = HTTPSRedirectMiddleware(responder())
    sent = await call(
        middleware, http_scope("/path", host=host, query_string=b"q=1", scheme=scheme)
    )
    assert start_of(sent)["status"] == 307  # as Starlette: the method and body are kept
    assert header(sent, "location") == expected


async def test_https_and_wss_pass_through() -> None:
    await assert_passes_through(
        HTTPSRedirectMiddleware,
        http_scope(scheme="https"),
        websocket_scope(scheme="wss"),
        {"type": "lifespan"},
    )


async def test_a_ws_handshake_is_denied_with_a_redirect_to_wss() -> None:
    app = websocket_app()
    app.add_middleware(HTTPSRedirectMiddleware)
    async with TestClient(app, base_url="http://example.com:8000") as client:
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/ws?room=1"):
                raise AssertionError("accepted")
    assert denied.value.response.status_code == 307
    assert denied.value.response.headers["location"] == "wss://example.com:8000/ws?room=1"
    async with (
        TestClient(app, base_url="https://example.com") as client,
        client.websocket_connect("/ws") as ws,
    ):
        assert await ws.receive_text() == "hello"


async def test_a_ws_handshake_is_closed_where_no_response_can_be_sent() -> None:
    sent = await run(HTTPSRedirectMiddleware(responder()), websocket_scope(), [CONNECT])
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]
