"""The showcase app under every server, driven by real clients.

Each extension is checked against what the server advertised for the request (the
app's ``/advertised`` reports ``request.supports``), not against a belief: where push
is advertised the h2 client sees the pushed stream, where not ``push()`` says False
and the page still works. The same for early hints, pathsend and WebSocket denial.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sse_events import Event, EventStreamParser
from websockets.exceptions import InvalidStatus

from interop import servers as s
from interop.app import DOWNLOAD_FILE, STYLE
from interop.conftest import CellFactory, protocol_cell
from interop.h2client import H2Client

showcase = s.server_fixture("interop.app:app", s.ALL)
h2_showcase = s.server_fixture("interop.app:app", s.HTTP2)
SETTLE_TIMEOUT = 5.0


def get_json(client: httpx.Client, path: str, **options: Any) -> Any:
    """GET ``path`` and return its JSON body, asserting a 200."""
    response = client.get(path, **options)
    assert response.status_code == 200, response.text
    return response.json()


def advertised(client: httpx.Client) -> dict[str, bool]:
    """What microasgi saw advertised for a request over this client's protocol."""
    result: dict[str, bool] = get_json(client, "/advertised")
    return result


def traced(client: httpx.Client, path: str, **options: Any) -> tuple[httpx.Response, list[str]]:
    """Make a request and return it with the ASGI message types the app sent for it."""
    trace_id = uuid.uuid4().hex
    headers = {"x-trace": trace_id, **options.pop("headers", {})}
    response = client.get(path, headers=headers, **options)
    # Same keep-alive connection, hence the same worker, as the traced request.
    return response, get_json(client, f"/trace/{trace_id}")


def test_text_json_path_params_and_query(showcase: s.Server, cell: CellFactory) -> None:
    protocol_cell(showcase, cell)
    client = showcase.client()
    response = client.get("/")
    assert (response.status_code, response.text) == (200, "Hello, world!")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    expected_version = "HTTP/2" if showcase.config.http2 else "HTTP/1.1"
    assert response.http_version == expected_version
    assert get_json(client, "/json") == {"framework": "microasgi", "unicode": "héllo ✓"}
    assert get_json(client, "/users/42") == {"id": 42, "is_int": True}
    assert client.get("/users/forty-two").status_code == 404
    assert get_json(client, "/files/a/b/c.txt") == {"rest": "a/b/c.txt"}
    assert client.get("/hello/caf%C3%A9").text == "Hello, café!"
    assert get_json(client, "/search?q=a&q=b%20c&page=2") == {"q": ["a", "b c"], "page": "2"}
    # DELETE without a body: a body left unread is its own test (test_unread_body.py).
    assert client.delete("/users/42").status_code == 405


def test_head_and_redirect_slashes(showcase: s.Server, cell: CellFactory) -> None:
    protocol_cell(showcase, cell)
    client = showcase.client()
    head = client.head("/json")
    assert head.status_code == 200
    assert head.content == b""
    redirect = client.get("/users/7/?x=1")
    assert redirect.status_code == 308
    assert redirect.headers["location"].endswith("/users/7?x=1")


def test_request_bodies(showcase: s.Server, cell: CellFactory) -> None:
    protocol_cell(showcase, cell)
    client = showcase.client()
    assert get_json_post(client, "/echo/json", json={"a": [1, "é"]}) == {
        "received": {"a": [1, "é"]}
    }
    assert (
        client.post(
            "/echo/json", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    form = get_json_post(client, "/echo/form", data={"name": "Zoë", "tags": ["x", "y"]})
    assert form == {"name": ["Zoë"], "tags": ["x", "y"]}
    # Big enough to spool to disk (the default spool threshold is 1 MiB).
    blob = bytes(range(256)) * 8192
    uploaded = get_json_post(
        client,
        "/upload",
        data={"title": "report"},
        files={"doc": ("report.bin", blob, "application/octet-stream")},
    )
    assert uploaded == {
        "fields": {"title": "report"},
        "files": {
            "doc": {
                "filename": "report.bin",
                "content_type": "application/octet-stream",
                "size": len(blob),
                "sha256": hashlib.sha256(blob).hexdigest(),
            }
        },
    }


def get_json_post(client: httpx.Client, path: str, **options: Any) -> Any:
    """POST to ``path`` and return its JSON body, asserting a 200."""
    response = client.post(path, **options)
    assert response.status_code == 200, response.text
    return response.json()


def test_streaming_response(showcase: s.Server, cell: CellFactory) -> None:
    protocol_cell(showcase, cell)
    with showcase.client().stream("GET", "/stream?n=20") as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        body = b"".join(response.iter_bytes())
    assert body == b"".join(f"line {n}\n".encode() for n in range(20))


def read_events(chunks: Iterator[bytes], limit: int | None = None) -> list[Event]:
    """The events of a streamed body, as a browser dispatches them; with ``limit``, stop
    reading once that many came (keep ``chunks``: dropping it closes the response)."""
    parser = EventStreamParser()
    events: list[Event] = []
    for chunk in chunks:
        events += parser.feed(chunk)
        if limit is not None and len(events) >= limit:
            break
    return events


def test_server_sent_events(showcase: s.Server, cell: CellFactory) -> None:
    """Events in order, framed so the client reads each two-line event back; resumable."""
    protocol_cell(showcase, cell)
    client = showcase.client()
    with client.stream("GET", "/sse?n=50") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-store"
        assert "content-length" not in response.headers
        events = read_events(response.iter_bytes())
    expected = [Event(f"event {n}\nsecond line", "message", str(n)) for n in range(50)]
    assert events == expected
    with client.stream("GET", "/sse?n=50", headers={"last-event-id": "46"}) as response:
        assert read_events(response.iter_bytes()) == expected[47:]


@pytest.mark.parametrize("silent", [False, True], ids=["ticking", "silent"])
def test_an_event_stream_stops_when_its_client_leaves(showcase: s.Server, silent: bool) -> None:
    """The generator ends (its ``finally`` runs) once the client has gone, whether the
    stream was sending or waiting for something to say."""
    token = uuid.uuid4().hex
    marker = showcase.temp_dir / f"sse-{token}"
    client = showcase.client()
    path = f"/sse/forever?token={token}&silent={int(silent)}"
    with client.stream("GET", path) as response:
        chunks = response.iter_bytes()
        assert [e.data for e in read_events(chunks, limit=1)] == ["tick"]
        assert marker.exists()
    client.close()  # the connection goes: HTTP/1.1 and HTTP/2 alike
    wait_until_gone(marker)


def wait_until_gone(marker: Path) -> None:
    """Poll until the event stream's marker file is gone (its generator ended)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while marker.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the event stream's generator still ran {SETTLE_TIMEOUT}s later")
        time.sleep(0.05)


@pytest.mark.parametrize("silent", [False, True], ids=["ticking", "silent"])
def test_an_http2_event_stream_stops_when_its_stream_is_reset(
    h2_showcase: s.Server, silent: bool
) -> None:
    """A browser leaving the page resets the stream, and the connection stays open."""
    assert h2_showcase.tls is not None
    token = uuid.uuid4().hex
    marker = h2_showcase.temp_dir / f"sse-{token}"
    with H2Client(s.HOST, h2_showcase.port, h2_showcase.tls.client_context()) as h2:
        stream = h2.read_until(f"/sse/forever?token={token}&silent={int(silent)}", b"tick")
        assert marker.exists()
        h2.reset(stream)
        wait_until_gone(marker)  # while the connection is still open
        assert h2.request("GET", "/").response.body == b"Hello, world!"


def test_ranged_file_download(showcase: s.Server, cell: CellFactory) -> None:
    """Full, ranged and conditional downloads; through pathsend where advertised."""
    pathsend = cell(showcase.config, "pathsend")
    client = showcase.client()
    data = DOWNLOAD_FILE.read_bytes()
    full, sent = traced(client, "/download")
    assert full.status_code == 200
    assert full.content == data
    assert full.headers["content-disposition"].endswith('filename="showcase.py"')
    if advertised(client)["http.response.pathsend"]:
        assert "http.response.pathsend" in sent
        pathsend.value = "yes"
    else:
        assert "http.response.pathsend" not in sent
        pathsend.value = "no"
    part = client.get("/download", headers={"range": "bytes=10-29"})
    assert part.status_code == 206
    assert part.content == data[10:30]
    assert part.headers["content-range"] == f"bytes 10-29/{len(data)}"
    assert client.get("/download", headers={"range": f"bytes={len(data)}-"}).status_code == 416
    etag = full.headers["etag"]
    assert client.get("/download", headers={"if-none-match": etag}).status_code == 304


def test_mounted_sub_app_and_raw_app(showcase: s.Server, cell: CellFactory) -> None:
    protocol_cell(showcase, cell)
    client = showcase.client()
    ping = get_json(client, "/sub/ping")
    assert ping == {
        "pong": True,
        "path": "/sub/ping",
        "root_path": "/sub",
        "url": f"{showcase.base_url}/sub/ping",
    }
    raw = get_json(client, "/raw/facts?x=1")
    assert (raw["path"], raw["root_path"], raw["query_string"]) == ("/raw/facts", "/raw", "x=1")
    assert get_json(client, "/links") == {
        "user": f"{showcase.base_url}/users/3",
        "ping": f"{showcase.base_url}/sub/ping",
        "path": "/users/3",
    }


def test_lifespan_state(showcase: s.Server, cell: CellFactory) -> None:
    """Lifespan runs once per worker (mounted apps too) and its state reaches requests."""
    lifespan = cell(showcase.config, "lifespan")
    config = showcase.config
    seen = []
    for _ in range(2 * config.workers):
        with showcase.client() as fresh:
            seen.append(get_json(fresh, "/lifespan"))
    if not config.lifespan:
        assert showcase.lifespan_startups() == []
        assert all(state["greeting"] is None for state in seen)
        lifespan.value = "no"
        return
    marks = showcase.lifespan_startups()
    pids = showcase.started_pids()
    assert len(pids) == config.workers
    # Exactly one startup per worker for the showcase and for the mounted raw app.
    assert sorted(marks) == sorted([f"showcase-{p}-1" for p in pids] + [f"raw-{p}-1" for p in pids])
    for state in seen:
        assert state == {
            "greeting": "hello from lifespan",
            "started_by": state["pid"],
            "pid": state["pid"],
        }
    lifespan.value = "yes"


def test_websocket_echo(showcase: s.Server, cell: CellFactory) -> None:
    websocket = cell(showcase.config, "WebSocket")
    with showcase.ws_connect("/ws/text") as ws:
        for message in ["hello", "héllo ✓", "x" * 70000]:
            ws.send(message)
            assert ws.recv(timeout=5) == message
    with showcase.ws_connect("/ws/bytes") as ws:
        for payload in [b"\x00\x01\xff", bytes(range(256)) * 300]:
            ws.send(payload)
            assert ws.recv(timeout=5) == payload
    websocket.value = "yes"


def test_websocket_denial(showcase: s.Server, cell: CellFactory) -> None:
    """A denied WebSocket gets the 401 JSON body where the server advertises the extension."""
    denial = cell(showcase.config, "denial response")
    with showcase.ws_connect("/ws/private?token=secret") as ws:
        greeting = json.loads(ws.recv(timeout=5))["greeting"]
    assert greeting == ("hello from lifespan" if showcase.config.lifespan else None)
    with pytest.raises(InvalidStatus) as denied, showcase.ws_connect("/ws/private"):
        pass
    response = denied.value.response
    # The WebSocket scope's extensions are not visible over HTTP; raw_app reports them.
    with showcase.ws_connect("/raw/ws") as ws:
        ws_extensions = json.loads(ws.recv(timeout=5))["extensions"]
    if "websocket.http.response" in ws_extensions:
        assert response.status_code == 401
        assert json.loads(response.body) == {"detail": "unauthorized"}
        assert response.headers["content-type"] == "application/json"
        denial.value = "yes (401 + JSON body)"
    else:
        assert (response.status_code, response.body) == (403, b"")
        denial.value = "no (403, no body)"


def test_server_push(showcase: s.Server, cell: CellFactory) -> None:
    push = cell(showcase.config, "server push")
    client = showcase.client()
    offered = advertised(client)["http.response.push"]
    assert get_json(client, "/push") == {"pushed": offered}
    if not showcase.config.http2:
        assert not offered
        push.value = "no on HTTP/1.1"
        return
    assert showcase.tls is not None
    with H2Client(s.HOST, showcase.port, showcase.tls.client_context()) as h2:
        exchange = h2.request("GET", "/push")
    assert exchange.response.status == 200
    assert json.loads(exchange.response.body) == {"pushed": offered}
    if not offered:
        assert exchange.pushes == {}
        push.value = "no on HTTP/2"
        return
    promised, pushed = exchange.pushes["/style.css"]
    assert dict(promised)[":method"] == "GET"
    assert (pushed.status, pushed.body.decode()) == (200, STYLE)
    push.value = "yes on HTTP/2"


def test_early_hints(showcase: s.Server, cell: CellFactory) -> None:
    hints = cell(showcase.config, "early hints")
    client = showcase.client()
    offered = advertised(client)["http.response.early_hint"]
    response, sent = traced(client, "/hints")
    assert response.json() == {"sent": offered}
    # A hint must come before the response starts: servers reject it after.
    assert sent[: 2 if offered else 1] == (
        ["http.response.early_hint", "http.response.start"] if offered else ["http.response.start"]
    )
    protocol = "HTTP/2" if showcase.config.http2 else "HTTP/1.1"
    if not offered:
        hints.value = f"no on {protocol}"
        return
    assert showcase.tls is not None
    with H2Client(s.HOST, showcase.port, showcase.tls.client_context()) as h2:
        exchange = h2.request("GET", "/hints")
    links = [dict(headers).get("link") for headers in exchange.response.informational]
    assert links == ["</style.css>; rel=preload; as=style"]
    assert exchange.response.status == 200
    hints.value = f"yes on {protocol}"


def test_curl(showcase: s.Server, cell: CellFactory) -> None:
    """curl (libcurl with nghttp2) as another client: negotiated protocol and a range."""
    protocol_cell(showcase, cell)
    options = ["--http2"] if showcase.config.http2 else ["--http1.1"]
    if showcase.tls is not None:
        options += ["--cacert", str(showcase.tls_ca_file())]
    url = f"{showcase.base_url}/download"
    write_out = "\n%{http_version} %{http_code}"
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "10", *options, "-r", "0-15", "-w", write_out, url],
        capture_output=True,
        timeout=20,
        check=True,
    )
    body, _, summary = done.stdout.rpartition(b"\n")
    assert summary.decode() == ("2 206" if showcase.config.http2 else "1.1 206")
    assert body == DOWNLOAD_FILE.read_bytes()[:16]
