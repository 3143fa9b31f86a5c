"""File uploads: ``python -m microasgi examples.upload:app``, then open http://127.0.0.1:8000.

The page posts a file; the answer shows its name, size and SHA-256. The upload is
parsed as it arrives and spools to disk past 1 MiB, so large files cost little memory.
"""

from __future__ import annotations

import hashlib
from html import escape

from microasgi import App, HTMLResponse, HTTPException, Request, UploadFile

app = App(max_file_size=256 * 1024 * 1024, max_body_size=257 * 1024 * 1024)

PAGE = """<!doctype html>
<title>Upload a file</title>
<h1>Upload a file</h1>
<form action="{prefix}/upload" method="post" enctype="multipart/form-data">
  <input type="file" name="file" required>
  <button type="submit">Upload</button>
</form>
"""


@app.get("/")
async def index(request: Request) -> HTMLResponse:
    """The upload form (its action under the prefix the app is mounted at, if any)."""
    return HTMLResponse(PAGE.format(prefix=escape(request.scope.get("root_path", ""))))


@app.post("/upload")
async def upload(request: Request) -> HTMLResponse:
    """Hash the uploaded file as it is read back, a mebibyte at a time."""
    form = await request.form()
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise HTTPException(400, "Choose a file to upload.")
    digest = hashlib.sha256()
    while chunk := await file.read(1024 * 1024):
        digest.update(chunk)
    return HTMLResponse(
        "<!doctype html><title>Uploaded</title><h1>Uploaded</h1><dl>"
        f"<dt>Name</dt><dd>{escape(file.filename or '')}</dd>"
        f"<dt>Size</dt><dd>{file.size} bytes</dd>"
        f"<dt>SHA-256</dt><dd><code>{digest.hexdigest()}</code></dd>"
        f'</dl><p><a href="{escape(request.scope.get("root_path", ""))}/">Upload another</a></p>'
    )
