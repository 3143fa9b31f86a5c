"""The pure logic behind ``FileResponse``: validators, conditional requests, byte ranges.

Nothing here does I/O or knows about ASGI: each function takes strings and numbers and
returns a decision, so every rule of RFC 9110 (sections 8.8, 13 and 14) that a file response
relies on is unit-tested on its own. ``FileResponse`` is the thin shell that acts on them.
"""

from __future__ import annotations

import calendar
import mimetypes
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import quote

from microasgi.datastructures import HUGE, parse_digits

#: More ranges than this in one ``Range`` header and we ignore the header (a full 200), as
#: nginx's ``max_ranges`` and Apache's ``MaxRanges`` do: no real client asks for that many,
#: and a multipart answer to thousands of tiny ranges costs far more than the file.
MAX_RANGES = 100

ByteRange = tuple[int, int]
"""A half-open byte interval ``(start, stop)``: ``stop`` is exclusive, as in slicing."""


class RangeNotSatisfiable(Exception):
    """No range of a valid ``Range`` header overlaps the file: answer 416."""


# ---------------------------------------------------------------------------------------
# Representation metadata


# A ``.tar.gz`` is a gzip stream on the wire: we send no Content-Encoding, so the media
# type must name the compression, not what is inside it.
_COMPRESSED_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "br": "application/x-brotli",
    "compress": "application/x-compress",
}


def guess_media_type(name: str | os.PathLike[str]) -> str:
    """Guess a file's media type from its name; text types get ``; charset=utf-8``."""
    media_type, encoding = mimetypes.guess_type(os.fspath(name), strict=False)
    if encoding is not None:
        media_type = _COMPRESSED_TYPES.get(encoding, "application/octet-stream")
    if media_type is None:
        return "application/octet-stream"
    if media_type.startswith("text/"):
        return media_type + "; charset=utf-8"
    return media_type


def make_etag(stat_result: os.stat_result) -> str:
    """Build a strong entity tag from the file's modification time and size."""
    # mtime in nanoseconds: two writes within one second still change the tag.
    return f'"{stat_result.st_mtime_ns:x}-{stat_result.st_size:x}"'


def last_modified_of(stat_result: os.stat_result) -> int:
    """Return the file's modification time in whole seconds (HTTP dates have no fractions)."""
    return stat_result.st_mtime_ns // 1_000_000_000


def http_date(timestamp: float) -> str:
    """Format a POSIX timestamp as an HTTP-date (IMF-fixdate, always GMT)."""
    return formatdate(timestamp, usegmt=True)


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_TIME = r"(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)"
_MONTH = r"(?P<month>[A-Za-z]{3})"
_HTTP_DATE_FORMATS = (
    # IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    re.compile(rf"[A-Za-z]{{3}}, (?P<day>\d\d) {_MONTH} (?P<year>\d{{4}}) {_TIME} GMT", re.ASCII),
    # obsolete RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    re.compile(rf"[A-Za-z]{{6,9}}, (?P<day>\d\d)-{_MONTH}-(?P<year>\d\d) {_TIME} GMT", re.ASCII),
    # obsolete asctime: Sun Nov  6 08:49:37 1994
    re.compile(rf"[A-Za-z]{{3}} {_MONTH} (?P<day>[ \d]\d) {_TIME} (?P<year>\d{{4}})", re.ASCII),
)


def parse_http_date(value: str) -> int | None:
    """Parse an HTTP-date (any of its three formats) to a POSIX timestamp; None if invalid."""
    value = value.strip()
    for pattern in _HTTP_DATE_FORMATS:
        match = pattern.fullmatch(value)
        if match is not None:
            break
    else:
        return None
    month = _MONTHS.get(match["month"].lower())
    if month is None:
        return None
    year = int(match["year"])
    if len(match["year"]) == 2:
        # RFC 9110 5.6.7: a two-digit year more than 50 years ahead is in the past century.
        this_year = time.gmtime().tm_year
        year += this_year - this_year % 100
        if year > this_year + 50:
            year -= 100
    day, hour, minute, second = (int(match[k]) for k in ("day", "hour", "minute", "second"))
    # A leap second (60) is a valid HTTP-date; timegm folds it into the next minute.
    valid_time = hour < 24 and minute < 60 and second <= 60
    # Four digits allow year 0, which the calendar (and so monthrange) refuses to know.
    if year < 1 or not (valid_time and 1 <= day <= calendar.monthrange(year, month)[1]):
        return None
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def content_disposition(filename: str, disposition_type: str = "attachment") -> str:
    """Build a ``Content-Disposition`` value (RFC 6266), ``filename*`` for non-ASCII names."""
    if not disposition_type or not _TOKEN.fullmatch(disposition_type):
        raise ValueError(f"invalid content disposition type {disposition_type!r}")
    if filename.isascii() and filename.isprintable():
        # A quoted-string: only the quote and the backslash need escaping.
        escaped = filename.replace("\\", "\\\\").replace('"', '\\"')
        return f'{disposition_type}; filename="{escaped}"'
    # RFC 8187 ext-value; the safe set is attr-char minus what quote() always keeps.
    encoded = quote(filename, safe="!#$&+^`|", errors="replace")
    return f"{disposition_type}; filename*=utf-8''{encoded}"


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


# ---------------------------------------------------------------------------------------
# Conditional requests (RFC 9110 section 13)

_ENTITY_TAG = re.compile(r'(W/)?("[^"]*")')


def _entity_tags(value: str) -> Iterable[tuple[bool, str]]:
    """Yield ``(weak, opaque_tag)`` for each entity-tag of a list; garbage between is skipped."""
    # A regex scan, not a split on ",": a quoted tag may itself hold commas.
    for match in _ENTITY_TAG.finditer(value):
        yield match[1] is not None, match[2]


def _strip_weak(etag: str) -> tuple[bool, str]:
    if etag.startswith("W/"):
        return True, etag[2:]
    return False, etag


def etag_matches(value: str, etag: str, *, weak: bool) -> bool:
    """Tell whether the entity-tag list ``value`` (or ``*``) matches ``etag``.

    ``weak=True`` is the weak comparison of If-None-Match; ``weak=False`` the strong one
    of If-Match and If-Range, where a weak tag never matches.
    """
    if value.strip() == "*":
        return True
    own_weak, own_tag = _strip_weak(etag)
    if own_weak and not weak:
        return False
    return any(tag == own_tag and (weak or not is_weak) for is_weak, tag in _entity_tags(value))


#: The request headers that ``plan_file_response`` reads.
CONDITIONAL_HEADERS = frozenset(
    {"if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range", "range"}
)


def evaluate_preconditions(
    headers: Mapping[str, str], *, etag: str, last_modified: int, method: str = "GET"
) -> int | None:
    """Apply RFC 9110 13.2.2 to a GET or HEAD: 412, 304, or None to go on.

    ``headers`` maps lower-case names to values (a repeated header joined with ", ").
    An invalid date in If-Modified-Since or If-Unmodified-Since is ignored, as the RFC asks.
    """
    if_match = headers.get("if-match")
    if if_match is not None:
        if not etag_matches(if_match, etag, weak=False):
            return 412
    else:
        unmodified_since = headers.get("if-unmodified-since")
        date = None if unmodified_since is None else parse_http_date(unmodified_since)
        if date is not None and last_modified > date:
            return 412
    safe = method in ("GET", "HEAD")
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if etag_matches(if_none_match, etag, weak=True):
            return 304 if safe else 412
    elif safe:
        modified_since = headers.get("if-modified-since")
        date = None if modified_since is None else parse_http_date(modified_since)
        if date is not None and last_modified <= date:
            return 304
    return None


def if_range_holds(value: str, *, etag: str, last_modified: int) -> bool:
    """Tell whether an ``If-Range`` validator still matches, so the Range may be honoured."""
    value = value.strip()
    if value.startswith(('"', 'W/"')):
        # One strong entity-tag, compared strongly; a list is not a valid If-Range.
        return value == etag and not etag.startswith("W/")
    return parse_http_date(value) == last_modified


# ---------------------------------------------------------------------------------------
# Byte ranges (RFC 9110 section 14)


def parse_range_header(
    value: str, size: int, *, max_ranges: int = MAX_RANGES
) -> list[ByteRange] | None:
    """Turn a ``Range`` header into sorted, merged ranges of a file of ``size`` bytes.

    Returns None when the header must be ignored (the full file, 200): a unit other than
    ``bytes``, invalid syntax, more than ``max_ranges`` ranges, ranges whose total exceeds
    the file (overlaps: a denial-of-service pattern), or an empty file. Raises
    ``RangeNotSatisfiable`` (416) when the header is valid but no range overlaps the file.
    The work is linear in the header's length.
    """
    unit, sep, range_set = value.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    # Count before splitting: a header of thousands of ranges is refused without parsing.
    if range_set.count(",") >= max_ranges:
        return None
    requested: list[ByteRange] = []
    satisfiable: list[ByteRange] = []
    for spec in range_set.split(","):
        spec = spec.strip(" \t")
        if not spec:
            continue  # the list rule (RFC 9110 5.6.1) allows empty elements
        first_text, dash, last_text = spec.partition("-")
        if not dash:
            return None
        if first_text:
            first = parse_digits(first_text)
            last = parse_digits(last_text) if last_text else HUGE
            if first is None or last is None or last < first:
                return None
            span = (first, min(last + 1, size))
        else:
            suffix = parse_digits(last_text)
            if suffix is None:
                return None
            span = (max(size - suffix, 0), size)
        requested.append(span)
        if span[0] < span[1]:
            satisfiable.append(span)
    if not requested or size == 0:
        # An empty file has no byte to range over: its whole (empty) body is the answer.
        return None
    if not satisfiable:
        raise RangeNotSatisfiable(size)
    if sum(stop - start for start, stop in satisfiable) > size:
        return None
    return _merge(satisfiable)


def _merge(ranges: list[ByteRange]) -> list[ByteRange]:
    """Sort and coalesce overlapping or adjacent ranges (RFC 9110 15.3.7.2 allows it)."""
    ranges.sort()
    merged = [ranges[0]]
    for start, stop in ranges[1:]:
        last_start, last_stop = merged[-1]
        if start <= last_stop:
            merged[-1] = (last_start, max(last_stop, stop))
        else:
            merged.append((start, stop))
    return merged


def content_range(byte_range: ByteRange, size: int) -> str:
    """Format a ``Content-Range`` value for a satisfied range."""
    start, stop = byte_range
    return f"bytes {start}-{stop - 1}/{size}"


@dataclass(frozen=True, slots=True)
class ByteRangesBody:
    """How a ``multipart/byteranges`` body is framed, with its length known up front."""

    content_type: str
    content_length: int
    part_heads: list[bytes]
    """One per range: the delimiter and the part's headers, sent before its bytes."""
    part_tail: bytes
    """Sent after each part's bytes."""
    closing: bytes
    """The close delimiter, sent last."""


def byteranges_body(
    ranges: Sequence[ByteRange], size: int, content_type: str, boundary: str
) -> ByteRangesBody:
    """Frame ``ranges`` of a file of ``size`` bytes as ``multipart/byteranges`` (RFC 9110 14.6)."""
    part_heads = [
        (
            f"--{boundary}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Range: {content_range(byte_range, size)}\r\n"
            "\r\n"
        ).encode("latin-1")
        for byte_range in ranges
    ]
    part_tail = b"\r\n"
    closing = f"--{boundary}--\r\n".encode("latin-1")
    length = sum(
        len(head) + stop - start for head, (start, stop) in zip(part_heads, ranges, strict=True)
    )
    length += len(part_tail) * len(ranges) + len(closing)
    return ByteRangesBody(
        content_type=f"multipart/byteranges; boundary={boundary}",
        content_length=length,
        part_heads=part_heads,
        part_tail=part_tail,
        closing=closing,
    )


# ---------------------------------------------------------------------------------------
# The decision


@dataclass(frozen=True, slots=True)
class FilePlan:
    """What to answer for a file: the status and, for a 206, the ranges to send."""

    status_code: int
    ranges: list[ByteRange] | None = None


def plan_file_response(
    headers: Mapping[str, str], *, method: str, size: int, etag: str, last_modified: int
) -> FilePlan:
    """Decide between 200, 206, 304, 412 and 416 for a request for a file."""
    precondition = evaluate_preconditions(
        headers, etag=etag, last_modified=last_modified, method=method
    )
    if precondition is not None:
        return FilePlan(precondition)
    range_value = headers.get("range")
    # GET is the only method with range handling (RFC 9110 14.2): a HEAD gets the 200's head.
    if range_value is None or method != "GET":
        return FilePlan(200)
    if_range = headers.get("if-range")
    if if_range is not None and not if_range_holds(
        if_range, etag=etag, last_modified=last_modified
    ):
        return FilePlan(200)
    try:
        ranges = parse_range_header(range_value, size)
    except RangeNotSatisfiable:
        return FilePlan(416)
    if ranges is None:
        return FilePlan(200)
    return FilePlan(206, ranges)


def request_headers(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Pick the headers ``plan_file_response`` reads out of an ASGI scope's raw headers.

    A repeated header is joined with ", ": right for the entity-tag lists, and it makes a
    repeated date or Range invalid, hence ignored, as RFC 9110 asks.
    """
    picked: dict[str, str] = {}
    for raw_name, raw_value in raw_headers:
        name = raw_name.decode("latin-1").lower()
        if name in CONDITIONAL_HEADERS:
            value = raw_value.decode("latin-1")
            picked[name] = f"{picked[name]}, {value}" if name in picked else value
    return picked
