"""FileResponse and StaticFiles under real servers (uvicorn, hypercorn, granian), real client.

The app below is what the servers run: ``uvicorn tests.test_files_server:app``, with the
served directory passed in ``MICROASGI_FILES_DIR``.
"""

from __future__ import annotations

import email.message
import email.parser
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from microasgi import App, Request
from microasgi.responses import FileResponse
from microasgi.staticfiles import StaticFiles

pytestmark = pytest.mark.interop

SIZE = 20 * 1024 * 1024
DIRECTORY = os.environ.get("MICROASGI_FILES_DIR", "")

app = App()
if DIRECTORY:
    app.mount("/static", StaticFiles(directory=os.path.join(DIRECTORY, "public"), html=True))


@app.get("/file")
async def big_file(request: Request) -> FileResponse:
    return FileResponse(os.path.join(DIRECTORY, "public", "big.bin"), filename="big.bin")


@app.get("/ready")
async def ready(request: Request) -> str:
    return "ready"


@app.get("/pathsend")
async def pathsend(request: Request) -> dict[str, bool]:
    return {"pathsend": request.supports("http.response.pathsend")}


# --- the servers ------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
READY_SECONDS = 20.0


@dataclass
class Served:
    server: str
    url: str
    port: int
    data: bytes
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(server: str, port: int) -> list[str]:
    target = "tests.test_files_server:app"
    if server == "uvicorn":
        options = ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        return [sys.executable, "-m", "uvicorn", target, *options]
    if server == "granian":
        options = ["--interface", "asgi", "--host", "127.0.0.1", "--port", str(port)]
        return [sys.executable, "-m", "granian", *options, "--no-access-log", target]
    return [sys.executable, "-m", "hypercorn", target, "--bind", f"127.0.0.1:{port}"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """20 MiB of random bytes to serve, and a secret beside the served directory."""
    root = tmp_path_factory.mktemp("files")
    (root / "public").mkdir()
    data = os.urandom(SIZE)
    (root / "public" / "big.bin").write_bytes(data)
    (root / "public" / "index.html").write_bytes(b"<h1>home</h1>")
    (root / "secret.txt").write_bytes(b"secret")
    return root, data


@pytest.fixture(scope="module", params=["uvicorn", "hypercorn", "granian"])
def served(request: pytest.FixtureRequest, tree: tuple[Path, bytes]) -> Iterator[Served]:
    """Run this module's app under the server on a free port; stop it by PID afterwards."""
    server = str(request.param)
    pytest.importorskip(server)
    root, data = tree
    log_path = root / f"{server}.log"
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(server, port),
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "MICROASGI_FILES_DIR": str(root)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{server} did not come up:\n{log_path.read_text(errors='replace')}")
            try:
                httpx.get(url + "/ready", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield Served(server, url, port, data, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def client(served: Served) -> httpx.Client:
    return httpx.Client(base_url=served.url, timeout=30)


# --- downloads ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/file", "/static/big.bin"])
def test_full_download_matches_the_file(served: Served, path: str) -> None:
    digest = hashlib.sha256()
    with client(served) as http, http.stream("GET", path) as r:
        for chunk in r.iter_bytes():
            digest.update(chunk)
    assert r.status_code == 200
    assert r.headers["content-length"] == str(SIZE)
    assert r.headers["content-type"] == "application/octet-stream"
    assert digest.hexdigest() == hashlib.sha256(served.data).hexdigest()


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
    served: Served, value: str, start: int, stop: int
) -> None:
    with client(served) as http:
        r = http.get("/file", headers={"range": value})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes {start}-{stop - 1}/{SIZE}"
    assert r.content == served.data[start:stop]


def test_multiple_ranges_match_byte_for_byte(served: Served) -> None:
    with client(served) as http:
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
        served.data[start:stop] for start, stop in expected
    ]


def test_head_304_and_416(served: Served) -> None:
    with client(served) as http:
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


def test_a_client_leaving_mid_download_leaves_the_server_healthy(served: Served) -> None:
    with client(served) as http:
        with http.stream("GET", "/file") as r:
            received = 0
            for chunk in r.iter_raw():
                received += len(chunk)
                if received >= 1 << 20:
                    break
        # The connection is closed mid-body; the server keeps serving.
        assert http.get("/ready").text == "ready"
        assert http.get("/file", headers={"range": "bytes=0-9"}).content == served.data[:10]
    time.sleep(0.5)  # give the server a moment to log an error, if it were to
    assert "Traceback" not in served.log.read_text(errors="replace")


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
def test_traversal_over_the_wire_is_refused(served: Served, target: str) -> None:
    # httpx would normalise the path: send the request line exactly as an attacker does.
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    status_line = response.split(b"\r\n", 1)[0]
    assert status_line.split()[1] == b"404"  # it reached StaticFiles, which refused it
    assert b"secret" not in response


def test_pathsend_is_offered_by_granian_only(served: Served) -> None:
    # So the downloads above went through http.response.pathsend under granian, and
    # through chunked reads under the others.
    with client(served) as http:
        offered = http.get("/pathsend").json()["pathsend"]
    assert offered is (served.server == "granian")


def test_html_index_over_the_wire(served: Served) -> None:
    with client(served) as http:
        assert http.get("/static/").content == b"<h1>home</h1>"
