"""FileResponse and StaticFiles under real servers (uvicorn, hypercorn, granian), real client.

The servers run tests/_files_server_app.py, with the served directory passed in
``MICROASGI_FILES_DIR``; tests/interop/servers.py starts and stops them.
"""

from __future__ import annotations

import email.message
import email.parser
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop import servers as s

pytestmark = pytest.mark.interop

SIZE = 20 * 1024 * 1024
APP = "_files_server_app:app"


@pytest.fixture(scope="module")
def data() -> bytes:
    """20 MiB of random bytes to serve."""
    return os.urandom(SIZE)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> Path:
    """The served directory with ``data`` in it, and a secret beside it."""
    root = tmp_path_factory.mktemp("files")
    (root / "public").mkdir()
    (root / "public" / "big.bin").write_bytes(data)
    (root / "public" / "index.html").write_bytes(b"<h1>home</h1>")
    (root / "secret.txt").write_bytes(b"secret")
    return root


@pytest.fixture(scope="module", params=s.DEFAULT_OPTIONS, ids=str)
def served(
    request: pytest.FixtureRequest, tree: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[s.Server]:
    """Run the files app under the server, serving ``tree``."""
    config: s.ServerConfig = request.param
    pytest.importorskip(config.family)
    log_dir = tmp_path_factory.mktemp(f"files-{config.name}")
    with s.running(config, APP, log_dir, env={"MICROASGI_FILES_DIR": str(tree)}) as server:
        yield server


# --- downloads ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/file", "/static/big.bin"])
def test_full_download_matches_the_file(served: s.Server, data: bytes, path: str) -> None:
    digest = hashlib.sha256()
    with served.client(timeout=30) as http, http.stream("GET", path) as r:
        for chunk in r.iter_bytes():
            digest.update(chunk)
    assert r.status_code == 200
    assert r.headers["content-length"] == str(SIZE)
    assert r.headers["content-type"] == "application/octet-stream"
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("value", "start", "stop"),
    [
        ("bytes=0-1048575", 0, 1 << 20),
        ("bytes=12345678-", 12345678, SIZE),
        ("bytes=-777777", SIZE - 777777, SIZE),
        ("bytes=5000000-15000000", 5000000, 15000001),
    ],
)
def test_single_ranges_match_byte_for_byte(
    served: s.Server, data: bytes, value: str, start: int, stop: int
) -> None:
    with served.client(timeout=30) as http:
        r = http.get("/file", headers={"range": value})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes {start}-{stop - 1}/{SIZE}"
    assert r.content == data[start:stop]


def test_multiple_ranges_match_byte_for_byte(served: s.Server, data: bytes) -> None:
    with served.client(timeout=30) as http:
        r = http.get("/file", headers={"range": "bytes=-100, 0-99, 10000000-10999999"})
    assert r.status_code == 206
    assert int(r.headers["content-length"]) == len(r.content)
    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {r.headers['content-type']}\r\n\r\n".encode() + r.content
    )
    parts: list[email.message.Message] = message.get_payload()  # type: ignore[assignment]
    expected = [(0, 100), (10000000, 11000000), (SIZE - 100, SIZE)]
    assert [part["Content-Range"] for part in parts] == [
        f"bytes {start}-{stop - 1}/{SIZE}" for start, stop in expected
    ]
    assert [part.get_payload(decode=True) for part in parts] == [
        data[start:stop] for start, stop in expected
    ]


def test_head_304_and_416(served: s.Server) -> None:
    with served.client(timeout=30) as http:
        head = http.head("/file")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(SIZE)
        assert head.content == b""
        r = http.get("/file", headers={"if-none-match": head.headers["etag"]})
        assert r.status_code == 304
        assert r.content == b""
        r = http.get("/file", headers={"range": f"bytes={SIZE}-"})
        assert r.status_code == 416
        assert r.headers["content-range"] == f"bytes */{SIZE}"


def test_a_client_leaving_mid_download_leaves_the_server_healthy(
    served: s.Server, data: bytes
) -> None:
    with served.client(timeout=30) as http:
        with http.stream("GET", "/file") as r:
            received = 0
            for chunk in r.iter_raw():
                received += len(chunk)
                if received >= 1 << 20:
                    break
        # The connection is closed mid-body; the server keeps serving.
        assert http.get("/ready").text == "ready"
        assert http.get("/file", headers={"range": "bytes=0-9"}).content == data[:10]
    time.sleep(0.5)  # give the server a moment to log an error, if it were to
    assert "Traceback" not in served.log()


@pytest.mark.parametrize(
    "target",
    [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/%252e%252e/secret.txt",
    ],
)
def test_traversal_over_the_wire_is_refused(served: s.Server, target: str) -> None:
    # httpx would normalise the path: send the request line exactly as an attacker does.
    with socket.create_connection((s.HOST, served.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    status_line = response.split(b"\r\n", 1)[0]
    assert status_line.split()[1] == b"404"  # it reached StaticFiles, which refused it
    assert b"secret" not in response


def test_pathsend_is_offered_by_granian_only(served: s.Server) -> None:
    # So the downloads above went through http.response.pathsend under granian, and
    # through chunked reads under the others.
    with served.client(timeout=30) as http:
        offered = http.get("/pathsend").json()["pathsend"]
    assert offered is (served.config.family == "granian")


def test_html_index_over_the_wire(served: s.Server) -> None:
    with served.client(timeout=30) as http:
        assert http.get("/static/").content == b"<h1>home</h1>"
