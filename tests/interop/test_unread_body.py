"""A handler that answers without reading the request body must not break the server.

It happens all the time: a 404, 405 or 401 on a POST, or a handler that ignores the
body. Under HTTP/2, hypercorn 0.18 fails on DATA that arrives for a stream whose
response already finished (see test_server_facts): its asyncio worker drops the
connection and its trio worker takes the whole server down. So microasgi takes the
small unread body the client has already sent before it finishes the response (never
waiting for one the client has not sent); these tests hold it to that under every
server, with a fresh server per test since a failure can kill it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from interop import servers as s
from interop.conftest import CellFactory, protocol_cell
from interop.h2client import H2Client

BODY = b"x" * 4096


@pytest.fixture
def fresh_server(
    request: pytest.FixtureRequest, interop_tmp: Path, tls_files: s.TLSFiles
) -> Iterator[s.Server]:
    """A showcase server of its own for one test."""
    config: s.ServerConfig = request.param
    log_dir = interop_tmp / "unread-body" / request.node.name
    with s.running(config, "interop.app:app", log_dir, tls=tls_files) as server:
        yield server


def assert_still_serving(server: s.Server) -> None:
    """The process is alive and a new connection is answered."""
    assert server.process.poll() is None, "the server process exited"
    with server.client() as client:
        assert client.get("/").status_code == 200


# Not hypercorn's HTTP/2: httpx writes the body after the headers in a write of its own,
# and a response never waits for it, so whether hypercorn has it before the response ends
# is a race that its bug turns into a dropped connection (test_server_facts shows it).
@pytest.mark.parametrize(
    "fresh_server",
    [s.UVICORN_H11, s.HYPERCORN_ASYNCIO, *(c for c in s.HTTP2 if c.family != "hypercorn")],
    indirect=True,
    ids=str,
)
def test_unread_body_with_httpx(fresh_server: s.Server, cell: CellFactory) -> None:
    """httpx sends the body (even an empty one) after the headers, as browsers do."""
    protocol_cell(fresh_server, cell)
    client = fresh_server.client()
    for _ in range(3):
        ignored = client.post("/ignore-body", content=BODY)
        assert (ignored.status_code, ignored.text) == (200, "ignored")
        # An empty body and a 405: the body is never read by any handler.
        assert client.post("/users/1").status_code == 405
    # The same connection still works.
    assert client.get("/").status_code == 200
    assert_still_serving(fresh_server)


@pytest.mark.parametrize("fresh_server", s.HTTP2, indirect=True, ids=str)
def test_a_body_sent_with_its_headers_is_taken_before_the_response_ends(
    fresh_server: s.Server, cell: CellFactory
) -> None:
    """The body the client has already sent is read and dropped, so hypercorn never sees
    DATA for a stream whose response finished."""
    protocol_cell(fresh_server, cell)
    assert fresh_server.tls is not None
    with H2Client(s.HOST, fresh_server.port, fresh_server.tls.client_context()) as client:
        for _ in range(20):
            ignored = client.request(
                "POST", "/ignore-body", [("content-length", str(len(BODY)))], BODY
            )
            assert (ignored.response.status, ignored.response.body) == (200, b"ignored")
        after = client.request("GET", "/")
    assert after.connection_error is None
    assert after.response.status == 200
    assert_still_serving(fresh_server)


# HTTP/2 only: in HTTP/1.1 a body after the response is the next request's bytes. Not
# hypercorn's: a response never waits for a body the client has not sent, and hypercorn
# fails on one that comes after the response (test_server_facts shows it).
@pytest.mark.parametrize(
    "fresh_server", [c for c in s.HTTP2 if c.family != "hypercorn"], indirect=True, ids=str
)
def test_body_sent_once_the_response_headers_came(
    fresh_server: s.Server, cell: CellFactory
) -> None:
    """An uploader slower than the server: the body follows the response headers."""
    protocol_cell(fresh_server, cell)
    assert fresh_server.tls is not None
    with H2Client(s.HOST, fresh_server.port, fresh_server.tls.client_context()) as client:
        late = client.request(
            "POST", "/ignore-body", [("content-length", str(len(BODY)))], BODY, body_after="headers"
        )
        assert (late.response.status, late.response.body) == (200, b"ignored")
        after = client.request("GET", "/")
    assert after.connection_error is None
    assert after.response.status == 200
    assert_still_serving(fresh_server)
