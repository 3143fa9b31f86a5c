"""What each server really puts in the scope, checked with a framework-free app.

microasgi's behaviour depends on these facts (where `path` starts, which extensions are
advertised, whether lifespan state exists, which objects are shared). Each is asserted
here per server configuration, so a server upgrade that changes one fails loudly
instead of silently changing microasgi's behaviour.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidMessage, InvalidStatus

from interop import servers as s
from interop.conftest import CellFactory
from interop.h2client import H2Client
from interop.raw_app import PATHSEND_FILE

PUSH = "http.response.push"
EARLY_HINT = "http.response.early_hint"
TRAILERS = "http.response.trailers"
PATHSEND = "http.response.pathsend"
WS_RESPONSE = "websocket.http.response"


@dataclass(frozen=True)
class Expected:
    """What one configuration showed (uvicorn 0.54, hypercorn 0.18, daphne 4.2, granian 2.8).

    The defaults are the spec-following answers; each server lists where it differs.
    """

    path_includes_root_path: bool = False
    has_extensions_key: bool = True
    http_extensions: frozenset[str] = frozenset()
    ws_extensions: frozenset[str] = frozenset({WS_RESPONSE})
    http_spec_version: str | None = "2.3"
    ws_spec_version: str | None = "2.3"
    state: bool = True
    shared_scope_objects: bool = False
    late_early_hint_error: str = "RuntimeError"
    ws_scope_has_scheme: bool = True
    server_port_is_int: bool = True


UVICORN = Expected(path_includes_root_path=True, has_extensions_key=False, ws_spec_version="2.4")
HYPERCORN = Expected(http_spec_version="2.1", late_early_hint_error="UnexpectedMessageError")
DAPHNE = Expected(
    has_extensions_key=False,
    ws_extensions=frozenset(),
    http_spec_version=None,
    ws_spec_version=None,
    state=False,
    late_early_hint_error="ValueError",
    ws_scope_has_scheme=False,
)
GRANIAN = Expected(
    # One dict serves every scope type, so HTTP scopes list the WebSocket extension too.
    http_extensions=frozenset({PATHSEND, WS_RESPONSE}),
    ws_extensions=frozenset({PATHSEND, WS_RESPONSE}),
    shared_scope_objects=True,
    server_port_is_int=False,
)


def expected(config: s.ServerConfig) -> Expected:
    """The known behaviour of ``config``'s server."""
    if config.family == "hypercorn" and config.http2:
        return replace(HYPERCORN, http_extensions=frozenset({PUSH, EARLY_HINT, TRAILERS}))
    return {"uvicorn": UVICORN, "hypercorn": HYPERCORN, "daphne": DAPHNE, "granian": GRANIAN}[
        config.family
    ]


raw_server = s.server_fixture("interop.raw_app:app", s.ALL, root_path="/base")


def facts(server: s.Server, path: str, client: httpx.Client | None = None) -> dict[str, Any]:
    """GET ``path`` from raw_app and return what it saw in the scope."""
    response = (client or server.client()).get(path)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def ws_facts(server: s.Server) -> dict[str, Any]:
    """Open raw_app's WebSocket and return the scope it describes on accept."""
    with server.ws_connect("/ws") as ws:
        result: dict[str, Any] = json.loads(ws.recv(timeout=5))
    return result


SHORT_NAMES = {
    PUSH: "push",
    EARLY_HINT: "early_hint",
    TRAILERS: "trailers",
    PATHSEND: "pathsend",
    WS_RESPONSE: "websocket.http.response",
}


def short(names: frozenset[str] | list[str]) -> str:
    """Extension names as the table shows them."""
    return ", ".join(sorted(SHORT_NAMES.get(n, n) for n in names)) or "none"


def test_path_and_root_path(raw_server: s.Server, cell: CellFactory) -> None:
    claim = cell(raw_server.config, "path with root_path")
    seen = facts(raw_server, "/facts?x=1")
    assert seen["root_path"] == "/base"
    assert seen["query_string"] == "x=1"
    if expected(raw_server.config).path_includes_root_path:
        assert (seen["path"], seen["raw_path"]) == ("/base/facts", "/base/facts")
        claim.value = "prefixed (`/base/facts`)"
    else:
        assert (seen["path"], seen["raw_path"]) == ("/facts", "/facts")
        claim.value = "as received (`/facts`)"


def test_http_extensions(raw_server: s.Server, cell: CellFactory) -> None:
    claim = cell(raw_server.config, "http extensions")
    want = expected(raw_server.config)
    seen = facts(raw_server, "/facts")
    assert seen["http_version"] == ("2" if raw_server.config.http2 else "1.1")
    assert seen["has_extensions_key"] is want.has_extensions_key
    assert frozenset(seen["extensions"]) == want.http_extensions
    proto = "HTTP/2" if raw_server.config.http2 else "HTTP/1.1"
    key = "" if want.has_extensions_key else " (no `extensions` key)"
    claim.value = f"{proto}: {short(want.http_extensions)}{key}"


def test_websocket_extensions(raw_server: s.Server, cell: CellFactory) -> None:
    claim = cell(raw_server.config, "websocket extensions")
    seen = ws_facts(raw_server)
    assert frozenset(seen["extensions"]) == expected(raw_server.config).ws_extensions
    claim.value = short(seen["extensions"])


def test_spec_versions(raw_server: s.Server, cell: CellFactory) -> None:
    claim = cell(raw_server.config, "spec_version")
    want = expected(raw_server.config)
    http, ws = facts(raw_server, "/facts"), ws_facts(raw_server)
    assert http["asgi"]["version"] == ws["asgi"]["version"] == "3.0"
    assert http["asgi"].get("spec_version") == want.http_spec_version
    assert ws["asgi"].get("spec_version") == want.ws_spec_version
    claim.value = (
        f"http {want.http_spec_version or 'absent'}, ws {want.ws_spec_version or 'absent'}"
    )


def test_lifespan_runs_once_per_worker_and_fills_state(
    raw_server: s.Server, cell: CellFactory
) -> None:
    claim = cell(raw_server.config, "lifespan state")
    want = expected(raw_server.config)
    assert raw_server.config.lifespan is want.state
    # A new connection per request, so requests spread over the workers.
    seen = []
    for _ in range(4):
        with raw_server.client() as fresh:
            seen.append(facts(raw_server, "/facts", fresh))
    marks = raw_server.lifespan_startups("raw")
    if not want.state:
        assert marks == []
        assert not any(f["has_state"] for f in seen)
        claim.value = "no lifespan, no `state`"
        return
    assert len(marks) == raw_server.config.workers, marks
    # Each worker ran startup exactly once ("raw-PID-1") and its requests see its own state.
    assert all(mark.endswith("-1") for mark in marks)
    for f in seen:
        assert f["state"] == {"started_by": f["pid"]}
    claim.value = "yes"


def test_shared_scope_objects(raw_server: s.Server, cell: CellFactory) -> None:
    claim = cell(raw_server.config, "shared scope objects")
    # One keep-alive connection: both requests reach the same worker process.
    client = raw_server.client()
    first = facts(raw_server, "/facts", client)
    second = facts(raw_server, "/facts", client)
    assert first["pid"] == second["pid"]
    shared = expected(raw_server.config).shared_scope_objects
    assert second["extensions_reused"] is shared
    assert second["asgi_reused"] is shared
    claim.value = "`extensions`, `asgi` reused" if shared else "fresh per request"


def test_early_hint_after_response_start_is_refused(
    raw_server: s.Server, cell: CellFactory
) -> None:
    claim = cell(raw_server.config, "early hint after start")
    response = raw_server.client().get("/early-hint-late")
    error = expected(raw_server.config).late_early_hint_error
    assert (response.status_code, response.text) == (200, error)
    claim.value = f"refused ({error})"


def test_early_hint_before_start_only_where_advertised(raw_server: s.Server) -> None:
    seen = facts(raw_server, "/early-hint")
    assert seen["early_hint_sent"] is (EARLY_HINT in expected(raw_server.config).http_extensions)


def test_websocket_echo(raw_server: s.Server) -> None:
    with raw_server.ws_connect("/ws") as ws:
        ws.recv(timeout=5)
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"
        ws.send(b"\x00\xff")
        assert ws.recv(timeout=5) == b"\x00\xff"


@pytest.mark.parametrize("mode", ["whole", "split", "nobody"])
def test_websocket_denial_response(raw_server: s.Server, mode: str) -> None:
    """A denial answers 401 with its body where advertised; elsewhere the server says 403.

    Modes: the body in one message (what microasgi sends), split over two messages,
    or a body message without its "body" key.
    """
    config = raw_server.config
    if mode == "nobody" and config.family == "uvicorn" and config is not s.UVICORN_H11:
        # uvicorn 0.54's websockets-sansio implementation reads message["body"] and
        # drops the connection on KeyError (wsproto, as in uvicorn-h11, defaults it).
        with pytest.raises(InvalidMessage), raw_server.ws_connect("/ws-deny?nobody"):
            pass
        return
    query = "" if mode == "whole" else f"?{mode}"
    with pytest.raises(InvalidStatus) as denied, raw_server.ws_connect(f"/ws-deny{query}"):
        pass
    response = denied.value.response
    if WS_RESPONSE not in expected(config).ws_extensions:
        assert (response.status_code, response.body) == (403, b"")
    elif mode == "split" and config.family == "granian":
        # granian 2.8 raises "Unsupported ASGI message" on more_body and answers 403.
        assert (response.status_code, response.body) == (403, b"")
    else:
        want = b"" if mode == "nobody" else b'{"error":"unauthorized"}'
        assert (response.status_code, response.body) == (401, want)


def test_websocket_scope_optional_keys(raw_server: s.Server) -> None:
    seen = ws_facts(raw_server)
    if expected(raw_server.config).ws_scope_has_scheme:
        assert seen["scheme"] == ("wss" if raw_server.config.tls else "ws")
        assert seen["http_version"] == "1.1"
    else:
        # The spec makes both optional (defaults "ws" and "1.1"): readers must default them.
        assert seen["scheme"] is None
        assert seen["http_version"] is None


def test_server_port_type(raw_server: s.Server) -> None:
    host, port = facts(raw_server, "/facts")["server"]
    assert host == s.HOST
    if expected(raw_server.config).server_port_is_int:
        assert port == raw_server.port
    else:
        # granian 2.8 gives the port as a str; the spec says int.
        assert port == str(raw_server.port)


def test_undecodable_percent_escapes_reach_the_app_replaced(raw_server: s.Server) -> None:
    seen = facts(raw_server, "/caf%E9/%zz")
    prefix = "/base" if expected(raw_server.config).path_includes_root_path else ""
    assert seen["path"] == prefix + "/caf\ufffd/%zz"
    assert seen["raw_path"] == prefix + "/caf%E9/%zz"


def test_pathsend_served_where_advertised(raw_server: s.Server) -> None:
    response = raw_server.client().get("/pathsend")
    if PATHSEND in expected(raw_server.config).http_extensions:
        assert response.status_code == 200
        assert response.content == PATHSEND_FILE.read_bytes()
    else:
        assert response.status_code == 501


def test_push_and_early_hints_seen_by_the_client(raw_server: s.Server) -> None:
    advertised = expected(raw_server.config).http_extensions
    if not raw_server.config.http2:
        assert PUSH not in advertised
        assert facts(raw_server, "/push")["pushed"] is False
        return
    assert raw_server.tls is not None
    with H2Client(s.HOST, raw_server.port, raw_server.tls.client_context()) as client:
        pushed = client.request("GET", "/push")
        hinted = client.request("GET", "/early-hint")
    assert pushed.response.status == 200
    assert json.loads(pushed.response.body)["pushed"] is (PUSH in advertised)
    assert list(pushed.pushes) == (["/raw-pushed"] if PUSH in advertised else [])
    if PUSH in advertised:
        _, pushed_response = pushed.pushes["/raw-pushed"]
        assert pushed_response.status == 200
        assert json.loads(pushed_response.body)["path"] == "/raw-pushed"
    links = [dict(h).get("link") for h in hinted.response.informational]
    assert links == (["</raw.css>; rel=preload; as=style"] if EARLY_HINT in advertised else [])


@pytest.mark.parametrize("config", s.HTTP2, ids=str)
def test_request_body_arriving_after_the_response(
    config: s.ServerConfig, interop_tmp: Path, tls_files: s.TLSFiles
) -> None:
    """hypercorn 0.18's HTTP/2 fails on DATA for a stream whose response finished.

    The app answers without reading the body and the client uploads afterwards:
    hypercorn looks the finished stream up (KeyError) and drops the connection
    silently; its trio worker lets the error out of the server and the process exits. Own server
    instances, since this kills them.
    """
    log_dir = interop_tmp / "late-body" / config.name
    with s.running(config, "interop.raw_app:app", log_dir, tls=tls_files) as server:
        with H2Client(s.HOST, server.port, tls_files.client_context()) as client:
            late = client.request(
                "POST", "/facts", [("content-length", "5")], b"hello", body_after="end"
            )
            assert late.response.status == 200
            after = client.request("GET", "/facts")
        if config.family == "granian":
            assert after.response.status == 200
            return
        assert after.connection_error == "connection closed by the server"
        if config.trio:
            # It even exits with status 0: a supervisor would not see a crash.
            assert server.process.wait(timeout=s.STOP_TIMEOUT) == 0
            assert "KeyError" in server.log()
        else:
            # asyncio logs nothing: the connection just goes away.
            assert server.client().get("/facts").status_code == 200


h2c_server = s.server_fixture(
    "interop.raw_app:app", [s.HYPERCORN_ASYNCIO, s.HYPERCORN_TRIO, s.UVICORN_H11]
)


def test_http2_with_prior_knowledge_on_plain_tcp(h2c_server: s.Server, cell: CellFactory) -> None:
    """hypercorn speaks h2c (and advertises its HTTP/2 extensions); uvicorn refuses it."""
    with httpx.Client(base_url=h2c_server.base_url, http1=False, http2=True, timeout=5) as client:
        if h2c_server.config.family == "uvicorn":
            http2 = cell(h2c_server.config, "HTTP/2")
            with pytest.raises(httpx.HTTPError):
                client.get("/facts")
            http2.value = "no (HTTP/1.1 only)"
            return
        response = client.get("/facts")
    assert response.http_version == "HTTP/2"
    assert response.json()["http_version"] == "2"
    assert frozenset(response.json()["extensions"]) == {PUSH, EARLY_HINT, TRAILERS}


CLI_OPTIONS = {
    # server: (module, the option that starts several workers, a trio flavour?)
    "uvicorn": ("uvicorn", "--workers", False),
    "hypercorn": ("hypercorn", "--workers", True),
    "daphne": ("daphne", None, False),
    "granian": ("granian", "--workers", False),
}


@pytest.mark.parametrize("family", sorted(CLI_OPTIONS))
def test_what_the_command_line_offers(family: str, cell: CellFactory) -> None:
    """Workers and trio, for the servers that do not run them in the suite."""
    module, workers_option, trio = CLI_OPTIONS[family]
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert ("trio" in done.stdout) is trio
    if workers_option is None:
        workers = cell(family, "workers")
        assert "--workers" not in done.stdout
        assert " -w" not in done.stdout
        workers.value = "no (single process)"
    else:
        assert workers_option in done.stdout
    if not trio:
        no_trio = cell(family, "trio")
        no_trio.value = "no (asyncio only)"
