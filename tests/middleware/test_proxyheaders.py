"""ProxyHeadersMiddleware: the client a trusted proxy names, and nobody else's word."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from asgi_harness import http_scope, websocket_scope

from microasgi import App, Request
from microasgi._types import Receive, Scope, Send
from microasgi.middleware._hosts import parse_host, parse_node
from microasgi.middleware.proxyheaders import ProxyHeadersMiddleware, parse_forwarded
from microasgi.testing import TestClient

from ._asgi import assert_passes_through, call, responder

pytestmark = pytest.mark.anyio

PROXY = ("10.0.0.2", 41000)  # a proxy in the trusted network
STRANGER = ("203.0.113.9", 52000)  # a client that connects directly
TRUSTED = ["127.0.0.1", "10.0.0.0/24"]


async def seen_by_app(
    *headers: tuple[str, str],
    peer: tuple[str, int] | None = PROXY,
    scope: Callable[..., Scope] = http_scope,
    **options: Any,
) -> dict[str, Any]:
    """What the app sees of a connection from ``peer`` with these headers."""
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        if scope["type"] == "http":
            await responder()(scope, receive, send)

    middleware = ProxyHeadersMiddleware(app, **{"trusted_hosts": TRUSTED, **options})
    await call(middleware, scope(headers=headers, client=peer))  # the server's scope unchanged
    (seen_scope,) = seen
    host = [value.decode() for name, value in seen_scope["headers"] if name == b"host"]
    return {"client": seen_scope["client"], "scheme": seen_scope["scheme"], "host": host}


# --- X-Forwarded-* ----------------------------------------------------------------------


async def test_a_trusted_proxy_names_the_client_its_scheme_and_host() -> None:
    seen = await seen_by_app(
        ("x-forwarded-for", "198.51.100.7"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "example.com"),
    )
    assert seen == {"client": ("198.51.100.7", 0), "scheme": "https", "host": ["example.com"]}


async def test_a_direct_client_forging_the_headers_is_not_believed() -> None:
    seen = await seen_by_app(
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "bank.example"),
        peer=STRANGER,
    )
    assert seen == {"client": STRANGER, "scheme": "http", "host": ["testserver"]}


async def test_a_peer_the_server_did_not_name_is_not_trusted() -> None:
    seen = await seen_by_app(("x-forwarded-for", "1.2.3.4"), peer=None)
    assert seen["client"] is None


async def test_the_client_is_the_right_most_address_not_a_trusted_proxy() -> None:
    # The client wrote "6.6.6.6" itself; the first proxy added the address it saw.
    seen = await seen_by_app(("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.5"))
    assert seen["client"] == ("198.51.100.7", 0)


async def test_repeated_header_lines_are_one_list() -> None:
    seen = await seen_by_app(
        ("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "198.51.100.7, 10.0.0.5")
    )
    assert seen["client"] == ("198.51.100.7", 0)


async def test_a_chain_of_only_trusted_proxies_names_the_first() -> None:
    seen = await seen_by_app(("x-forwarded-for", "10.0.0.7, 10.0.0.5"))
    assert seen["client"] == ("10.0.0.7", 0)


async def test_star_trusts_every_peer_and_takes_the_left_most_address() -> None:
    seen = await seen_by_app(
        ("x-forwarded-for", "198.51.100.7, 10.0.0.5"), peer=STRANGER, trusted_hosts="*"
    )
    assert seen["client"] == ("198.51.100.7", 0)


@pytest.mark.parametrize(
    ("forwarded_for", "client"),
    [
        ("2001:db8::7", ("2001:db8::7", 0)),
        ("[2001:db8::7]:4711", ("2001:db8::7", 4711)),
        ("198.51.100.7:4711", ("198.51.100.7", 4711)),
        ("::ffff:198.51.100.7", ("198.51.100.7", 0)),
    ],
)
async def test_addresses_with_ports_and_ipv6(forwarded_for: str, client: tuple[str, int]) -> None:
    assert (await seen_by_app(("x-forwarded-for", forwarded_for)))["client"] == client


async def test_proto_and_host_of_the_clients_hop_in_a_chain() -> None:
    seen = await seen_by_app(
        ("x-forwarded-for", "198.51.100.7, 10.0.0.5"),
        ("x-forwarded-proto", "https, http"),
        ("x-forwarded-host", "example.com, internal.lan"),
    )
    assert seen == {"client": ("198.51.100.7", 0), "scheme": "https", "host": ["example.com"]}


async def test_a_websocket_gets_ws_schemes() -> None:
    headers = [("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "https")]
    seen = await seen_by_app(*headers, scope=websocket_scope)
    assert (seen["scheme"], seen["client"]) == ("wss", ("198.51.100.7", 0))


@pytest.mark.parametrize(
    "headers",
    [
        (("x-forwarded-for", "not-an-address"),),
        (("x-forwarded-for", "198.51.100.7, , 10.0.0.5"),),
        (("x-forwarded-for", ""),),
        (("x-forwarded-for", "198.51.100.7:99999"),),
        (("x-forwarded-for", "\xff\xfe"),),
        (("x-forwarded-proto", "gopher"),),
        (("x-forwarded-host", "evil.com/path"),),
        (("x-forwarded-host", "a b"),),
        (("forwarded", 'for="[2001:db8::1'),),
        (("forwarded", "for=1.2.3.4;for=5.6.7.8"),),
        (("forwarded", "for=[::1]"),),  # an IPv6 node must be quoted
        (("forwarded", "nonsense"),),
        (("forwarded", "for=not-an-ip"),),
    ],
    ids=repr,
)
async def test_a_malformed_header_is_ignored(headers: tuple[tuple[str, str], ...]) -> None:
    assert await seen_by_app(*headers) == {
        "client": PROXY,
        "scheme": "http",
        "host": ["testserver"],
    }


async def test_one_malformed_header_does_not_void_the_others() -> None:
    seen = await seen_by_app(("x-forwarded-for", "junk"), ("x-forwarded-proto", "https"))
    assert seen == {"client": PROXY, "scheme": "https", "host": ["testserver"]}


# --- Forwarded (RFC 7239) -----------------------------------------------------------------


async def test_forwarded_names_the_client_scheme_and_host() -> None:
    seen = await seen_by_app(("forwarded", 'for="[2001:db8::7]:4711";proto=https;host=example.com'))
    assert seen == {"client": ("2001:db8::7", 4711), "scheme": "https", "host": ["example.com"]}


async def test_forwarded_takes_the_clients_element_in_a_chain() -> None:
    seen = await seen_by_app(
        ("forwarded", "for=6.6.6.6;proto=http, for=198.51.100.7;proto=https;host=example.com"),
        ("forwarded", "for=10.0.0.5;proto=http;host=internal.lan"),
    )
    assert seen == {"client": ("198.51.100.7", 0), "scheme": "https", "host": ["example.com"]}


async def test_forwarded_for_unknown_leaves_no_client() -> None:
    assert (await seen_by_app(("forwarded", "for=unknown;proto=https")))["client"] is None
    assert (await seen_by_app(("forwarded", "for=_hidden")))["client"] is None


async def test_forwarded_without_for_keeps_the_peer() -> None:
    seen = await seen_by_app(("forwarded", "proto=https"))
    assert seen == {"client": PROXY, "scheme": "https", "host": ["testserver"]}


async def test_x_forwarded_headers_win_over_forwarded_never_a_mix() -> None:
    # nginx sets X-Forwarded-For but passes a client's own Forwarded header through.
    seen = await seen_by_app(
        ("forwarded", "for=6.6.6.6;proto=https;host=evil.com"),
        ("x-forwarded-for", "198.51.100.7"),
    )
    assert seen == {"client": ("198.51.100.7", 0), "scheme": "http", "host": ["testserver"]}


def test_forwarded_parsing() -> None:
    assert parse_forwarded('For="[2001:db8:cafe::17]:4711"') == [
        {"for": "[2001:db8:cafe::17]:4711"}
    ]
    assert parse_forwarded("for=192.0.2.60;proto=http;by=203.0.113.43") == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}
    ]
    assert parse_forwarded("for=192.0.2.43, for=198.51.100.17") == [
        {"for": "192.0.2.43"},
        {"for": "198.51.100.17"},
    ]
    assert parse_forwarded('for="a\\"b, c"') == [{"for": 'a"b, c'}]
    assert parse_forwarded(" for=1.2.3.4 ; proto=https ,, ") == [
        {"for": "1.2.3.4", "proto": "https"}
    ]
    assert parse_forwarded("for") is None
    assert parse_forwarded('for="open') is None


# --- the scope and the app ------------------------------------------------------------------


async def test_without_proxy_headers_the_scope_is_passed_as_it_is() -> None:
    await assert_passes_through(
        lambda app: ProxyHeadersMiddleware(app, trusted_hosts=TRUSTED),
        http_scope(client=PROXY),
        http_scope(client=STRANGER, headers=[("x-forwarded-for", "1.2.3.4")]),
        {"type": "lifespan"},
    )


async def test_request_url_and_client_in_a_handler() -> None:
    app = App()

    @app.get("/where")
    async def where(request: Request) -> dict[str, Any]:
        client = request.client
        return {"url": str(request.url), "client": client.host if client else None}

    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=["10.0.0.1"])
    async with TestClient(app, client=("127.0.0.1", 1)) as client:
        direct = await client.get("/where", headers={"x-forwarded-proto": "https"})
    assert direct.json() == {"url": "http://testserver/where", "client": "127.0.0.1"}

    app = App()
    app.get("/where")(where)
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts="127.0.0.1, 10.0.0.0/8")
    async with TestClient(app, client=("127.0.0.1", 1)) as client:
        proxied = await client.get(
            "/where",
            headers={
                "x-forwarded-for": "198.51.100.7",
                "x-forwarded-proto": "https",
                "x-forwarded-host": "example.com",
            },
        )
        assert proxied.json() == {"url": "https://example.com/where", "client": "198.51.100.7"}
        assert (await client.get("/where")).json()["client"] == "127.0.0.1"


@pytest.mark.parametrize(
    "trusted_hosts", [["localhost"], ["10.0.0.0/33"], ["127.0.0.1", ""], "127.0.0.1, nope"]
)
def test_a_bad_trusted_host_is_refused_when_the_middleware_is_built(trusted_hosts: Any) -> None:
    with pytest.raises(ValueError, match="trusted_hosts"):
        ProxyHeadersMiddleware(responder(), trusted_hosts=trusted_hosts)


# --- the parsing underneath ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("example.com", ("example.com", None)),
        ("Example.COM.:8000", ("example.com", 8000)),
        ("[::1]:8000", ("::1", 8000)),
        ("[0:0::1]", ("::1", None)),
        ("127.0.0.1", ("127.0.0.1", None)),
        ("example.com:", ("example.com", None)),
        ("under_score.example", ("under_score.example", None)),
        ("::1", None),
        ("", None),
        ("example.com:65536", None),
        ("-example.com", None),
        ("a" * 64 + ".com", None),
        ("[::1]junk", None),
    ],
)
def test_host_parsing(value: str, parsed: tuple[str, int | None] | None) -> None:
    assert parse_host(value) == parsed


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("198.51.100.7", ("198.51.100.7", 0)),
        ("198.51.100.7:80", ("198.51.100.7", 80)),
        ("[2001:db8::7]", ("2001:db8::7", 0)),
        ("2001:DB8::7", ("2001:db8::7", 0)),
        ("[::ffff:198.51.100.7]:5", ("198.51.100.7", 5)),
        ("example.com", None),
        ("198.51.100.7:http", None),
        ("[2001:db8::7", None),
        ("[198.51.100.7]", None),
        ("", None),
    ],
)
def test_node_parsing(value: str, parsed: tuple[str, int] | None) -> None:
    assert parse_node(value) == parsed
