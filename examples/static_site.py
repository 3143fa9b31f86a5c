"""A small static site: pages and assets from ``examples/static/``, next to an API route.

Run it with ``python -m microasgi examples.static_site:app`` and open http://127.0.0.1:8000.

``StaticFiles(html=True)`` serves ``index.html`` for a directory (``/guide`` redirects to
``/guide/`` first, so the page's relative links work) and ``404.html`` for what does not
exist. Browsers revalidate with ``If-None-Match`` and get a bodiless 304 when nothing changed;
video players and download managers ask for byte ranges and get them.
"""

from __future__ import annotations

from pathlib import Path

from microasgi import App, FileResponse, Request
from microasgi.staticfiles import StaticFiles

SITE = Path(__file__).resolve().parent / "static"

app = App()


@app.get("/api/health")
async def health(request: Request) -> dict[str, str]:
    """A route of the app's own, matched before the mounted site."""
    return {"status": "ok"}


@app.get("/download/guide")
async def download_guide(request: Request) -> FileResponse:
    """The guide as an attachment: the browser saves it instead of showing it."""
    return FileResponse(SITE / "guide" / "index.html", filename="microasgi guide.html")


# Mounted last, at the root: everything the routes above do not match is looked up on disk.
app.mount("/", StaticFiles(directory=SITE, html=True), name="site")
