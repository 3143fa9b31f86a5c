"""Clients that misbehave, under uvicorn and hypercorn: the server keeps serving.

Raw sockets play the bad clients: leaving in the middle of a streaming response or of
an upload, sending a body slowly, sending undecodable paths. After each, the showcase
must answer the next request, and nothing may be left behind in the server process
(the stream's generator ended, no upload file open or on disk).
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from interop import servers as s

CONFIGS = [s.UVICORN_H11, s.UVICORN_HTTPTOOLS, s.HYPERCORN_ASYNCIO, s.HYPERCORN_TRIO]
SETTLE_TIMEOUT = 5.0

server = s.server_fixture("interop.app:app", CONFIGS)


def connect(server: s.Server) -> socket.socket:
    """A raw TCP connection to the server, with a bounded timeout."""
    return socket.create_connection((s.HOST, server.port), timeout=5)


def read_status(sock: socket.socket) -> int:
    """Read until the status line and return the status code."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed before a status line: {data!r}")
        data += chunk
    return int(data.split(b" ", 2)[1])


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (requests say ``Connection: close``)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def eventually(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` until it holds, for a bounded time."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {SETTLE_TIMEOUT}s: {what}")
        time.sleep(0.05)


def still_serving(server: s.Server) -> None:
    """A fresh client gets a normal answer."""
    with server.client() as client:
        response = client.get("/")
    assert (response.status_code, response.text) == (200, "Hello, world!")


def open_temp_files(pid: int, temp_dir: Path) -> list[str]:
    """Files under the server's TMPDIR that the process holds open (deleted ones too)."""
    held = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.startswith(str(temp_dir)):
            held.append(target)
    return held


def stats(server: s.Server) -> dict[str, int]:
    """The showcase's counters for the worker that answers."""
    with server.client() as client:
        result: dict[str, int] = client.get("/stats").json()
    return result


def test_client_leaves_in_the_middle_of_a_streaming_response(server: s.Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /stream/forever HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_status(sock) == 200
        received = 0
        while received < 64 * 1024:
            received += len(sock.recv(65536))
        assert stats(server)["active_streams"] == 1
    # The generator must end (its finally ran): nothing keeps producing for nobody.
    eventually(lambda: stats(server)["active_streams"] == 0, "the stream ended")
    still_serving(server)


firehose_server = s.server_fixture("interop.app:app", [*CONFIGS, s.GRANIAN])


def reset(sock: socket.socket) -> None:
    """Close as a client that crashed: a TCP reset, not an orderly close."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_client_leaving_a_stream_that_never_waits_leaves_the_server_serving(
    firehose_server: s.Server,
) -> None:
    """A source that never awaits, to a client that resets: the server must not freeze."""
    sock = connect(firehose_server)
    sock.sendall(b"GET /stream/firehose HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_status(sock) == 200
    received = 0
    while received < 64 * 1024:
        received += len(sock.recv(65536))
    reset(sock)
    still_serving(firehose_server)
    eventually(lambda: stats(firehose_server)["active_streams"] == 0, "the firehose stopped")


def test_client_leaves_in_the_middle_of_an_upload(server: s.Server) -> None:
    """An upload cut after it spooled to disk leaves no file open or behind."""
    boundary = "interopboundary"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="doc"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    declared = 8 * 1024 * 1024
    pid = stats(server)["pid"]
    with connect(server) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Type: multipart/form-data; boundary={boundary}\r\n".encode()
            + f"Content-Length: {declared}\r\n\r\n".encode()
            + head
        )
        # Past the 1 MiB spool threshold, so the part is in a temporary file by now.
        chunk = b"\xab" * 65536
        for _ in range(48):
            sock.sendall(chunk)
        eventually(lambda: bool(open_temp_files(pid, server.temp_dir)), "the upload spooled")
    eventually(lambda: not open_temp_files(pid, server.temp_dir), "the upload file was closed")
    assert list(server.temp_dir.iterdir()) == []
    still_serving(server)


def test_slow_body_does_not_block_other_requests(server: s.Server) -> None:
    pieces = [bytes([n]) * 1000 for n in range(10)]
    with connect(server) as slow:
        slow.sendall(
            b"POST /count HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10000\r\n\r\n"
        )
        for piece in pieces:
            slow.sendall(piece)
            # Others are served while this body trickles in.
            still_serving(server)
            time.sleep(0.02)
        response = read_until_closed(slow)
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b'{"size":10000}')


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        (b"/hello/%zz", {200}),
        (b"/users/%ZZ", {404}),
        (b"/hello/caf%E9", {200}),
        (b"/hello/%", {200, 400}),
        (b"/hello/caf\xe9", {200, 400}),
        (b"/hello/\xff\xfe", {200, 400}),
    ],
)
def test_undecodable_paths_get_a_clear_answer(
    server: s.Server, target: bytes, allowed: set[int]
) -> None:
    """Bad percent-encoding and invalid UTF-8: an answer, never a 5xx, and the next request."""
    with connect(server) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status = read_status(sock)
    assert status in allowed
    still_serving(server)
