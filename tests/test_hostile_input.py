"""Hostile client input: whatever a client chooses to send, the answer is never a 500.

First the cases an attack run found, each as a user meets it (an App, a request, the
status the client sees); then property-based tests that throw generated values at every
place that decodes client-chosen text, asserting a 2xx, 3xx or 4xx and that nothing
escapes to the server.
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import pytest
from asgi_harness import http_scope, request_body, run, start_of

from microasgi import App, Request
from microasgi.datastructures import UploadFile
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


# --- charsets ------------------------------------------------------------------------------


@pytest.fixture
def echo() -> App:
    """An app that answers with what it decoded of the request: its text, or its form."""
    app = App()

    @app.post("/text")
    async def text(request: Request) -> str:
        return await request.text()

    @app.post("/form")
    async def form(request: Request) -> dict[str, str]:
        fields = await request.form()
        return {
            name: f"file:{value.filename}" if isinstance(value, UploadFile) else value
            for name, value in fields.items()
        }

    return app


@pytest.mark.parametrize(
    "charset",
    [
        "idna",  # refuses errors="replace"
        "undefined",  # refuses everything
        "punycode",  # chokes on non-ASCII, and decodes in quadratic time
        "unicode_escape",  # Python's literal escapes, not a charset: warns on bad ones
        "rot13",  # not a text encoding at all
        "base64",
        "zlib",
        "utf\x00-8",  # "embedded null character"
        "x" * 10_000,
    ],
)
async def test_text_with_a_charset_that_cannot_decode_text_is_utf8(echo: App, charset: str) -> None:
    body = "caf\u00e9 \\xe9 -\u00ff".encode()
    async with TestClient(echo) as client:
        response = await client.post(
            "/text", content=body, headers={"content-type": f"text/plain; charset={charset}"}
        )
    assert response.status_code == 200
    assert response.text == body.decode()


async def test_charset_names_a_client_makes_up_are_not_remembered(echo: App) -> None:
    # Python's codec registry caches every name it is asked about, unknown ones too: a
    # client inventing a new charset name per request would grow memory without end.
    async def ask(charset: str) -> None:
        scope = http_scope(
            "/text", "POST", headers=[("content-type", f"text/plain; charset={charset}")]
        )
        assert start_of(await run(echo, scope, request_body(b"ok")))["status"] == 200

    await ask("warm-up")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(1000):
            await ask(f"made-up-{number:04d}-" + "x" * 1000)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 256 * 1024  # a thousand names of a kilobyte each: 1 MiB if remembered


@pytest.mark.parametrize(
    "disposition",
    [
        b'form-data; name="f"; filename="plain.txt"; filename*=idna\'\'%41',
        b'form-data; name="f"; filename="plain.txt"; filename*=undefined\'\'%41',
        b'form-data; name="f"; filename="plain.txt"; filename*=punycode\'\'%ff',
        b'form-data; name="f"; filename="plain.txt"; filename*=ut\x00f-8\'\'%41',
        b'form-data; name="f"; name*=idna\'\'%41; filename="plain.txt"',
    ],
)
async def test_a_multipart_parameter_charset_that_cannot_decode_is_ignored(
    echo: App, disposition: bytes
) -> None:
    body = (
        b"--b\r\nContent-Disposition: " + disposition + b"\r\n\r\ndata\r\n"
        b'--b\r\nContent-Disposition: form-data; name="_charset_"\r\n\r\nutf\x00-8\r\n'
        b'--b\r\nContent-Disposition: form-data; name="v"\r\n\r\ncaf\xc3\xa9\r\n--b--\r\n'
    )
    async with TestClient(echo) as client:
        response = await client.post(
            "/form", content=body, headers={"content-type": "multipart/form-data; boundary=b"}
        )
    assert response.status_code == 200
    assert response.json() == {"f": "file:plain.txt", "_charset_": "utf\x00-8", "v": "café"}
