"""What ``test_forms_server`` runs under uvicorn: an upload probe.

It answers the uploaded file's size and SHA-256, and its own memory peak: tracemalloc
traces every Python allocation of the server process (its protocol buffers included)
while the handler parses and hashes the form.
"""

from __future__ import annotations

import hashlib
import tracemalloc

from microasgi import App, Request, UploadFile

app = App(max_file_size=64 * 1024 * 1024, max_body_size=65 * 1024 * 1024)


@app.post("/upload")
async def upload(request: Request) -> dict[str, object]:
    """Parse the form, hash its file, and report the memory peak meanwhile."""
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
