"""GZip and CORS under a real server (uvicorn) and a real client (httpx, which decompresses)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from interop import servers as s

from .server_app import FRONT, TEXT

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run ``server_app`` under uvicorn (tests/interop/servers.py starts and stops it)."""
    pytest.importorskip("uvicorn")
    log_dir = tmp_path_factory.mktemp("uvicorn")
    with s.running(s.UVICORN, "middleware.server_app:app", log_dir) as server:
        yield server.base_url


@pytest.mark.parametrize("path", ["/text", "/stream"])
def test_httpx_gets_the_original_bytes_of_a_gzipped_response(base_url: str, path: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client, client.stream("GET", path) as r:
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


def test_identity_when_the_client_does_not_accept_gzip(base_url: str) -> None:
    r = httpx.get(base_url + "/stream", headers={"Accept-Encoding": "identity"}, timeout=10)
    assert "content-encoding" not in r.headers
    assert r.text == TEXT


def test_cors_preflight_and_request_through_the_server(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
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
