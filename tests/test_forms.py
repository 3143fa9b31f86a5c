"""Forms end to end: ``await request.form()`` in handlers, App limits, uploads, cleanup."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asgi_harness as harness
import pytest
from asgi_harness import Recorder, http_scope

from microasgi import App, FormData, Request, UploadFile
from microasgi._types import Message, Scope
from microasgi.datastructures import MiB
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def describe(value: str | UploadFile) -> Any:
    """What a test needs to see of one form value."""
    if isinstance(value, str):
        return value
    return {"filename": value.filename, "type": value.content_type, "size": value.size}


def form_app(**limits: Any) -> App:
    """An App with limits whose POST /form answers what it parsed."""
    app = App(**limits)

    @app.post("/form")
    async def form(request: Request) -> list[Any]:
        parsed = await request.form()
        out = []
        for key, value in parsed.items():
            item = describe(value)
            if isinstance(value, UploadFile):
                item["content"] = (await value.read()).decode()
            out.append([key, item])
        return out

    return app


async def test_urlencoded_form_in_a_handler() -> None:
    async with TestClient(form_app()) as client:
        r = await client.post("/form", data={"name": "Ada Lovelace", "tag": ["a", "b"], "e": ""})
    assert r.status_code == 200
    assert r.json() == [["name", "Ada Lovelace"], ["tag", "a"], ["tag", "b"], ["e", ""]]


async def test_multipart_form_with_files_in_a_handler() -> None:
    async with TestClient(form_app()) as client:
        r = await client.post(
            "/form",
            data={"title": "Report"},
            files={
                "doc": ("notes.txt", b"first line\r\nsecond", "text/plain"),
                "raw": ("data.bin", b"\x00\x01", "application/octet-stream"),
            },
        )
    assert r.status_code == 200
    assert r.json() == [
        ["title", "Report"],
        [
            "doc",
            {
                "filename": "notes.txt",
                "type": "text/plain",
                "size": 18,
                "content": "first line\r\nsecond",
            },
        ],
        [
            "raw",
            {
                "filename": "data.bin",
                "type": "application/octet-stream",
                "size": 2,
                "content": "\x00\x01",
            },
        ],
    ]


async def test_form_is_parsed_once_per_request() -> None:
    app = App()

    @app.post("/twice")
    async def twice(request: Request) -> dict[str, bool]:
        first = await request.form()
        again = await Request(request.scope, request.receive).form()
        return {"same": isinstance(first, FormData) and first is again and first["a"] == "1"}

    async with TestClient(app) as client:
        r = await client.post("/twice", data={"a": "1"})
    assert r.json() == {"same": True}


@pytest.mark.parametrize(("size", "body_after"), [(64 * 1024, True), (64 * 1024 + 1, False)])
async def test_a_small_form_body_is_kept_and_a_large_one_streamed(
    size: int, body_after: bool
) -> None:
    # Up to 64 KiB the body is read whole, so body() still answers after form(); past
    # that the form is parsed as the body streams in, and the bytes are not kept.
    app = App()
    body = b"a=" + b"x" * (size - 2)

    @app.post("/")
    async def both(request: Request) -> dict[str, Any]:
        form = await request.form()
        try:
            kept = await request.body() == body
        except RuntimeError:
            kept = False
        return {"length": len(str(form["a"])), "kept": kept}

    async with TestClient(app) as client:
        r = await client.post(
            "/", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
        )
    assert r.json() == {"length": size - 2, "kept": body_after}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # The first Content-Type counts, as request.headers["content-type"] reports it.
        (
            [
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-type", b"text/plain"),
            ],
            {"a": "1 2"},
        ),
        (
            [
                (b"content-type", b"text/plain"),
                (b"content-type", b"application/x-www-form-urlencoded"),
            ],
            {},
        ),
        # A Content-Length that is no number (or none): the body is streamed, then parsed.
        (
            [(b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", b"+7")],
            {"a": "1 2"},
        ),
        ([(b"content-type", b"application/x-www-form-urlencoded")], {"a": "1 2"}),
        # One past any limit is refused before the body is read.
        (
            [
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-length", b"9" * 30),
            ],
            413,
        ),
    ],
)
async def test_the_headers_that_decide_how_a_form_is_read(
    headers: list[tuple[bytes, bytes]], expected: dict[str, str] | int
) -> None:
    app = App()

    @app.post("/")
    async def read(request: Request) -> dict[str, Any]:
        return dict(await request.form())

    scope = http_scope(method="POST", path="/", headers=headers)
    sent = await harness.run(app, scope, harness.request_body(b"a=1", b"+2"))
    if isinstance(expected, int):
        assert harness.start_of(sent)["status"] == expected
    else:
        assert harness.start_of(sent)["status"] == 200
        assert json.loads(harness.body_of(sent)) == expected


async def test_a_form_after_the_body_is_parsed_from_the_body_read() -> None:
    # Past 64 KiB a form is streamed; a body a handler read first is parsed as it is.
    app = App()
    body = b"a=" + b"x" * (100 * 1024)

    @app.post("/")
    async def both(request: Request) -> dict[str, Any]:
        read = await request.body()
        form = await request.form()
        return {"length": len(str(form["a"])), "same": read == body}

    async with TestClient(app) as client:
        r = await client.post(
            "/", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
        )
    assert r.json() == {"length": 100 * 1024, "same": True}


async def test_a_non_form_body_gives_an_empty_form() -> None:
    async with TestClient(form_app()) as client:
        r = await client.post("/form", json={"a": 1})
    assert (r.status_code, r.json()) == (200, [])


@pytest.mark.parametrize(
    ("limits", "data", "files", "status"),
    [
        ({"max_form_fields": 3}, {"a": "1", "b": "2", "c": "3"}, None, 200),
        ({"max_form_fields": 3}, {"a": "1", "b": "2", "c": "3", "d": "4"}, None, 400),
        (
            {"max_form_fields": 1},
            {"a": "1"},
            {"f": ("f", b"x", "text/plain"), "g": ("g", b"y", "text/plain")},
            200,
        ),
        ({"max_form_files": 1}, {}, {"f": ("f", b"x", "text/plain")}, 200),
        (
            {"max_form_files": 1},
            {},
            {"f": ("f", b"x", "text/plain"), "g": ("g", b"y", "text/plain")},
            400,
        ),
        ({"max_part_size": 5}, {"a": "12345"}, None, 200),
        ({"max_part_size": 5}, {"a": "123456"}, None, 413),
        ({"max_part_size": 5}, {"a": "123456"}, {"f": ("f", b"x", "text/plain")}, 413),
        ({"max_file_size": 5}, {}, {"f": ("f", b"12345", "text/plain")}, 200),
        ({"max_file_size": 5}, {}, {"f": ("f", b"123456", "text/plain")}, 413),
        ({"max_part_header_size": 40}, {}, {"f": ("f", b"x", "text/plain")}, 413),
        ({"max_body_size": 20}, {"a": "x" * 30}, None, 413),
    ],
)
async def test_app_limits_through_the_request_path(
    limits: dict[str, int],
    data: dict[str, str],
    files: dict[str, tuple[str, bytes, str]] | None,
    status: int,
) -> None:
    async with TestClient(form_app(**limits)) as client:
        r = await client.post("/form", data=data, files=files)
    assert r.status_code == status, r.text


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1',
        ),
        (
            "multipart/form-data",
            b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n',
        ),
        (
            "multipart/form-data; boundary=b",
            b"--b\r\nContent-Type: text/plain\r\n\r\n1\r\n--b--\r\n",
        ),
    ],
)
async def test_malformed_multipart_is_a_400(content_type: str, body: bytes) -> None:
    async with TestClient(form_app()) as client:
        r = await client.post("/form", content=body, headers={"content-type": content_type})
    assert r.status_code == 400


async def test_mounted_app_applies_its_own_limits() -> None:
    strict = form_app(max_form_fields=1)
    loose = form_app(max_form_fields=5)
    parent = form_app(max_form_fields=2)
    parent.mount("/strict", strict)
    parent.mount("/loose", loose)
    two = {"a": "1", "b": "2"}
    four = {"a": "1", "b": "2", "c": "3", "d": "4"}
    async with TestClient(parent) as client:
        assert (await client.post("/form", data=two)).status_code == 200
        assert (await client.post("/strict/form", data=two)).status_code == 400
        assert (await client.post("/form", data=four)).status_code == 400
        assert (await client.post("/loose/form", data=four)).status_code == 200


@pytest.mark.parametrize("fail", [False, True])
async def test_uploads_are_closed_when_the_request_ends(fail: bool) -> None:
    app = App(spool_threshold=4)
    kept: list[UploadFile] = []

    @app.post("/keep")
    async def keep(request: Request) -> str:
        form = await request.form()
        for value in form.values():
            assert isinstance(value, UploadFile)
            kept.append(value)
        if fail:
            raise RuntimeError("the handler broke after reading the form")
        return "kept"

    files = {"mem": ("a", b"abc", "text/plain"), "disk": ("b", b"spooled to disk", "text/plain")}
    async with TestClient(app, raise_server_exceptions=False) as client:
        r = await client.post("/keep", files=files)
    assert r.status_code == (500 if fail else 200)
    assert [upload._in_memory for upload in kept] == [True, False]
    assert all(upload.file.closed for upload in kept)


# --- through the raw ASGI interface, body in chunks ----------------------------------

BOUNDARY = "rawAsgiBoundary"


def upload_scope(content_type: str) -> Scope:
    """A scope as a server would build it for POST /upload."""
    return http_scope("/upload", "POST", headers=[("content-type", content_type)], state={})


def upload_chunks(total: int, digest: Any) -> Iterator[bytes]:
    """A multipart body with one file of ``total`` varied bytes, in fresh 64 KiB chunks."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    for i in range(total // 65536):
        block = i.to_bytes(4, "big") * 16384
        digest.update(block)
        yield block
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


async def call_upload(app: App, chunks: Iterator[bytes]) -> tuple[int, bytes, int, int]:
    """POST the chunks to ``app`` over ASGI: (status, body, chunks read, memory peak)."""
    read = 0
    send = Recorder()
    sent = send.messages
    following = next(chunks, None)

    async def receive() -> Message:
        nonlocal read, following
        chunk, following = following, next(chunks, None)
        if chunk is None:
            return {"type": "http.disconnect"}
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": following is not None}

    tracemalloc.start()
    try:
        await app(upload_scope(f"multipart/form-data; boundary={BOUNDARY}"), receive, send)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, body, read, peak


def hashing_app(**limits: Any) -> App:
    """An App whose POST /upload answers the upload's size, SHA-256 and spooling."""
    app = App(**limits)

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, Any]:
        form = await request.form()
        file = form["file"]
        assert isinstance(file, UploadFile)
        digest = hashlib.sha256()
        while chunk := await file.read(MiB):
            digest.update(chunk)
        return {"size": file.size, "sha256": digest.hexdigest(), "in_memory": file._in_memory}

    return app


async def test_oversized_streamed_upload_refused_early_with_bounded_memory() -> None:
    app = hashing_app(max_file_size=4 * MiB, max_body_size=512 * MiB)
    # 100 MiB offered; refused once the file passes 4 MiB.
    status, _, read, peak = await call_upload(app, upload_chunks(100 * MiB, hashlib.sha256()))
    assert status == 413
    assert read * 65536 <= 4 * MiB + 2 * 65536
    assert peak < 8 * MiB


async def test_large_streamed_upload_spools_with_bounded_memory() -> None:
    import json

    app = hashing_app(max_file_size=64 * MiB, max_body_size=65 * MiB)
    digest = hashlib.sha256()
    status, body, _, peak = await call_upload(app, upload_chunks(40 * MiB, digest))
    assert status == 200
    assert json.loads(body) == {"size": 40 * MiB, "sha256": digest.hexdigest(), "in_memory": False}
    assert peak < 8 * MiB


# --- examples/upload.py --------------------------------------------------------------


@pytest.fixture(scope="module")
def upload_example() -> App:
    """The app of examples/upload.py."""
    spec = importlib.util.spec_from_file_location("examples_upload", EXAMPLES / "upload.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.app
    assert isinstance(app, App)
    return app


async def test_upload_example_page_and_answer(upload_example: App) -> None:
    content = b"hello upload\n" * 1000
    async with TestClient(upload_example) as client:
        page = await client.get("/")
        answer = await client.post(
            "/upload", files={"file": ("<b>notes</b>.txt", content, "text/plain")}
        )
        missing = await client.post("/upload", data={"other": "x"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert re.search(r'<form[^>]+enctype="multipart/form-data"', page.text)
    assert '<input type="file" name="file"' in page.text
    assert answer.status_code == 200
    assert "&lt;b&gt;notes&lt;/b&gt;.txt" in answer.text  # the name is escaped, never markup
    assert f"{len(content)} bytes" in answer.text
    assert hashlib.sha256(content).hexdigest() in answer.text
    assert missing.status_code == 400
