"""GZip and CORS under a real server (uvicorn) and a real client (httpx, which decompresses)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .server_app import FRONT, TEXT

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
READY_SECONDS = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run ``server_app`` under uvicorn on a free port; stop it by PID afterwards."""
    pytest.importorskip("uvicorn")
    log_path = tmp_path_factory.mktemp("uvicorn") / "server.log"
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "tests.middleware.server_app:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not come up:\n{log_path.read_text(errors='replace')}")
            try:
                httpx.get(url + "/text", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


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
