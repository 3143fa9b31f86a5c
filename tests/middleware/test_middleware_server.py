"""GZip and CORS under a real server (uvicorn) and a real client (httpx, which decompresses)."""

from __future__ import annotations

import httpx
import pytest
from interop import servers as s

from .server_app import FRONT, TEXT

pytestmark = pytest.mark.interop

served = s.server_fixture("middleware.server_app:app", [s.UVICORN])


@pytest.mark.parametrize("path", ["/text", "/stream"])
def test_httpx_gets_the_original_bytes_of_a_gzipped_response(served: s.Server, path: str) -> None:
    with (
        httpx.Client(base_url=served.base_url, timeout=10) as client,
        client.stream("GET", path) as r,
    ):
        body = r.read()
        on_the_wire = r.num_bytes_downloaded
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in r.headers["vary"].lower()
    assert body.decode() == TEXT
    assert on_the_wire < len(TEXT) // 4
    if path == "/stream":
        assert "content-length" not in r.headers
        assert r.headers["transfer-encoding"] == "chunked"
    else:
        assert int(r.headers["content-length"]) == on_the_wire


def test_identity_when_the_client_does_not_accept_gzip(served: s.Server) -> None:
    r = httpx.get(served.base_url + "/stream", headers={"Accept-Encoding": "identity"}, timeout=10)
    assert "content-encoding" not in r.headers
    assert r.text == TEXT


def test_cors_preflight_and_request_through_the_server(served: s.Server) -> None:
    with httpx.Client(base_url=served.base_url, timeout=10) as client:
        allowed = client.options(
            "/text", headers={"Origin": FRONT, "Access-Control-Request-Method": "POST"}
        )
        refused = client.options(
            "/text", headers={"Origin": FRONT, "Access-Control-Request-Method": "DELETE"}
        )
        actual = client.get("/text", headers={"Origin": FRONT})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-methods"] == "GET, POST"
    assert refused.status_code == 400
    assert actual.headers["access-control-allow-origin"] == FRONT
    assert [v.strip() for v in actual.headers["vary"].split(",")] == ["Accept-Encoding", "Origin"]
