"""HTTP/2 server push: ``/`` pushes its stylesheet along with the page.

Run it under a server that pushes, hypercorn over HTTP/2 with TLS::

    hypercorn examples.push:app --certfile cert.pem --keyfile key.pem

Where the server cannot push (HTTP/1.1, or uvicorn), ``request.push`` returns False and
the page asks for a 103 Early Hint instead where the server sends those; the ``Link``
preload header on the page itself works everywhere.
"""

from __future__ import annotations

from microasgi import App, HTMLResponse, Request, Response

app = App()

CSS = """body { font: 18px/1.5 system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; }
h1 { color: #0b6e4f; }
"""

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>microasgi push</title>
<link rel="stylesheet" href="{css}">
<h1>Pushed</h1>
<p>The stylesheet of this page was {how}.</p>
"""


@app.get("/")
async def index(request: Request) -> HTMLResponse:
    """The page, with its CSS pushed (or hinted) before the page itself is sent."""
    # Under a mount or a proxy prefix the CSS lives below root_path.
    css = request.scope.get("root_path", "") + request.app.url_path_for("style")
    preload = f"<{css}>; rel=preload; as=style"
    # The promised request carries the headers the browser would have sent for the CSS.
    headers = [("accept", "text/css,*/*;q=0.1")]
    if "accept-encoding" in request.headers:
        headers.append(("accept-encoding", request.headers["accept-encoding"]))
    if await request.push(css, headers=headers):
        how = "pushed with the page (HTTP/2 server push)"
    elif await request.send_early_hints([preload]):
        how = "announced early (103 Early Hints)"
    else:
        how = "fetched after the page (Link: preload)"
    return HTMLResponse(PAGE.format(css=css, how=how), headers={"link": preload})


@app.get("/style.css", name="style")
async def style(request: Request) -> Response:
    """The stylesheet the page pushes."""
    return Response(CSS, media_type="text/css", headers={"cache-control": "max-age=3600"})
