"""examples/deny.py under real servers, driven by the `websockets` client.

Each server is asked what it advertises in the websocket scope (not assumed); the
denial must then reach the client as the example's 401 and JSON body where
``websocket.http.response`` is advertised, and as a plain 403 where it is not. Echo of
text and bytes works on each. Servers are started and stopped by these tests (see
tests/interop/servers.py: 127.0.0.1, a free port, a bounded ready-check, killed by
process group).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop import servers as s
from websockets.exceptions import InvalidStatus

pytestmark = pytest.mark.interop

WS_RESPONSE = "websocket.http.response"
APP = "_ws_server_app:app"

# What each server was seen to advertise (uvicorn 0.54, hypercorn 0.18, granian 2.8,
# daphne 4.2): checked, so that an upgrade that changes it is noticed.
KNOWN_ADVERTISED = {
    "uvicorn": {WS_RESPONSE},
    "hypercorn": {WS_RESPONSE},
    "granian": {WS_RESPONSE, "http.response.pathsend"},
    "daphne": set(),
}


@pytest.fixture(scope="module", params=s.PLAIN, ids=str)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[s.Server]:
    config: s.ServerConfig = request.param
    log_dir: Path = tmp_path_factory.mktemp(f"ws-{config.name}")
    with s.running(config, APP, log_dir) as running:
        yield running


def advertised(server: s.Server) -> set[str]:
    """The extensions the server put in a websocket scope, as the app saw them."""
    with server.ws_connect("/__extensions__") as ws:
        return set(json.loads(ws.recv(timeout=10)))


def denial(server: s.Server, path: str, **options: object) -> InvalidStatus:
    """Open ``path`` expecting the handshake to be refused; return the refusal."""
    with pytest.raises(InvalidStatus) as info:
        server.ws_connect(path, **options).close()
    return info.value


def test_what_the_server_advertises_is_known(server: s.Server) -> None:
    assert advertised(server) == KNOWN_ADVERTISED[server.config.family]


@pytest.mark.parametrize(
    ("path", "headers", "error"),
    [
        ("/ws", None, "missing token"),
        ("/ws?token=wrong", None, "invalid token"),
        ("/ws", {"Authorization": "Bearer wrong"}, "invalid token"),
    ],
    ids=["no-token", "bad-query-token", "bad-bearer"],
)
def test_deny_reaches_the_client_as_401_json_where_advertised_else_403(
    server: s.Server, path: str, headers: dict[str, str] | None, error: str
) -> None:
    refused = denial(server, path, additional_headers=headers)
    response = refused.response
    if WS_RESPONSE in advertised(server):
        assert response.status_code == 401, server.log()
        assert response.headers["content-type"] == "application/json"
        assert response.headers["www-authenticate"] == 'Bearer realm="echo"'
        assert json.loads(response.body) == {"error": error}
    else:
        assert response.status_code == 403, server.log()
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/ws?token=s3cret", None), ("/ws", {"Authorization": "Bearer s3cret"})],
    ids=["query-token", "bearer"],
)
def test_echo_of_text_and_bytes(
    server: s.Server, path: str, headers: dict[str, str] | None
) -> None:
    with server.ws_connect(path, additional_headers=headers) as ws:
        ws.send("héllo")
        assert ws.recv(timeout=10) == "héllo"
        ws.send(b"\x00\x01\xff")
        assert ws.recv(timeout=10) == b"\x00\x01\xff"
        big = "x" * 100_000
        ws.send(big)
        assert ws.recv(timeout=10) == big
    assert "Traceback" not in server.log()
