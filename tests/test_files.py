"""FileResponse as a server sees it: the ASGI messages for each kind of request."""

from __future__ import annotations

import email.message
import email.parser
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from asgi_harness import Recorder, http_scope, run, scripted
from multidict import CIMultiDict

from microasgi import App, FileResponse, Request
from microasgi._types import Message, Scope
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio

DATA = bytes(range(256)) * 1024  # 256 KiB: several 64 KiB chunks


@dataclass
class Sent:
    """What a response sent, decoded the way a client reads it."""

    messages: list[Message] = field(default_factory=list)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> CIMultiDict[str]:
        return CIMultiDict(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in self.messages[0]["headers"]
        )

    @property
    def bodies(self) -> list[Message]:
        return [m for m in self.messages if m["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.bodies)

    @property
    def complete(self) -> bool:
        """The last message ends the response (a client may take the body as whole)."""
        last = self.messages[-1]
        return last["type"] == "http.response.pathsend" or not last.get("more_body", False)


def scope_for(
    method: str = "GET",
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
    spec_version: str = "2.4",
) -> Scope:
    return http_scope(
        "/file",
        method,
        headers=(headers or {}).items(),
        extensions=extensions or {},
        spec_version=spec_version,
    )


never_disconnects = scripted()  # a client that sends nothing and stays


async def call(response: FileResponse, method: str = "GET", **kwargs: Any) -> Sent:
    return Sent(await run(response, scope_for(method, **kwargs), [], within=10))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    file = tmp_path / "data.txt"
    file.write_bytes(DATA)
    return file


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[anyio.AsyncFile[bytes]]:
    """Every file FileResponse opens, to check it was closed (or never opened)."""
    files: list[anyio.AsyncFile[bytes]] = []
    real_open = anyio.open_file

    async def tracking_open(*args: Any, **kwargs: Any) -> anyio.AsyncFile[bytes]:
        file: anyio.AsyncFile[bytes] = await real_open(*args, **kwargs)
        files.append(file)
        return file

    monkeypatch.setattr(anyio, "open_file", tracking_open)
    return files


def all_closed(files: list[anyio.AsyncFile[bytes]]) -> bool:
    return all(file.wrapped.closed for file in files)


# --- a whole file --------------------------------------------------------------------


async def test_get_sends_the_file_in_chunks_with_its_metadata(
    path: Path, opened: list[anyio.AsyncFile[bytes]]
) -> None:
    sent = await call(FileResponse(path))
    assert sent.status == 200
    assert sent.body == DATA
    headers = sent.headers
    assert headers["content-length"] == str(len(DATA))
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["accept-ranges"] == "bytes"
    assert headers["etag"].startswith('"')
    stat_result = await anyio.Path(path).stat()
    assert headers["last-modified"] == time.strftime(
        "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(stat_result.st_mtime)
    )
    assert "content-disposition" not in headers
    assert all(len(m["body"]) <= 64 * 1024 for m in sent.bodies)
    assert len(sent.bodies) == 4
    assert [m["more_body"] for m in sent.bodies] == [True, True, True, False]
    assert len(opened) == 1
    assert all_closed(opened)


async def test_chunk_size_is_respected(path: Path) -> None:
    sent = await call(FileResponse(path, chunk_size=100_000))
    assert [len(m["body"]) for m in sent.bodies] == [100_000, 100_000, len(DATA) - 200_000]


async def test_empty_file(tmp_path: Path, opened: list[anyio.AsyncFile[bytes]]) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    sent = await call(FileResponse(empty), headers={"range": "bytes=0-"})
    assert sent.status == 200
    assert sent.headers["content-length"] == "0"
    assert sent.body == b""
    assert sent.complete
    assert opened == []


async def test_media_type_and_filename(path: Path) -> None:
    sent = await call(FileResponse(path, filename="report.pdf"))
    assert sent.headers["content-type"] == "application/pdf"
    assert sent.headers["content-disposition"] == 'attachment; filename="report.pdf"'
    sent = await call(FileResponse(path, filename="résumé.txt", content_disposition_type="inline"))
    assert sent.headers["content-disposition"] == "inline; filename*=utf-8''r%C3%A9sum%C3%A9.txt"
    sent = await call(FileResponse(path, media_type="text/csv"))
    assert sent.headers["content-type"] == "text/csv; charset=utf-8"


async def test_user_headers_win_and_later_changes_are_sent(path: Path) -> None:
    response = FileResponse(path, headers={"ETag": '"mine"', "Content-Type": "x/y"})
    response.headers["cache-control"] = "max-age=60"
    sent = await call(response)
    assert sent.headers.getall("etag") == ['"mine"']
    assert sent.headers.getall("content-type") == ["x/y"]
    assert sent.headers["cache-control"] == "max-age=60"
    # The user's tag is the one conditional requests compare with.
    assert (await call(response, headers={"if-none-match": '"mine"'})).status == 304


async def test_head_sends_the_headers_and_opens_nothing(
    path: Path, opened: list[anyio.AsyncFile[bytes]]
) -> None:
    get = await call(FileResponse(path))
    head = await call(FileResponse(path), method="HEAD")
    assert head.status == 200
    assert head.headers == get.headers
    assert head.body == b""
    assert head.complete
    assert len(opened) == 1  # the GET's


async def test_method_argument_overrides_the_scope(path: Path) -> None:
    sent = await call(FileResponse(path, method="HEAD"))
    assert sent.body == b""
    assert sent.headers["content-length"] == str(len(DATA))


async def test_background_runs_after_the_body(path: Path) -> None:
    ran: list[bool] = []
    sent = await call(FileResponse(path, background=lambda: ran.append(True)))
    assert sent.complete
    assert ran == [True]


# --- conditional requests -------------------------------------------------------------


async def test_if_none_match_gives_304_without_body(
    path: Path, opened: list[anyio.AsyncFile[bytes]]
) -> None:
    etag = (await call(FileResponse(path))).headers["etag"]
    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        sent = await call(FileResponse(path), headers={"if-none-match": value})
        assert sent.status == 304, value
        assert sent.body == b""
        assert sent.headers["etag"] == etag
        assert "content-length" not in sent.headers
        assert "content-type" not in sent.headers
    assert len(opened) == 1
    sent = await call(FileResponse(path), headers={"if-none-match": '"other"'})
    assert sent.status == 200
    assert sent.body == DATA


async def test_if_modified_since(path: Path) -> None:
    last_modified = (await call(FileResponse(path))).headers["last-modified"]
    assert (
        await call(FileResponse(path), headers={"if-modified-since": last_modified})
    ).status == 304
    assert (
        await call(FileResponse(path), method="HEAD", headers={"if-modified-since": last_modified})
    ).status == 304
    old = "Sat, 01 Jan 2000 00:00:00 GMT"
    assert (await call(FileResponse(path), headers={"if-modified-since": old})).status == 200
    # If-None-Match present: If-Modified-Since is not consulted.
    headers = {"if-none-match": '"other"', "if-modified-since": last_modified}
    assert (await call(FileResponse(path), headers=headers)).status == 200


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "",
        "Sun, 31 Feb 2100 00:00:00 GMT",
        "Sun, 06 Nov 1994 99:99:99 GMT",
        "9" * 5000,
        "Sun, 06 Nov 99999999999999999999 08:49:37 GMT",
        "\x00\xff",
    ],
)
async def test_invalid_if_modified_since_is_ignored(path: Path, value: str) -> None:
    send = Recorder()
    sent = Sent(send.messages)

    scope = scope_for()
    scope["headers"] = [(b"if-modified-since", value.encode("latin-1"))]
    await FileResponse(path)(scope, never_disconnects, send)
    assert sent.status == 200
    assert sent.body == DATA


async def test_if_match_failing_gives_412(path: Path) -> None:
    sent = await call(FileResponse(path), headers={"if-match": '"other"'})
    assert sent.status == 412
    assert sent.headers["content-length"] == "0"
    assert sent.body == b""


async def test_conditions_do_not_apply_to_other_statuses_or_methods(path: Path) -> None:
    etag = (await call(FileResponse(path))).headers["etag"]
    sent = await call(FileResponse(path, status_code=404), headers={"if-none-match": etag})
    assert sent.status == 404
    assert sent.body == DATA
    sent = await call(FileResponse(path), method="POST", headers={"range": "bytes=0-1"})
    assert sent.status == 200
    assert sent.body == DATA


# --- ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "start", "stop"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=100000-", 100000, len(DATA)),
        ("bytes=-500", len(DATA) - 500, len(DATA)),
        ("bytes=70000-200000", 70000, 200001),
        ("bytes=0-9,5-19", 0, 20),
    ],
)
async def test_single_range_gives_206(
    path: Path, opened: list[anyio.AsyncFile[bytes]], value: str, start: int, stop: int
) -> None:
    sent = await call(FileResponse(path), headers={"range": value})
    assert sent.status == 206
    assert sent.headers["content-range"] == f"bytes {start}-{stop - 1}/{len(DATA)}"
    assert sent.headers["content-length"] == str(stop - start)
    assert sent.headers["content-type"] == "text/plain; charset=utf-8"
    assert sent.body == DATA[start:stop]
    assert sent.complete
    assert all_closed(opened)


def parse_byteranges(content_type: str, body: bytes) -> list[email.message.Message]:
    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts: list[email.message.Message] = message.get_payload()  # type: ignore[assignment]
    return parts


async def test_multiple_ranges_give_multipart_byteranges(path: Path) -> None:
    sent = await call(FileResponse(path), headers={"range": "bytes=200000-200099, 0-9, -5"})
    assert sent.status == 206
    assert sent.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert sent.headers["content-length"] == str(len(sent.body))
    assert sent.complete
    parts = parse_byteranges(sent.headers["content-type"], sent.body)
    size = len(DATA)
    expected = [(0, 10), (200000, 200100), (size - 5, size)]
    assert [part["Content-Range"] for part in parts] == [
        f"bytes {start}-{stop - 1}/{size}" for start, stop in expected
    ]
    assert [part["Content-Type"] for part in parts] == ["text/plain; charset=utf-8"] * 3
    assert [part.get_payload(decode=True) for part in parts] == [
        DATA[start:stop] for start, stop in expected
    ]


async def test_head_ignores_range(path: Path, opened: list[anyio.AsyncFile[bytes]]) -> None:
    sent = await call(FileResponse(path), method="HEAD", headers={"range": "bytes=0-9"})
    assert sent.status == 200
    assert sent.headers["content-length"] == str(len(DATA))
    assert sent.body == b""
    assert opened == []


async def test_unsatisfiable_range_gives_416(
    path: Path, opened: list[anyio.AsyncFile[bytes]]
) -> None:
    sent = await call(FileResponse(path), headers={"range": f"bytes={len(DATA)}-"})
    assert sent.status == 416
    assert sent.headers["content-range"] == f"bytes */{len(DATA)}"
    assert sent.headers["content-length"] == "0"
    assert "content-type" not in sent.headers
    assert sent.body == b""
    assert opened == []


@pytest.mark.parametrize("value", ["bytes=9-0", "bytes=x", "items=0-9", "bytes=0-1;2-3", "bytes"])
async def test_invalid_range_gives_the_whole_file(path: Path, value: str) -> None:
    sent = await call(FileResponse(path), headers={"range": value})
    assert sent.status == 200
    assert sent.body == DATA


async def test_if_range(path: Path) -> None:
    first = await call(FileResponse(path))
    for validator in (first.headers["etag"], first.headers["last-modified"]):
        sent = await call(FileResponse(path), headers={"range": "bytes=0-9", "if-range": validator})
        assert sent.status == 206
        assert sent.body == DATA[:10]
    for stale in ('"stale"', "Sat, 01 Jan 2000 00:00:00 GMT", f"W/{first.headers['etag']}"):
        sent = await call(FileResponse(path), headers={"range": "bytes=0-9", "if-range": stale})
        assert sent.status == 200
        assert sent.body == DATA


async def test_five_thousand_ranges_are_answered_fast_with_the_file(path: Path) -> None:
    header = "bytes=" + ",".join(f"{i * 7}-{i * 7 + 2}" for i in range(5000))
    started = time.perf_counter()
    sent = await call(FileResponse(path), headers={"range": header})
    elapsed = time.perf_counter() - started
    print(f"5000 ranges answered in {elapsed * 1000:.1f} ms")
    # Over the cap, the Range is ignored: the answer is the file, never more.
    assert sent.status == 200
    assert len(sent.body) == len(DATA)
    assert len(sent.bodies) == 4


async def test_overlapping_ranges_larger_than_the_file_give_the_file(path: Path) -> None:
    header = "bytes=" + ",".join(["0-"] * 50)
    sent = await call(FileResponse(path), headers={"range": header})
    assert sent.status == 200
    assert sent.body == DATA


# --- pathsend --------------------------------------------------------------------------

PATHSEND: dict[str, Any] = {"http.response.pathsend": {}}


async def test_pathsend_replaces_the_body_when_advertised(
    path: Path, opened: list[anyio.AsyncFile[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(path.parent)
    sent = await call(FileResponse(path.name), extensions=PATHSEND)
    assert [m["type"] for m in sent.messages] == ["http.response.start", "http.response.pathsend"]
    assert sent.messages[1]["path"] == str(path)
    assert os.path.isabs(sent.messages[1]["path"])
    assert sent.headers["content-length"] == str(len(DATA))
    assert opened == []


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [("HEAD", {}, 200), ("GET", {"range": "bytes=0-1"}, 206), ("GET", {"if-none-match": "*"}, 304)],
)
async def test_pathsend_only_for_a_full_get(
    path: Path, method: str, headers: dict[str, str], status: int
) -> None:
    sent = await call(FileResponse(path), method=method, headers=headers, extensions=PATHSEND)
    assert sent.status == status
    assert all(m["type"] != "http.response.pathsend" for m in sent.messages)
    assert sent.complete


async def test_pathsend_not_used_for_another_status(path: Path) -> None:
    sent = await call(FileResponse(path, status_code=404), extensions=PATHSEND)
    assert sent.status == 404
    assert sent.body == DATA


# --- failures ---------------------------------------------------------------------------


async def test_missing_file_is_a_runtime_error_before_anything_is_sent(tmp_path: Path) -> None:
    send = Recorder()
    sent = Sent(send.messages)

    with pytest.raises(RuntimeError, match="does not exist"):
        await FileResponse(tmp_path / "missing.txt")(scope_for(), never_disconnects, send)
    with pytest.raises(RuntimeError, match="is not a file"):
        await FileResponse(tmp_path)(scope_for(), never_disconnects, send)
    assert sent.messages == []


async def test_a_file_removed_after_stat_fails_before_the_start(path: Path) -> None:
    response = FileResponse(path, stat_result=await anyio.Path(path).stat())
    await anyio.Path(path).unlink()
    send = Recorder()
    sent = Sent(send.messages)

    with pytest.raises(RuntimeError, match="does not exist"):
        await response(scope_for(), never_disconnects, send)
    assert sent.messages == []


async def test_a_file_that_shrank_is_never_sent_as_complete(
    path: Path, opened: list[anyio.AsyncFile[bytes]]
) -> None:
    stat_result = await anyio.Path(path).stat()
    await anyio.Path(path).write_bytes(DATA[:1000])
    send = Recorder()
    sent = Sent(send.messages)

    with pytest.raises(RuntimeError, match="shrank"):
        await FileResponse(path, stat_result=stat_result)(scope_for(), never_disconnects, send)
    assert sent.headers["content-length"] == str(len(DATA))
    assert not sent.complete
    assert all_closed(opened)


async def test_websocket_scope_is_refused(path: Path) -> None:
    async def send(message: Message) -> None:
        raise AssertionError("nothing may be sent")

    with pytest.raises(RuntimeError, match="http scopes"):
        await FileResponse(path)({"type": "websocket"}, never_disconnects, send)


@pytest.fixture
def gone_after() -> Callable[[int], Any]:
    """A send that fails as a 2.4 server's does once the client left, after n messages."""

    def make(n: int) -> Any:
        sent = Sent()

        async def send(message: Message) -> None:
            if len(sent.messages) >= n:
                raise OSError("client disconnected")
            sent.messages.append(message)

        return sent, send

    return make


async def test_client_gone_on_asgi_2_4_stops_quietly_and_closes_the_file(
    path: Path, opened: list[anyio.AsyncFile[bytes]], gone_after: Callable[[int], Any]
) -> None:
    sent, send = gone_after(2)
    ran: list[bool] = []
    response = FileResponse(path, background=lambda: ran.append(True))
    await response(scope_for(spec_version="2.4"), never_disconnects, send)
    assert len(sent.messages) == 2
    assert not sent.complete
    assert all_closed(opened)
    # A background task often removes a temporary file: it runs even when the client left.
    assert ran == [True]


async def test_client_gone_before_2_4_is_seen_on_receive(
    path: Path, opened: list[anyio.AsyncFile[bytes]]
) -> None:
    sent = Sent()
    disconnected = anyio.Event()

    async def send(message: Message) -> None:
        sent.messages.append(message)
        if len(sent.messages) == 2:
            disconnected.set()
        # A server below 2.4 accepts sends after the client is gone, silently.
        await anyio.sleep(0.01)

    async def receive() -> Message:
        await disconnected.wait()
        return {"type": "http.disconnect"}

    with anyio.fail_after(10):
        await FileResponse(path, chunk_size=1024)(scope_for(spec_version="2.3"), receive, send)
    assert 2 <= len(sent.messages) < 10
    assert not sent.complete
    assert all_closed(opened)


async def test_file_closes_when_the_response_is_cancelled(
    path: Path, opened: list[anyio.AsyncFile[bytes]]
) -> None:
    started = anyio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            started.set()
            await anyio.sleep_forever()

    async with anyio.create_task_group() as group:
        group.start_soon(FileResponse(path), scope_for(), never_disconnects, send)
        with anyio.fail_after(10):
            await started.wait()
        group.cancel_scope.cancel()
    assert len(opened) == 1
    assert all_closed(opened)


# --- through an App and the TestClient -------------------------------------------------------


def file_app(path: Path) -> App:
    app = App()

    @app.get("/download")
    async def download(request: Request) -> FileResponse:
        return FileResponse(path, filename="report 2024.txt")

    @app.get("/missing")
    async def missing(request: Request) -> FileResponse:
        return FileResponse(path.with_name("nope.txt"))

    return app


@pytest.mark.parametrize("extensions", [None, {"http.response.pathsend": {}}])
async def test_a_handler_returns_a_file(path: Path, extensions: dict[str, Any] | None) -> None:
    async with TestClient(file_app(path), extensions=extensions) as client:
        r = await client.get("/download")
        assert r.status_code == 200
        assert r.content == DATA
        assert r.headers["content-disposition"] == 'attachment; filename="report 2024.txt"'
        r = await client.get("/download", headers={"if-none-match": r.headers["etag"]})
        assert r.status_code == 304
        r = await client.get("/download", headers={"range": "bytes=10-19,-10"})
        assert r.status_code == 206
        parts = parse_byteranges(r.headers["content-type"], r.content)
        assert [p.get_payload(decode=True) for p in parts] == [DATA[10:20], DATA[-10:]]
        r = await client.head("/download")
        assert r.status_code == 200
        assert r.headers["content-length"] == str(len(DATA))
        assert r.content == b""


async def test_a_missing_file_from_a_handler_is_a_500(path: Path) -> None:
    async with TestClient(file_app(path), raise_server_exceptions=False) as client:
        r = await client.get("/missing")
    assert r.status_code == 500
    assert "nope.txt" not in r.text
    async with TestClient(file_app(path)) as client:
        with pytest.raises(RuntimeError, match="does not exist"):
            await client.get("/missing")
