"""Tutorial step 3: an HTML form with a file upload.

Run it with ``python -m microasgi step3_forms:app`` and open http://127.0.0.1:8000/upload.
"""

from __future__ import annotations

import itertools
from html import escape

from microasgi import (
    App,
    HTMLResponse,
    HTTPException,
    RedirectResponse,
    Request,
    Response,
    UploadFile,
)

MiB = 1024 * 1024

# A file over 2 MiB, or more than one file, is refused (413, 400) while the form streams in.
app = App(max_file_size=2 * MiB, max_form_files=1)
app.state.uploads = {}  # id -> (title, filename, content type, bytes)
app.state.ids = itertools.count(1)

PAGE = """<!doctype html>
<title>Upload</title>
<h1>Upload a file</h1>
<form method="post" action="/upload" enctype="multipart/form-data">
  <label>Title <input name="title" required></label>
  <input type="file" name="file" required>
  <button>Upload</button>
</form>
<ul>{items}</ul>
"""


@app.get("/upload")
async def upload_form(request: Request) -> HTMLResponse:
    """The form, and the files uploaded so far (what users typed is escaped)."""
    items = []
    for upload_id, (title, filename, _, _) in app.state.uploads.items():
        url = request.url_for("download", upload_id=upload_id)
        items.append(f'<li><a href="{url}">{escape(title)}</a> ({escape(filename)})</li>')
    return HTMLResponse(PAGE.format(items="".join(items)))


@app.post("/upload")
async def upload(request: Request) -> RedirectResponse:
    """Keep the upload, then send the browser back to the form (Post/Redirect/Get)."""
    form = await request.form()
    title = form.get("title")
    file = form.get("file")
    if not isinstance(title, str) or not title.strip():
        raise HTTPException(422, "a title is required")
    if not isinstance(file, UploadFile) or not file.filename:
        raise HTTPException(422, "choose a file to upload")
    data = await file.read()  # the form's files are closed for you when the request ends
    content_type = file.content_type or "application/octet-stream"
    uploads = app.state.uploads
    uploads[next(app.state.ids)] = (title.strip(), file.filename, content_type, data)
    while len(uploads) > 20:  # keep the last 20: memory stays bounded
        del uploads[next(iter(uploads))]
    return RedirectResponse(request.url_for("upload_form"), status_code=303)


@app.get("/files/{upload_id:int}", name="download")
async def download(request: Request, upload_id: int) -> Response:
    """Send an upload back as an attachment: never serve users' files as your own pages."""
    if upload_id not in app.state.uploads:
        raise HTTPException(404, "no such upload")
    _, _, content_type, data = app.state.uploads[upload_id]
    headers = {"content-disposition": "attachment", "x-content-type-options": "nosniff"}
    return Response(data, headers=headers, media_type=content_type)
