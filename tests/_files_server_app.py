"""What ``test_files_server`` runs under each server: FileResponse and StaticFiles.

The served directory comes in ``MICROASGI_FILES_DIR``: ``public/`` is mounted at
``/static`` (with its ``index.html``), and ``public/big.bin`` is ``/file``.
"""

from __future__ import annotations

import os

from microasgi import App, FileResponse, Request
from microasgi.staticfiles import StaticFiles

DIRECTORY = os.environ.get("MICROASGI_FILES_DIR", "")

app = App()
if DIRECTORY:
    app.mount("/static", StaticFiles(directory=os.path.join(DIRECTORY, "public"), html=True))


@app.get("/file")
async def big_file(request: Request) -> FileResponse:
    """The big file as a download."""
    return FileResponse(os.path.join(DIRECTORY, "public", "big.bin"), filename="big.bin")


@app.get("/ready")
async def ready(request: Request) -> str:
    """A cheap page to check the server is still healthy."""
    return "ready"


@app.get("/pathsend")
async def pathsend(request: Request) -> dict[str, bool]:
    """Whether the server offered ``http.response.pathsend``."""
    return {"pathsend": request.supports("http.response.pathsend")}
