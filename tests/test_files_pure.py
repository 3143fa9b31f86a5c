"""The file-serving rules as plain functions: validators, preconditions, byte ranges."""

from __future__ import annotations

import email.message
import email.parser
import os
import time

import pytest

from microasgi._files import (
    MAX_RANGES,
    FilePlan,
    RangeNotSatisfiable,
    byteranges_body,
    content_disposition,
    content_range,
    etag_matches,
    evaluate_preconditions,
    guess_media_type,
    http_date,
    if_range_holds,
    last_modified_of,
    make_etag,
    parse_http_date,
    parse_range_header,
    plan_file_response,
    request_headers,
)

NOV_6_1994 = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's own example


def fake_stat(size: int, mtime_ns: int) -> os.stat_result:
    seconds = mtime_ns // 10**9
    # The integer fields, then st_{a,m,c}time as floats, then st_{a,m,c}time_ns.
    fields = (
        0o100644,
        0,
        0,
        1,
        0,
        0,
        size,
        0,
        seconds,
        0,
        0.0,
        mtime_ns / 1e9,
        0.0,
        0,
        mtime_ns,
        0,
    )
    return os.stat_result(fields)


# --- media type, validators, dates ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("style.CSS", "text/css; charset=utf-8"),
        ("photo.png", "image/png"),
        ("data.json", "application/json"),
        ("no-extension", "application/octet-stream"),
        ("archive.tar.gz", "application/gzip"),
        ("dir/report.txt", "text/plain; charset=utf-8"),
    ],
)
def test_guess_media_type(name: str, expected: str) -> None:
    assert guess_media_type(name) == expected


def test_etag_is_strong_quoted_and_changes_with_mtime_and_size() -> None:
    etag = make_etag(fake_stat(10, 1_000_000_000_123))
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert make_etag(fake_stat(10, 1_000_000_000_123)) == etag
    assert make_etag(fake_stat(11, 1_000_000_000_123)) != etag
    # Two writes within the same second still change the tag.
    assert make_etag(fake_stat(10, 1_000_000_000_456)) != etag


def test_last_modified_drops_the_fraction() -> None:
    assert last_modified_of(fake_stat(1, NOV_6_1994 * 10**9 + 999_999_999)) == NOV_6_1994


def test_http_date_is_imf_fixdate() -> None:
    assert http_date(NOV_6_1994) == "Sun, 06 Nov 1994 08:49:37 GMT"


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "  Sun, 06 Nov 1994 08:49:37 GMT  ",
    ],
)
def test_parse_http_date_reads_the_three_formats(value: str) -> None:
    assert parse_http_date(value) == NOV_6_1994


def test_rfc850_two_digit_year_more_than_50_years_ahead_is_last_century() -> None:
    this_year = time.gmtime().tm_year
    soon = (this_year + 10) % 100
    far = (this_year + 60) % 100
    soon_date = parse_http_date(f"Monday, 01-Jan-{soon:02d} 00:00:00 GMT")
    far_date = parse_http_date(f"Monday, 01-Jan-{far:02d} 00:00:00 GMT")
    assert soon_date is not None
    assert far_date is not None
    assert time.gmtime(soon_date).tm_year == this_year + 10
    assert time.gmtime(far_date).tm_year == this_year + 60 - 100


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "0",
        "-1",
        "Sun, 30 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 06 Nov 1994 08:61:37 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 PST",
        "Sun, 06 Nov 19945 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, \u0660\u0666 Nov 1994 08:49:37 GMT",  # Arabic-Indic digits
        "Sun, 06 Nov 1994 08:49:37 GMT" + "x" * 10_000,
        # Year 0 does not exist: calendar refuses it, and an invalid date is ignored.
        "Sun, 06 Nov 0000 08:49:37 GMT",
        "Sat, 29 Feb 0000 00:00:00 GMT",
        "Sun Nov  6 08:49:37 0000",
    ],
)
def test_parse_http_date_refuses_invalid_dates(value: str) -> None:
    assert parse_http_date(value) is None


# --- Content-Disposition -------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("report.pdf", 'attachment; filename="report.pdf"'),
        ("my report.pdf", 'attachment; filename="my report.pdf"'),
        ('say "hi".txt', 'attachment; filename="say \\"hi\\".txt"'),
        ("back\\slash.txt", 'attachment; filename="back\\\\slash.txt"'),
        ("résumé.pdf", "attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf"),
        ("日本.txt", "attachment; filename*=utf-8''%E6%97%A5%E6%9C%AC.txt"),
        # Control characters never reach a quoted-string (CR/LF would split the header).
        ("a\r\nSet-Cookie: x=1", "attachment; filename*=utf-8''a%0D%0ASet-Cookie%3A%20x%3D1"),
        ("a;b.txt", 'attachment; filename="a;b.txt"'),
    ],
)
def test_content_disposition(filename: str, expected: str) -> None:
    assert content_disposition(filename) == expected


def test_content_disposition_inline_and_non_ascii_keep_attr_chars() -> None:
    assert content_disposition("é!#$&+^`|~-._x", "inline") == (
        "inline; filename*=utf-8''%C3%A9!#$&+^`|~-._x"
    )


@pytest.mark.parametrize("disposition_type", ["", "attachment; x=1", "at tachment", "a\r\nb"])
def test_content_disposition_refuses_a_bad_type(disposition_type: str) -> None:
    with pytest.raises(ValueError, match="disposition type"):
        content_disposition("a.txt", disposition_type)


# --- conditional requests ------------------------------------------------------------

ETAG = '"abc-10"'


@pytest.mark.parametrize(
    ("value", "weak", "expected"),
    [
        ('"abc-10"', True, True),
        ('"abc-10"', False, True),
        ('W/"abc-10"', True, True),
        ('W/"abc-10"', False, False),
        ("*", False, True),
        (" * ", True, True),
        ('"x", "abc-10"', True, True),
        ('"x","y"', True, False),
        ('"a,b", "abc-10"', True, True),
        ('"abc-10', True, False),
        ("abc-10", True, False),
        ("", True, False),
    ],
)
def test_etag_matches(value: str, weak: bool, expected: bool) -> None:
    assert etag_matches(value, ETAG, weak=weak) is expected


def test_a_weak_own_tag_never_matches_strongly() -> None:
    assert etag_matches('W/"x"', 'W/"x"', weak=True)
    assert not etag_matches('"x"', 'W/"x"', weak=False)


LATER = http_date(NOV_6_1994 + 60)
EARLIER = http_date(NOV_6_1994 - 60)
SAME = http_date(NOV_6_1994)
YEAR_ZERO = "Sun, 06 Nov 0000 08:49:37 GMT"


@pytest.mark.parametrize(
    ("headers", "method", "expected"),
    [
        ({}, "GET", None),
        ({"if-none-match": ETAG}, "GET", 304),
        ({"if-none-match": ETAG}, "HEAD", 304),
        ({"if-none-match": f'W/{ETAG}, "other"'}, "GET", 304),
        ({"if-none-match": "*"}, "GET", 304),
        ({"if-none-match": '"other"'}, "GET", None),
        ({"if-none-match": ETAG}, "POST", 412),
        ({"if-modified-since": SAME}, "GET", 304),
        ({"if-modified-since": LATER}, "GET", 304),
        ({"if-modified-since": EARLIER}, "GET", None),
        ({"if-modified-since": SAME}, "POST", None),
        ({"if-modified-since": "not a date"}, "GET", None),
        ({"if-modified-since": "Sun, 31 Feb 1994 08:49:37 GMT"}, "GET", None),
        # If-None-Match present: If-Modified-Since is not looked at (RFC 9110 13.1.3).
        ({"if-none-match": '"other"', "if-modified-since": LATER}, "GET", None),
        ({"if-match": ETAG}, "GET", None),
        ({"if-match": "*"}, "GET", None),
        ({"if-match": '"other"'}, "GET", 412),
        ({"if-match": f"W/{ETAG}"}, "GET", 412),
        ({"if-unmodified-since": EARLIER}, "GET", 412),
        ({"if-unmodified-since": SAME}, "GET", None),
        ({"if-unmodified-since": "garbage"}, "GET", None),
        ({"if-match": ETAG, "if-unmodified-since": EARLIER}, "GET", None),
        ({"if-match": ETAG, "if-none-match": ETAG}, "GET", 304),
        ({"if-modified-since": YEAR_ZERO}, "GET", None),
        ({"if-unmodified-since": YEAR_ZERO}, "GET", None),
    ],
)
def test_evaluate_preconditions(headers: dict[str, str], method: str, expected: int | None) -> None:
    result = evaluate_preconditions(headers, etag=ETAG, last_modified=NOV_6_1994, method=method)
    assert result == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (ETAG, True),
        (f" {ETAG} ", True),
        ('"other"', False),
        (f"W/{ETAG}", False),
        (f"{ETAG}, {ETAG}", False),
        (SAME, True),
        (EARLIER, False),
        (LATER, False),
        ("garbage", False),
        ("", False),
        (YEAR_ZERO, False),
    ],
)
def test_if_range_holds(value: str, expected: bool) -> None:
    assert if_range_holds(value, etag=ETAG, last_modified=NOV_6_1994) is expected


# --- Range ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes=0-499", [(0, 500)]),
        ("bytes=500-999", [(500, 1000)]),
        ("bytes=500-", [(500, 1000)]),
        ("bytes=-500", [(500, 1000)]),
        ("bytes=-5000", [(0, 1000)]),
        ("bytes=0-0", [(0, 1)]),
        ("bytes=999-", [(999, 1000)]),
        ("bytes=900-5000", [(900, 1000)]),
        ("BYTES=0-9", [(0, 10)]),
        ("bytes=0-9, 20-29", [(0, 10), (20, 30)]),
        ("bytes=0-9,,\t20-29,", [(0, 10), (20, 30)]),
        # sorted and coalesced: overlapping, adjacent, contained
        ("bytes=20-29,0-9", [(0, 10), (20, 30)]),
        ("bytes=0-9,5-14", [(0, 15)]),
        ("bytes=0-9,10-19", [(0, 20)]),
        ("bytes=0-99,10-19", [(0, 100)]),
        ("bytes=-100,0-9", [(0, 10), (900, 1000)]),
        # unsatisfiable members are dropped when another one is satisfiable
        ("bytes=0-9,5000-6000", [(0, 10)]),
        ("bytes=-0,0-0", [(0, 1)]),
        # digits beyond any file size do not go through int()
        ("bytes=0-" + "9" * 5000, [(0, 1000)]),
        ("bytes=" + "0" * 5000 + "1-2", [(1, 3)]),
    ],
)
def test_parse_range_header(value: str, expected: list[tuple[int, int]]) -> None:
    assert parse_range_header(value, 1000) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "bytes",
        "bytes=",
        "bytes=,",
        "items=0-9",
        "bytes 0-9",
        "bytes=9-0",
        "bytes=a-9",
        "bytes=0-a",
        "bytes=--5",
        "bytes=-",
        "bytes=5",
        "bytes=+5-9",
        "bytes=0x10-20",
        "bytes=0 - 9",
        "bytes=\u0660-\u0669",  # Arabic-Indic digits are digits to str.isdigit, not to HTTP
        "bytes=0-9, bytes=20-29",  # two Range headers joined
        "bytes=0-9,x",  # one bad member spoils the header
    ],
)
def test_invalid_range_is_ignored(value: str) -> None:
    assert parse_range_header(value, 1000) is None


@pytest.mark.parametrize(
    "value",
    [
        "bytes=1000-",
        "bytes=5000-6000",
        "bytes=-0",
        "bytes=1000-1000,2000-",
        "bytes=1" + "0" * 40 + "-",
    ],
)
def test_unsatisfiable_range_raises(value: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range_header(value, 1000)


def test_range_of_an_empty_file_is_ignored() -> None:
    assert parse_range_header("bytes=0-", 0) is None
    assert parse_range_header("bytes=-10", 0) is None


def test_overlapping_ranges_adding_up_past_the_file_are_ignored() -> None:
    # The "Apache Killer" shape: many overlapping ranges, each cheap to ask for.
    assert parse_range_header("bytes=0-,0-", 1000) is None
    assert parse_range_header("bytes=" + ",".join(["0-999"] * 5), 1000) is None
    assert parse_range_header("bytes=0-600,400-999", 1000) is None
    assert parse_range_header("bytes=0-199,100-299", 1000) == [(0, 300)]


def test_range_count_is_capped() -> None:
    at_cap = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(MAX_RANGES))
    ranges = parse_range_header(at_cap, 10 * MAX_RANGES)
    assert ranges is not None
    assert len(ranges) == MAX_RANGES
    over_cap = at_cap + f",{MAX_RANGES * 10}-{MAX_RANGES * 10 + 1}"
    assert parse_range_header(over_cap, 10 * (MAX_RANGES + 1)) is None
    assert parse_range_header("bytes=0-1,3-4,6-7", 100, max_ranges=2) is None


def test_five_thousand_ranges_are_refused_without_parsing_them() -> None:
    header = "bytes=" + ",".join(f"{i * 3}-{i * 3 + 1}" for i in range(5000))
    started = time.perf_counter()
    assert parse_range_header(header, 10**9) is None
    elapsed = time.perf_counter() - started
    print(f"5000 ranges refused in {elapsed * 1e6:.0f} µs")


def test_content_range() -> None:
    assert content_range((0, 500), 1000) == "bytes 0-499/1000"
    assert content_range((999, 1000), 1000) == "bytes 999-999/1000"


# --- multipart/byteranges ------------------------------------------------------------


def assemble(data: bytes, ranges: list[tuple[int, int]], boundary: str) -> tuple[int, bytes, str]:
    framing = byteranges_body(ranges, len(data), "text/plain; charset=utf-8", boundary)
    body = b"".join(
        head + data[start:stop] + framing.part_tail
        for head, (start, stop) in zip(framing.part_heads, ranges, strict=True)
    )
    return framing.content_length, body + framing.closing, framing.content_type


def test_byteranges_body_length_is_exact_and_parts_parse_back() -> None:
    data = bytes(range(256)) * 40
    ranges = [(0, 1), (100, 250), (9000, 10240)]
    length, body, content_type = assemble(data, ranges, "3d6b6a416f9b5")
    assert length == len(body)
    assert content_type == "multipart/byteranges; boundary=3d6b6a416f9b5"
    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts: list[email.message.Message] = message.get_payload()  # type: ignore[assignment]
    assert [part["Content-Range"] for part in parts] == [
        "bytes 0-0/10240",
        "bytes 100-249/10240",
        "bytes 9000-10239/10240",
    ]
    assert all(part["Content-Type"] == "text/plain; charset=utf-8" for part in parts)
    assert [part.get_payload(decode=True) for part in parts] == [
        data[start:stop] for start, stop in ranges
    ]


@pytest.mark.parametrize("size", [9, 10, 99_999, 100_000, 10**12])
def test_byteranges_length_counts_every_digit(size: int) -> None:
    # Content-Range digits vary in width with the positions and the size.
    ranges = [(0, 1), (size - 1, size)] if size > 1 else [(0, 1)]
    framing = byteranges_body(ranges, size, "application/octet-stream", "b")
    payload = sum(stop - start for start, stop in ranges)
    framed = sum(map(len, framing.part_heads)) + len(framing.part_tail) * len(ranges)
    assert framing.content_length == framed + payload + len(framing.closing)
    assert framing.part_heads[-1].endswith(f"/{size}\r\n\r\n".encode())


# --- the whole decision --------------------------------------------------------------


def plan(headers: dict[str, str], method: str = "GET", size: int = 1000) -> FilePlan:
    return plan_file_response(
        headers, method=method, size=size, etag=ETAG, last_modified=NOV_6_1994
    )


def test_plan_without_conditions_is_a_full_200() -> None:
    assert plan({}) == FilePlan(200)


def test_plan_not_modified_wins_over_range() -> None:
    assert plan({"if-none-match": ETAG, "range": "bytes=0-1"}) == FilePlan(304)


def test_plan_ranges() -> None:
    assert plan({"range": "bytes=0-1"}) == FilePlan(206, [(0, 2)])
    # Range only means something for GET (RFC 9110 14.2): HEAD and POST ignore it.
    assert plan({"range": "bytes=0-1"}, method="HEAD") == FilePlan(200)
    assert plan({"range": "bytes=5000-"}) == FilePlan(416)
    assert plan({"range": "bytes=oops"}) == FilePlan(200)
    assert plan({"range": "bytes=0-1"}, method="POST") == FilePlan(200)


def test_plan_if_range() -> None:
    assert plan({"range": "bytes=0-1", "if-range": ETAG}) == FilePlan(206, [(0, 2)])
    assert plan({"range": "bytes=0-1", "if-range": SAME}) == FilePlan(206, [(0, 2)])
    assert plan({"range": "bytes=0-1", "if-range": '"stale"'}) == FilePlan(200)
    assert plan({"range": "bytes=0-1", "if-range": EARLIER}) == FilePlan(200)
    # A stale If-Range also hides an unsatisfiable Range: the client gets the new file.
    assert plan({"range": "bytes=5000-", "if-range": '"stale"'}) == FilePlan(200)


def test_plan_precondition_failed() -> None:
    assert plan({"if-match": '"other"', "range": "bytes=0-1"}) == FilePlan(412)


def test_request_headers_picks_and_joins() -> None:
    raw = [
        (b"Host", b"example.com"),
        (b"If-None-Match", b'"a"'),
        (b"if-none-match", b'"b"'),
        (b"RANGE", b"bytes=0-1"),
        (b"range", b"bytes=2-3"),
        (b"if-modified-since", SAME.encode()),
        (b"x-caf\xc3\xa9", b"\xff"),
    ]
    assert request_headers(raw) == {
        "if-none-match": '"a", "b"',
        "range": "bytes=0-1, bytes=2-3",
        "if-modified-since": SAME,
    }
    assert plan(request_headers(raw)) == FilePlan(200)  # neither tag matches; Range invalid
