"""A request's life under real servers: no response held on an unread body, a client
that left seen by ``is_disconnected`` on asyncio and trio, a failed startup that stops
the server. (tests/test_lifecycle.py holds the same stories in process.)
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from interop import servers as s

# Generous against a wait of a whole second, which is what the old end-of-response
# drain cost; the answers themselves take milliseconds.
NOT_HELD = 0.5

uvicorn_server = s.server_fixture("interop.app:app", [s.UVICORN_H11, s.UVICORN_HTTPTOOLS])
plain_server = s.server_fixture("interop.app:app", s.PLAIN)


def test_a_handler_reading_request_receive_is_answered_at_once(uvicorn_server: s.Server) -> None:
    with uvicorn_server.client() as client:
        for _ in range(5):
            started = time.monotonic()
            response = client.post("/raw-receive", content=b"x" * 5000)
            assert response.text == "5000 bytes"
            assert time.monotonic() - started < NOT_HELD


def test_a_401_to_an_upload_not_yet_sent_is_answered_at_once(uvicorn_server: s.Server) -> None:
    with socket.create_connection((s.HOST, uvicorn_server.port), timeout=NOT_HELD) as sock:
        # The headers announce a body the client has not sent (an upload waiting on auth).
        sock.sendall(b"POST /denied-upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        received = b""
        while not complete(received):
            chunk = sock.recv(4096)  # times out if the answer waits on the body
            assert chunk, "closed before answering"
            received += chunk
    assert received.startswith(b"HTTP/1.1 401")


def complete(response: bytes) -> bool:
    """Whether ``response`` holds a whole HTTP/1.1 response with a Content-Length body."""
    head, found, body = response.partition(b"\r\n\r\n")
    if not found:
        return False
    lengths = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
    return len(body) >= int(lengths[0].split(b":")[1])


def test_is_disconnected_sees_the_client_leave(plain_server: s.Server) -> None:
    token = f"{plain_server.config.name}-{time.monotonic_ns()}"
    with socket.create_connection((s.HOST, plain_server.port), timeout=5) as sock:
        sock.sendall(f"GET /poll/{token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.2)  # the long-poll is waiting; then the client goes away
    deadline = time.monotonic() + 5
    with plain_server.client() as client:
        while not client.get(f"/left/{token}").json()["left"]:
            assert time.monotonic() < deadline, "is_disconnected never saw the client leave"
            time.sleep(0.05)


@pytest.mark.parametrize(
    "config", [s.UVICORN, s.HYPERCORN_ASYNCIO, s.HYPERCORN_TRIO, s.GRANIAN], ids=str
)
def test_a_failed_startup_with_mounts_stops_the_server_with_its_reason(
    config: s.ServerConfig, tmp_path: Path
) -> None:
    launch = s.Launch(
        app="interop.failing_startup_app:app", port=s.free_port(), root_path=None, tls=None
    )
    log = tmp_path / "server.log"
    env = {"PYTHONPATH": f"{s.REPO_ROOT}:{s.TESTS_DIR}", "PATH": "/usr/bin:/bin"}
    with s.running_command(
        [s.sys.executable, *config.command(launch)], log, cwd=tmp_path, env=env
    ) as process:
        try:
            code = process.wait(timeout=15)
        except s.subprocess.TimeoutExpired:
            pytest.fail(f"{config} kept running after its startup failed:\n{log.read_text()}")
    # hypercorn exits with status 0 even so (test_server_facts records it).
    assert code != 0 or config.family == "hypercorn"
    assert "database unreachable at startup" in log.read_text()
