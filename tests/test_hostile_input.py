"""Hostile client input: whatever a client chooses to send, the answer is never a 500.

First the cases an attack run found, each as a user meets it (an App, a request, the
status the client sees); then property-based tests that throw generated values at every
place that decodes client-chosen text, asserting a 2xx, 3xx or 4xx and that nothing
escapes to the server.
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from asgi_harness import http_scope, request_body, run, start_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microasgi import App, FileResponse, Request
from microasgi._files import parse_http_date
from microasgi.datastructures import UploadFile
from microasgi.formparsers import decode_text, text_codec
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


# --- property-based: generated input at every decoding place ------------------------------
#
# One app reads everything a client chooses; each test sends it generated values through
# the test harness (a server's part, no socket) and asserts the answer is below 500 and
# that nothing the app raised reached the server. Examples are bounded so the whole
# section runs in seconds on both event loops.

# HOSTILE_EXAMPLES=2000 explores further (the gate keeps to 100 a test); nothing is
# written to a Hypothesis database in the repository.
BOUNDED = settings(
    max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "100")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory: pytest.TempPathFactory) -> App:
    """An app with a route for each thing a handler decodes from a request."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "page.txt").write_bytes(CONTENT)
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_bytes(b"<p>index</p>")
    app = App()

    @app.post("/text")
    async def text(request: Request) -> dict[str, int]:
        return {"length": len(await request.text())}

    @app.post("/json")
    async def parsed(request: Request) -> dict[str, Any]:
        return {"value": await request.json()}  # and written back: dumps of what loads gave

    @app.post("/form")
    async def form(request: Request) -> dict[str, list[str]]:
        fields = await request.form()
        summary: dict[str, list[str]] = {}
        for name, value in fields.items():
            shown = f"file:{value.filename}" if isinstance(value, UploadFile) else value
            summary.setdefault(name, []).append(shown)
        await fields.close()
        return summary

    @app.get("/query")
    async def query(request: Request) -> dict[str, Any]:
        return {"query": list(request.query.items()), "url": str(request.url)}

    @app.get("/cookies")
    async def cookies(request: Request) -> dict[str, str]:
        return request.cookies

    @app.get("/path/{rest:path}")
    async def path(request: Request, rest: str) -> dict[str, str]:
        return {"rest": rest, "url": str(request.url)}

    @app.get("/file")
    async def file(request: Request) -> FileResponse:
        return FileResponse(root / "page.txt", filename="página.txt")

    app.mount("/static", StaticFiles(directory=root, html=True))
    return app


async def answer(
    app: App,
    path: str,
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    **scope: Any,
) -> int:
    """The status of ``app``'s answer; fails on a 5xx or on anything raised to the server."""
    sent = await run(
        app, http_scope(path, method, headers=headers or [], **scope), request_body(body)
    )
    status = int(start_of(sent)["status"])
    assert status < 500, sent
    return status


# What a header value can hold on the wire (servers refuse other control characters).
header_values = st.binary(max_size=80).map(
    lambda raw: bytes(b for b in raw if b == 9 or (b >= 32 and b != 127))
)
odd_text = st.text(st.characters(max_codepoint=0x2FF), max_size=40)
CHARSETS = [
    "utf-8", "latin-1", "utf-16", "utf-32", "utf-7", "cp1252", "shift_jis", "iso-2022-jp",
    "idna", "punycode", "undefined", "unicode_escape", "raw_unicode_escape", "rot13", "base64",
    "zlib", "bz2", "hex", "uu", "quopri", "mbcs", "oem", "aliases", "x-user-defined", "",
]  # fmt: skip
charsets = st.one_of(st.sampled_from(CHARSETS), odd_text)


def latin1(text: str) -> bytes:
    """``text`` as header bytes: what latin-1 cannot hold becomes '?'."""
    return text.encode("latin-1", "replace")


def test_decode_text_never_raises_pure() -> None:
    @BOUNDED
    @given(st.binary(max_size=64), charsets)
    def check(data: bytes, charset: str) -> None:
        text = decode_text(data, charset)
        assert isinstance(text, str)
        codec = text_codec(charset)
        assert codec is None or codec not in {"idna", "punycode", "undefined"}

    check()


@BOUNDED
@given(body=st.binary(max_size=64), charset=charsets)
async def test_text_in_any_charset(hostile_app: App, body: bytes, charset: str) -> None:
    content_type = b"text/plain; charset=" + latin1(charset)
    status = await answer(hostile_app, "/text", "POST", [(b"content-type", content_type)], body)
    assert status == 200


# --- multipart: the boundary, part headers, RFC 5987 parameters, _charset_ ---------------

param_values = st.one_of(
    odd_text.map(lambda text: '"' + text + '"'),
    st.builds(
        lambda charset, lang, value: f"{charset}'{lang}'{value}",
        charsets,
        st.sampled_from(["", "en", "x'y"]),
        st.text(st.sampled_from("%AZaz09ff.-\x00é"), max_size=12),
    ),
    odd_text,
)


@st.composite
def parts(draw: st.DrawFn) -> bytes:
    """One multipart part with generated Content-Disposition parameters and body."""
    disposition = "form-data"
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(["name", "name*", "filename", "filename*", "x", "NAME"]))
        disposition += f"; {key}={draw(param_values)}"
    extra = draw(st.sampled_from(["", "Content-Type: text/plain; charset=idna\r\n"]))
    head = latin1(f"Content-Disposition: {disposition}\r\n{extra}")
    return head + b"\r\n" + draw(st.binary(max_size=20))


@BOUNDED
@given(
    body_parts=st.lists(parts(), max_size=4),
    charset_field=st.none() | st.binary(max_size=20),
    boundary=st.sampled_from([b"b", b'"quoted b"', b"", b"b" * 71]) | header_values,
)
async def test_multipart_with_hostile_part_headers(
    hostile_app: App, body_parts: list[bytes], charset_field: bytes | None, boundary: bytes
) -> None:
    if charset_field is not None:
        body_parts.append(
            b'Content-Disposition: form-data; name="_charset_"\r\n\r\n' + charset_field
        )
    delimiter = b"--" + boundary.strip(b'"')
    body = b"".join(delimiter + b"\r\n" + part + b"\r\n" for part in body_parts)
    body += delimiter + b"--\r\n"
    content_type = b"multipart/form-data; boundary=" + boundary
    await answer(hostile_app, "/form", "POST", [(b"content-type", content_type)], body)


@BOUNDED
@given(content_type=header_values, body=st.binary(max_size=80))
async def test_form_with_any_content_type_and_body(
    hostile_app: App, content_type: bytes, body: bytes
) -> None:
    for kind in (content_type, b"multipart/form-data; " + content_type):
        await answer(hostile_app, "/form", "POST", [(b"content-type", kind)], body)


# --- percent-encoding: urlencoded bodies, query strings, paths ---------------------------

percent_encoded = st.text(
    st.sampled_from("%%%25fFaA09=&+;/\\.?#\x00 é\U0001f600"), max_size=40
).map(lambda text: text.encode("utf-8"))


@BOUNDED
@given(body=percent_encoded | st.binary(max_size=60))
async def test_urlencoded_bodies(hostile_app: App, body: bytes) -> None:
    content_type = (b"content-type", b"application/x-www-form-urlencoded")
    assert await answer(hostile_app, "/form", "POST", [content_type], body) == 200


@BOUNDED
@given(query=percent_encoded | st.binary(max_size=60))
async def test_query_strings(hostile_app: App, query: bytes) -> None:
    assert await answer(hostile_app, "/query", query_string=query) == 200


@BOUNDED
@given(raw=percent_encoded, under=st.sampled_from(["/path/", "/static/", "/"]))
async def test_paths(hostile_app: App, raw: bytes, under: str) -> None:
    raw_path = under.encode() + raw.replace(b"?", b"%3F").replace(b"#", b"%23")
    # What a server hands over: the raw path, and the path percent-decoded as UTF-8.
    path = unquote(raw_path.decode("utf-8", "replace"))
    await answer(hostile_app, path, raw_path=raw_path)


# --- JSON numbers and bodies -------------------------------------------------------------

json_numbers = st.from_regex(r"\A-?(0|[1-9][0-9]{0,45})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,4})?\Z")
json_bodies = st.one_of(
    json_numbers.map(str.encode),
    st.lists(json_numbers, max_size=5).map(lambda items: ("[" + ",".join(items) + "]").encode()),
    st.text(
        st.sampled_from('{}[]":,0123456789.eE+-\\u dD8cC nulltrueNaInfity\x00é'), max_size=40
    ).map(str.encode),
    st.binary(max_size=40),
)


@BOUNDED
@given(body=json_bodies)
async def test_json_bodies(hostile_app: App, body: bytes) -> None:
    assert await answer(hostile_app, "/json", "POST", body=body) in (200, 400)


# --- HTTP dates and ranges on FileResponse and StaticFiles -----------------------------

WEEKDAYS = ["Sun", "Mon", "Sunday", "Xyz", ""]
MONTHS = ["Jan", "Feb", "Nov", "Dec", "Foo", "nov"]
http_dates = st.one_of(
    st.builds(
        "{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} GMT".format,
        st.sampled_from(WEEKDAYS), st.integers(0, 99), st.sampled_from(MONTHS),
        st.integers(0, 9999), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99),
    ),
    st.builds(
        "{}, {:02d}-{}-{:02d} {:02d}:{:02d}:{:02d} GMT".format,
        st.sampled_from(WEEKDAYS), st.integers(0, 99), st.sampled_from(MONTHS),
        st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99),
    ),
    st.builds(
        "{} {} {:2d} {:02d}:{:02d}:{:02d} {:04d}".format,
        st.sampled_from(WEEKDAYS), st.sampled_from(MONTHS), st.integers(0, 99),
        st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.integers(0, 9999),
    ),
    odd_text,
)  # fmt: skip
range_values = st.one_of(
    st.lists(
        st.tuples(st.none() | st.integers(-5, 2**70), st.none() | st.integers(-5, 2**70)),
        max_size=5,
    ).map(
        lambda specs: (
            "bytes="
            + ",".join(f"{'' if a is None else a}-{'' if b is None else b}" for a, b in specs)
        )
    ),
    odd_text,
)
CONDITIONAL = ["if-modified-since", "if-unmodified-since", "if-range", "if-match", "if-none-match"]


def test_parse_http_date_never_raises_pure() -> None:
    @BOUNDED
    @given(http_dates)
    def check(value: str) -> None:
        assert parse_http_date(value) is None or isinstance(parse_http_date(value), int)

    check()


@BOUNDED
@given(
    conditions=st.dictionaries(st.sampled_from(CONDITIONAL), http_dates, max_size=3),
    byte_range=st.none() | range_values,
    target=st.sampled_from(["/file", "/static/page.txt", "/static/sub/"]),
    method=st.sampled_from(["GET", "HEAD"]),
)
async def test_conditional_and_range_headers_on_files(
    hostile_app: App,
    conditions: dict[str, str],
    byte_range: str | None,
    target: str,
    method: str,
) -> None:
    headers = [(name.encode(), latin1(value)) for name, value in conditions.items()]
    if byte_range is not None:
        headers.append((b"range", latin1(byte_range)))
    status = await answer(hostile_app, target, method, headers)
    assert status in (200, 206, 304, 412, 416)


# --- cookies -----------------------------------------------------------------------------


@BOUNDED
@given(cookie=header_values, more=st.lists(header_values, max_size=2))
async def test_cookies(hostile_app: App, cookie: bytes, more: list[bytes]) -> None:
    headers = [(b"cookie", value) for value in [cookie, *more]]
    assert await answer(hostile_app, "/cookies", headers=headers) == 200
