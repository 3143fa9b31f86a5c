"""A 50 MiB upload through a real uvicorn: streamed to disk, bounded memory in the server."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from interop import servers as s

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

UPLOAD_SIZE = 50 * 1024 * 1024


server = s.server_fixture("_upload_probe_app:app", [s.UVICORN])


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
    server: s.Server, upload_file: tuple[Path, str]
) -> None:
    path, sha256 = upload_file
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
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
