"""A 50 MiB upload through a real uvicorn: streamed to disk, bounded memory in the server."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 20.0
UPLOAD_SIZE = 50 * 1024 * 1024

# The server measures itself: tracemalloc traces every Python allocation of the server
# process (its protocol buffers included) while the handler parses and hashes the form.
PROBE_APP = textwrap.dedent(
    '''
    """An upload probe: answers the file's size and SHA-256, and its own memory peak."""

    import hashlib
    import tracemalloc

    from microasgi import App, Request, UploadFile

    app = App(max_file_size=64 * 1024 * 1024, max_body_size=65 * 1024 * 1024)


    @app.post("/upload")
    async def upload(request: Request) -> dict[str, object]:
        tracemalloc.start()
        try:
            form = await request.form()
            file = form["file"]
            assert isinstance(file, UploadFile)
            digest = hashlib.sha256()
            while chunk := await file.read(1024 * 1024):
                digest.update(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return {
            "size": file.size,
            "sha256": digest.hexdigest(),
            "in_memory": file._in_memory,
            "peak": peak,
        }
    '''
)


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run the probe app under uvicorn on 127.0.0.1; yield its base URL; stop it by PID."""
    pytest.importorskip("uvicorn")
    directory = tmp_path_factory.mktemp("upload_probe")
    (directory / "upload_probe.py").write_text(PROBE_APP)
    port = free_port()
    log = (directory / "server.log").open("wb")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(directory)])}
    command = [sys.executable, "-m", "uvicorn", "upload_probe:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--lifespan", "on"]
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=directory,
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"uvicorn exited early:\n{(directory / 'server.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("uvicorn did not start listening in time")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        log.close()


@pytest.fixture(scope="module")
def upload_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 50 MiB file of varied bytes on disk, and its SHA-256."""
    path = tmp_path_factory.mktemp("upload") / "big.bin"
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for i in range(UPLOAD_SIZE // 65536):
            block = i.to_bytes(4, "big") * 16384
            digest.update(block)
            handle.write(block)
    return path, digest.hexdigest()


async def test_50_mib_upload_streams_to_disk_with_bounded_server_memory(
    server: str, upload_file: tuple[Path, str]
) -> None:
    path, sha256 = upload_file
    async with httpx.AsyncClient(base_url=server, timeout=60) as client:
        with path.open("rb") as handle:
            # httpx reads a file object in chunks: the client streams the body too.
            files = {"file": ("big.bin", handle, "application/octet-stream")}
            r = await client.post("/upload", files=files)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["size"] == UPLOAD_SIZE
    assert report["sha256"] == sha256
    assert report["in_memory"] is False
    assert report["peak"] < 8 * 1024 * 1024, report["peak"]
