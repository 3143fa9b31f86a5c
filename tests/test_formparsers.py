"""parse_form, UploadFile and FormData, driven directly with async iterators of chunks."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import tracemalloc
from collections.abc import AsyncIterator, Iterable, Iterator
from urllib.parse import parse_qsl

import pytest
from multidict import MultiDict

from microasgi import formparsers
from microasgi.datastructures import DEFAULT_LIMITS, FormData, Limits, MiB, UploadFile
from microasgi.exceptions import HTTPException
from microasgi.formparsers import parse_form

pytestmark = pytest.mark.anyio

URLENCODED = "application/x-www-form-urlencoded"
BOUNDARY = "----microasgiBoundary7MA4YWxk"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
CHUNK_SIZES = [1, 2, 3, 7, 64, 65536]


async def chunked(body: bytes, size: int) -> AsyncIterator[bytes]:
    """Yield ``body`` in chunks of ``size`` bytes."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def from_iter(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    """Turn a (lazy) iterable of chunks into the async stream parse_form reads."""
    for chunk in chunks:
        yield chunk


def limits(**changes: int) -> Limits:
    """The default limits with some changed."""
    return dataclasses.replace(DEFAULT_LIMITS, **changes)


def part(
    name: str | bytes,
    body: bytes,
    filename: str | bytes | None = None,
    content_type: str | None = None,
    extra: bytes = b"",
) -> bytes:
    """One multipart part: its header lines, a blank line, its body."""
    if isinstance(name, str):
        name = b'"' + name.encode() + b'"'
    disposition = b"Content-Disposition: form-data; name=" + name
    if filename is not None:
        if isinstance(filename, str):
            filename = b'"' + filename.encode() + b'"'
        disposition += b"; filename=" + filename
    headers = disposition + b"\r\n"
    if content_type is not None:
        headers += b"Content-Type: " + content_type.encode() + b"\r\n"
    return headers + extra + b"\r\n" + body


def multipart(*parts: bytes, boundary: str = BOUNDARY) -> bytes:
    """A complete multipart body holding ``parts``."""
    delimiter = b"--" + boundary.encode()
    out = b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in parts)
    return out + delimiter + b"--\r\n"


async def parse(
    body: bytes, content_type: str = MULTIPART, size: int = 65536, **changes: int
) -> FormData:
    """Parse ``body`` delivered in chunks of ``size`` bytes."""
    return await parse_form(content_type, chunked(body, size), limits(**changes))


async def status_of(body: bytes, content_type: str = MULTIPART, **changes: int) -> int:
    """The status of the HTTPException that parsing ``body`` raises."""
    with pytest.raises(HTTPException) as info:
        await parse(body, content_type, **changes)
    return info.value.status_code


async def refused_with_peak(
    stream: AsyncIterator[bytes], content_type: str = MULTIPART
) -> tuple[int, int]:
    """Parse ``stream`` with the default limits, expecting a refusal: (status, memory peak)."""
    tracemalloc.start()
    try:
        with pytest.raises(HTTPException) as info:
            await parse_form(content_type, stream, DEFAULT_LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return info.value.status_code, peak


class RecordingUploadFile(UploadFile):
    """An UploadFile that remembers every instance, to check they all get closed."""

    instances: list[UploadFile] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        RecordingUploadFile.instances.append(self)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[UploadFile]:
    """Every UploadFile the parser creates during the test."""
    RecordingUploadFile.instances = []
    monkeypatch.setattr(formparsers, "UploadFile", RecordingUploadFile)
    return RecordingUploadFile.instances


# --- urlencoded ----------------------------------------------------------------------

QUERY_BODIES = [
    b"a=1&b=2",
    b"a=1&a=2&a=3",
    b"blank=&novalue&=noname&&&trailing=x&",
    b"&leading=1",
    b"sp=a+b+c&pct=a%20b%2Bc%26d%3De",
    b"bad=%zz%4&half=%2&end=%",
    b"unicode=%E2%82%AC%C3%A9",
    # A "%" before a line break, or last: a quoted-printable decoder would drop it.
    b"lf=%\nx",
    b"crlf=%\r\nx&cr=%\rx",
    b"last=%",
    b"",
]


@pytest.mark.parametrize("body", QUERY_BODIES)
@pytest.mark.parametrize("size", CHUNK_SIZES)
async def test_urlencoded_matches_parse_qsl(body: bytes, size: int) -> None:
    form = await parse(body, URLENCODED, size)
    expected = parse_qsl(body.decode("ascii"), keep_blank_values=True)
    assert list(form.items()) == expected


FUZZ_PIECES = [
    "a", "b", "=", "&", "+", " ", "\t", "\r", "\n", "\r\n", "%", "%2", "%41", "%3D", "%26",
    "%2B", "%c3%a9", "%C3%A9", "%zz", "%g1", "%00", "\x00", "%%", "%=", "_",
    # A valid escape shortens the text by two bytes: so do these, in other ways.
    "%%41", "%0a", "%\r\n", "%\n", "==",
]  # fmt: skip


@pytest.mark.parametrize("size", [1, 5, 65536])
async def test_urlencoded_agrees_with_parse_qsl_on_random_bodies(size: int) -> None:
    # Well-formed runs take a one-call decoder and the rest a general one: both must give
    # what parse_qsl gives, whatever the shape, escapes and chunking.
    import random

    rng = random.Random(size)
    for _ in range(2000):
        text = "".join(rng.choice(FUZZ_PIECES) for _ in range(rng.randrange(0, 14)))
        form = await parse(text.encode("ascii"), URLENCODED, size)
        assert list(form.items()) == parse_qsl(text, keep_blank_values=True), repr(text)


async def test_urlencoded_invalid_utf8_is_replaced() -> None:
    form = await parse(b"name=%FF%FE&raw=\xff\xfeok&%C3=x", URLENCODED, 2)
    assert list(form.items()) == [
        ("name", "\ufffd\ufffd"),
        ("raw", "\ufffd\ufffdok"),
        ("\ufffd", "x"),
    ]


async def test_urlencoded_content_type_is_case_insensitive_and_may_have_params() -> None:
    form = await parse(b"a=1", "Application/X-WWW-Form-Urlencoded; charset=UTF-8")
    assert form["a"] == "1"


@pytest.mark.parametrize("content_type", ["", "application/json", "text/plain; charset=utf-8"])
async def test_other_content_types_give_an_empty_form_without_reading(content_type: str) -> None:
    read = []

    async def stream() -> AsyncIterator[bytes]:
        read.append(True)
        yield b"a=1"

    form = await parse_form(content_type, stream(), DEFAULT_LIMITS)
    assert isinstance(form, FormData)
    assert len(form) == 0
    assert not read


async def test_urlencoded_field_count_limit_is_inclusive() -> None:
    assert len(await parse(b"a=1&b=2&c", URLENCODED, max_form_fields=3)) == 3
    # Empty segments are not fields.
    assert len(await parse(b"a=1&&b=2&&&c&", URLENCODED, max_form_fields=3)) == 3
    assert await status_of(b"a=1&b=2&c&d", URLENCODED, max_form_fields=3) == 400


async def test_urlencoded_value_limit_counts_decoded_bytes() -> None:
    form = await parse(b"v=" + b"x" * 10, URLENCODED, max_part_size=10)
    assert form["v"] == "x" * 10
    # Thirty encoded bytes, ten decoded: within the limit.
    form = await parse(b"v=" + b"%41" * 10, URLENCODED, 4, max_part_size=10)
    assert form["v"] == "A" * 10
    assert await status_of(b"v=" + b"x" * 11, URLENCODED, max_part_size=10) == 413
    assert await status_of(b"v=" + b"%41" * 11 + b"&w=1", URLENCODED, max_part_size=10) == 413
    assert await status_of(b"n" * 11 + b"=1", URLENCODED, max_part_size=10) == 413
    # The same through the general decoder (an empty pair) and the one-by-one one (a NUL).
    assert await status_of(b"v=" + b"x" * 11 + b"&&", URLENCODED, max_part_size=10) == 413
    assert await status_of(b"v=" + b"x" * 10 + b"%00", URLENCODED, max_part_size=10) == 413


async def test_urlencoded_huge_value_is_refused_while_streaming() -> None:
    consumed = 0

    def chunks() -> Iterator[bytes]:
        nonlocal consumed
        yield b"a=1&big="
        for _ in range(1600):  # 100 MiB, in fresh chunks as a server delivers them
            consumed += 1
            yield b"x" * 65536

    status, peak = await refused_with_peak(from_iter(chunks()), URLENCODED)
    assert status == 413
    assert peak < 8 * MiB
    # Refused within a few limits' worth of input, not at the end of the body.
    assert consumed * 64 * 1024 <= 4 * DEFAULT_LIMITS.max_part_size


async def test_urlencoded_many_fields_in_one_huge_chunk_bounded_memory() -> None:
    body = b"a&" * (4 * MiB)  # 8 MiB, four million fields, delivered at once
    status, peak = await refused_with_peak(from_iter([body]), URLENCODED)
    assert status == 400
    assert peak < 4 * MiB


# --- multipart: what a user gets -----------------------------------------------------

UPLOAD = b"line one\r\n--not-the-boundary\r\n\r\n\x00\xff binary tail\r"
FORM_BODY = multipart(
    part("title", "Hello, wörld".encode()),
    part("doc", UPLOAD, filename="notes.txt", content_type="text/plain"),
    part("tag", b"a"),
    part("tag", b"b"),
    part("empty", b""),
    part("blob", b"", filename="", content_type="application/octet-stream"),
)


@pytest.mark.parametrize("size", CHUNK_SIZES)
async def test_multipart_fields_and_files(size: int) -> None:
    form = await parse(FORM_BODY, size=size)
    assert [key for key, _ in form.items()] == ["title", "doc", "tag", "tag", "empty", "blob"]
    assert form["title"] == "Hello, wörld"
    assert form.getall("tag") == ["a", "b"]
    assert form["empty"] == ""
    doc = form["doc"]
    assert isinstance(doc, UploadFile)
    assert doc.filename == "notes.txt"
    assert doc.content_type == "text/plain"
    assert doc.size == len(UPLOAD)
    assert doc.headers["content-type"] == "text/plain"
    assert doc.headers["Content-Disposition"] == 'form-data; name="doc"; filename="notes.txt"'
    assert await doc.read() == UPLOAD
    blob = form["blob"]
    assert isinstance(blob, UploadFile)
    assert (blob.filename, blob.size, await blob.read()) == ("", 0, b"")
    await form.close()


async def test_multipart_every_split_point() -> None:
    body = multipart(part("a", b"1\r\n-"), part("f", b"--x\r", filename="f.bin"))
    for split in range(1, len(body)):
        form = await parse_form(MULTIPART, from_iter([body[:split], body[split:]]), DEFAULT_LIMITS)
        upload = form["f"]
        assert isinstance(upload, UploadFile)
        assert (form["a"], await upload.read()) == ("1\r\n-", b"--x\r"), split
        await form.close()


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        (b'"plain.txt"', "plain.txt"),
        (b'"a\\"quoted\\".txt"', 'a"quoted".txt'),  # RFC quoted-pair
        (b'"a%22quoted%22.txt"', 'a"quoted".txt'),  # how browsers and httpx escape '"'
        (b'"semi;colon.txt"', "semi;colon.txt"),
        (b'"C:\\\\dir\\\\x.txt"', "C:\\dir\\x.txt"),
        ('"résumé €.txt"'.encode(), "résumé €.txt"),  # raw UTF-8, as browsers send it
        (b"token.txt", "token.txt"),
        (b"\"fallback.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt", "€ rates.txt"),
        (b"\"fallback.txt\"; filename*=iso-8859-1'en'%A3rates.txt", "£rates.txt"),
        (b"\"fallback.txt\"; filename*=nope''%41", "fallback.txt"),  # unknown charset
        (b'"fallback.txt"; filename*=UTF-8%41', "fallback.txt"),  # malformed
        # Charsets that cannot decode text: the plain filename is kept, as for unknown ones.
        (b"\"fallback.txt\"; filename*=idna''%41", "fallback.txt"),
        (b"\"fallback.txt\"; filename*=undefined''%41", "fallback.txt"),
        (b"\"fallback.txt\"; filename*=punycode''%ff", "fallback.txt"),
        (b"\"fallback.txt\"; filename*=unicode_escape''%5cx41", "fallback.txt"),
        (b"\"fallback.txt\"; filename*=rot13''%41", "fallback.txt"),
        (b"\"fallback.txt\"; filename*=utf\x00-8''%41", "fallback.txt"),
        (b'"fallback.txt"; filename*=' + b"x" * 4000 + b"''%41", "fallback.txt"),
    ],
)
async def test_multipart_filenames(filename: bytes, expected: str) -> None:
    form = await parse(multipart(part("f", b"x", filename=filename)), size=5)
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.filename == expected
    await form.close()


@pytest.mark.parametrize("charset", [b"idna", b"undefined", b"punycode", b"utf\x00-8", b"zlib"])
async def test_multipart_extended_name_with_a_charset_that_cannot_decode_keeps_the_name(
    charset: bytes,
) -> None:
    form = await parse(multipart(part(b'"plain"; name*=' + charset + b"''%ff", b"v")))
    assert dict(form) == {"plain": "v"}


async def test_multipart_part_without_content_type() -> None:
    form = await parse(multipart(part("f", b"x", filename="x")))
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.content_type is None
    await form.close()


async def test_multipart_invalid_utf8_is_replaced_and_charset_field_honoured() -> None:
    form = await parse(multipart(part("v", b"ok\xff")))
    assert form["v"] == "ok\ufffd"
    form = await parse(multipart(part("_charset_", b"iso-8859-1"), part("v", b"caf\xe9")))
    assert form["v"] == "café"
    for charset in (b"rot13", b"idna", b"no-such-charset", b"utf\x00-8", b"punycode"):
        form = await parse(multipart(part("_charset_", charset), part("v", b"caf\xc3\xa9")))
        assert form["v"] == "café", charset  # not usable for text: UTF-8 stays


async def test_multipart_preamble_whitespace_and_epilogue_are_ignored() -> None:
    body = b"\r\n" + multipart(part("a", b"1")) + b"epilogue, ignored"
    assert dict(await parse(body)) == {"a": "1"}


async def test_multipart_quoted_boundary_and_empty_form() -> None:
    content_type = 'multipart/form-data; boundary="quoted boundary"'
    body = multipart(part("a", b"1"), boundary="quoted boundary")
    assert dict(await parse(body, content_type)) == {"a": "1"}
    assert len(await parse(f"--{BOUNDARY}--\r\n".encode())) == 0


# --- multipart: spooling ---------------------------------------------------------------


@pytest.mark.parametrize(("extra", "in_memory"), [(-1, True), (0, True), (1, False)])
async def test_upload_spools_once_it_holds_more_than_the_threshold(
    extra: int, in_memory: bool
) -> None:
    data = bytes(range(256)) * 4 + b"z" * (1000 + extra)
    threshold = 2024
    form = await parse(
        multipart(part("f", data, filename="f")), size=100, spool_threshold=threshold
    )
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload._in_memory is in_memory
    assert upload.size == len(data)
    assert await upload.read() == data
    await form.close()


async def test_upload_file_io_off_the_event_loop_once_on_disk() -> None:
    upload = UploadFile("f.bin", spool_threshold=4)
    loop_thread = threading.get_ident()
    writers: list[int] = []
    real_write = upload.file.write

    def write(data: bytes) -> int:
        writers.append(threading.get_ident())
        return real_write(data)

    upload.file.write = write  # type: ignore[method-assign,assignment]
    await upload.write(b"ab")
    await upload.write(b"cd")  # exactly the threshold: still in memory
    assert upload._in_memory
    await upload.write(b"e")  # the write that spools
    assert not upload._in_memory
    await upload.write(b"fg")
    assert writers[:2] == [loop_thread, loop_thread]
    assert loop_thread not in writers[2:]
    assert upload.size == 7
    assert await upload.seek(2) == 2
    assert await upload.read(3) == b"cde"
    assert await upload.read() == b"fg"
    await upload.close()
    await upload.close()  # closing twice is harmless
    assert upload.file.closed


async def test_upload_threshold_zero_spools_on_first_byte() -> None:
    upload = UploadFile(spool_threshold=0)
    await upload.write(b"")
    assert upload._in_memory
    await upload.write(b"x")
    assert not upload._in_memory
    await upload.seek(0)
    assert await upload.read() == b"x"
    await upload.close()


async def test_formdata_is_a_multidict_and_close_closes_its_files() -> None:
    first, second = UploadFile("a"), UploadFile("b", spool_threshold=0)
    await second.write(b"on disk")
    form = FormData([("f", first), ("name", "value"), ("f", second)])
    assert isinstance(form, MultiDict)
    assert form.getall("f") == [first, second]
    await form.close()
    assert first.file.closed
    assert second.file.closed


# --- multipart: limits ---------------------------------------------------------------


async def test_multipart_field_count_limit_excludes_files() -> None:
    fields = [part(f"f{i}", b"x") for i in range(3)]
    files = [part(f"u{i}", b"x", filename="x") for i in range(5)]
    form = await parse(multipart(*fields, *files), max_form_fields=3)
    assert len(form) == 8
    await form.close()
    assert await status_of(multipart(*fields, part("f3", b"x")), max_form_fields=3) == 400


async def test_multipart_file_count_limit() -> None:
    files = [part(f"u{i}", b"x", filename="x") for i in range(3)]
    form = await parse(multipart(*files), max_form_files=3)
    assert len(form) == 3
    await form.close()
    body = multipart(*files, part("u3", b"x", filename="x"))
    assert await status_of(body, max_form_files=3) == 400


async def test_multipart_field_size_limit() -> None:
    assert (await parse(multipart(part("a", b"x" * 10)), size=3, max_part_size=10))["a"] == "x" * 10
    assert await status_of(multipart(part("a", b"x" * 11)), max_part_size=10) == 413


async def test_multipart_file_size_limit() -> None:
    form = await parse(multipart(part("f", b"x" * 10, filename="f")), size=3, max_file_size=10)
    await form.close()
    body = multipart(part("f", b"x" * 11, filename="f"))
    assert await status_of(body, max_file_size=10) == 413
    # The field limit does not apply to files, nor the file limit to fields.
    form = await parse(
        multipart(part("f", b"x" * 11, filename="f"), part("a", b"y" * 5)),
        max_part_size=5,
        max_file_size=11,
    )
    await form.close()


async def test_multipart_part_header_size_limit() -> None:
    # Counted as the raw header lines: here exactly one line, CRLF included.
    line_length = len(b'Content-Disposition: form-data; name="a"\r\n')
    body = multipart(part("a", b"1"))
    assert dict(await parse(body, size=1, max_part_header_size=line_length)) == {"a": "1"}
    assert await status_of(body, max_part_header_size=line_length - 1) == 413
    # Every part has its own budget.
    many = multipart(*(part(f"b{i}", b"1") for i in range(5)))
    assert len(await parse(many, max_part_header_size=line_length + 1)) == 5


# --- multipart: malformed and hostile input ------------------------------------------


async def test_truncated_multipart_never_gives_a_partial_form(recorded: list[UploadFile]) -> None:
    body = multipart(part("a", b"1"), part("f", b"data", filename="f.txt"), part("b", b"2"))
    complete = body.index(b"--\r\n", len(body) - 8) + 2  # through the closing "--"
    for cut in range(complete):
        assert await status_of(body[:cut]) == 400, cut
    assert recorded
    assert all(upload.file.closed for upload in recorded)
    assert dict(await parse(body[:complete]))["b"] == "2"


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        'multipart/form-data; boundary=""',
        "multipart/form-data; charset=utf-8",
        "multipart/form-data; boundary=" + "x" * 300,
        "multipart/form-data; boundary=bad\x01char",
        "multipart/form-data; boundary=€uro",
    ],
)
async def test_missing_or_invalid_boundary(content_type: str) -> None:
    assert await status_of(multipart(part("a", b"1")), content_type) == 400


@pytest.mark.parametrize(
    "body",
    [
        b"not a multipart body at all",
        b"--wrong-boundary\r\n" + part("a", b"1") + b"\r\n--wrong-boundary--\r\n",
        multipart(b"Content-Disposition form-data\r\n\r\n1"),  # no colon
        multipart(b"Bad Header: x\r\n" + part("a", b"1")),  # space in the name
        multipart(b": empty name\r\n" + part("a", b"1")),
        multipart(b"Content-Type: text/plain\r\n\r\n1"),  # no Content-Disposition
        multipart(b"Content-Disposition: form-data\r\n\r\n1"),  # no name
        multipart(b'Content-Disposition: form-data; filename="x"\r\n\r\n1'),
    ],
)
async def test_malformed_multipart_is_400(body: bytes, recorded: list[UploadFile]) -> None:
    assert await status_of(body) == 400
    assert all(upload.file.closed for upload in recorded)


async def test_ten_thousand_tiny_parts_refused_fast_by_the_count_limit() -> None:
    body = multipart(*(part("a", b"x") for _ in range(10_000)))
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    consumed = 0

    def counted() -> Iterator[bytes]:
        nonlocal consumed
        for chunk in chunks:
            consumed += 1
            yield chunk

    with pytest.raises(HTTPException) as info:
        await parse_form(MULTIPART, from_iter(counted()), DEFAULT_LIMITS)
    assert info.value.status_code == 400
    assert consumed < len(chunks)  # refused at the limit, not after the whole body


async def test_one_mebibyte_part_header_refused_with_bounded_memory() -> None:
    def chunks() -> Iterator[bytes]:
        yield f"--{BOUNDARY}\r\nX-Huge: ".encode()
        for _ in range(16):
            yield b"h" * 65536
        yield b"\r\n" + part("a", b"1") + f"\r\n--{BOUNDARY}--\r\n".encode()

    status, peak = await refused_with_peak(from_iter(chunks()))
    assert status == 413
    assert peak < 512 * 1024


async def test_hundred_megabyte_field_refused_with_bounded_memory() -> None:
    consumed = 0

    def chunks() -> Iterator[bytes]:
        nonlocal consumed
        yield f"--{BOUNDARY}\r\n".encode() + part("big", b"")
        for i in range(1600):  # 100 MiB, in fresh chunks as a server delivers them
            consumed += 1
            yield i.to_bytes(4, "big") * 16384

    status, peak = await refused_with_peak(from_iter(chunks()))
    assert status == 413
    assert peak < 8 * MiB
    assert consumed * 64 * 1024 <= DEFAULT_LIMITS.max_part_size + 64 * 1024


async def test_hundred_megabyte_upload_spools_to_disk_with_bounded_memory() -> None:
    total = 100 * MiB
    digest = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        yield f"--{BOUNDARY}\r\n".encode() + part("f", b"", filename="big.bin")
        for i in range(total // 65536):
            block = i.to_bytes(4, "big") * 16384  # varied content, exactly 64 KiB
            digest.update(block)
            yield block
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    tracemalloc.start()
    try:
        form = await parse_form(
            MULTIPART, from_iter(chunks()), limits(max_file_size=total, max_body_size=2 * total)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.size == total
    assert not upload._in_memory
    assert peak < 8 * MiB
    check = hashlib.sha256()
    while block := await upload.read(MiB):
        check.update(block)
    assert check.hexdigest() == digest.hexdigest()
    await form.close()
    assert upload.file.closed


async def test_files_closed_when_a_later_part_is_refused(recorded: list[UploadFile]) -> None:
    body = multipart(
        part("small", b"kept in memory", filename="a"),
        part("spooled", b"s" * 100, filename="b"),
        part("toolarge", b"x" * 1000, filename="c"),
    )
    with pytest.raises(HTTPException) as info:
        # Small chunks, so the first files are written before the last one is refused.
        await parse(body, size=50, spool_threshold=10, max_file_size=500)
    assert info.value.status_code == 413
    assert len(recorded) == 3
    assert not recorded[1]._in_memory
    assert all(upload.file.closed for upload in recorded)


async def test_files_closed_when_the_stream_fails(recorded: list[UploadFile]) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield multipart(part("f", b"x" * 100, filename="f"))[:-20]
        raise HTTPException(413)  # what Request.stream() raises past max_body_size

    with pytest.raises(HTTPException) as info:
        await parse_form(MULTIPART, failing(), limits(spool_threshold=10))
    assert info.value.status_code == 413
    assert len(recorded) == 1
    assert recorded[0].file.closed


async def test_in_memory_upload_reads_seeks_and_becomes_a_file_at_its_position() -> None:
    upload = UploadFile("f.bin", spool_threshold=100)
    for chunk in (b"ab", b"cd", b"ef"):
        await upload.write(chunk)
    assert upload._in_memory
    assert await upload.seek(0) == 0
    assert await upload.read(3) == b"abc"
    assert await upload.seek(-1, 2) == 5
    assert await upload.read() == b"f"
    assert await upload.seek(1) == 1
    file = upload.file  # a real file object, made on demand, at the same position
    assert file.read() == b"bcdef"
    await upload.write(b"gh")  # still in memory: written inline at the position
    assert await upload.seek(0) == 0
    assert await upload.read() == b"abcdefgh"
    await upload.close()
    assert upload.file.closed
    with pytest.raises(ValueError, match="closed"):
        await upload.read()


async def test_a_closed_in_memory_upload_refuses_reads_and_shows_a_closed_file() -> None:
    upload = UploadFile("f.bin")
    await upload.write(b"data")
    await upload.close()
    with pytest.raises(ValueError, match="closed"):
        await upload.read()
    with pytest.raises(ValueError, match="closed"):
        await upload.seek(0)
    assert upload.file.closed


def test_python_multipart_is_loaded_only_for_a_multipart_body() -> None:
    # A short-lived process (AWS Lambda) that never parses multipart does not pay for it.
    import subprocess
    import sys

    program = """
import asyncio, sys
from microasgi import App
from microasgi.testing import TestClient
app = App()
@app.post("/")
async def echo(request):
    return list((await request.form()).keys())
async def main():
    async with TestClient(app) as client:
        assert (await client.post("/", data={"a": "1"})).json() == ["a"]
        print("python_multipart" in sys.modules)
        await client.post("/", files={"f": ("f.txt", b"x")})
        print("python_multipart" in sys.modules)
asyncio.run(main())
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["False", "True"]
