"""Streaming parsers for urlencoded and multipart/form-data bodies, with limits.

Both parsers consume the body chunk by chunk and check every limit before they keep
data, so a hostile body costs at most one limit's worth of memory (plus one window).

Failure modes, all as ``HTTPException``:

- 413: a field value (``max_part_size``), a file (``max_file_size``) or one part's
  headers (``max_part_header_size``) is too large.
- 400: too many fields (``max_form_fields``) or files (``max_form_files``), or the
  multipart body is malformed (bad or missing boundary, truncated, bad part headers,
  a part without a ``Content-Disposition`` name).

Sizes are counted in bytes after decoding: an urlencoded value's percent-decoded bytes
(its name is held to the same bound), a multipart field's body, a file's body, and one
part's header lines as ``name: value\r\n`` (the blank line after them not counted).
"""

from __future__ import annotations

import encodings
import functools
import inspect
import pkgutil
import re
from binascii import a2b_qp
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from encodings.aliases import aliases
from urllib.parse import unquote_to_bytes

import anyio
from multidict import CIMultiDict, CIMultiDictProxy

from microasgi.datastructures import FormData, Limits, UploadFile
from microasgi.exceptions import HTTPException

__all__ = ["URLENCODED", "decode_text", "parse_form", "parse_urlencoded", "text_codec"]

# One parser step handles at most this much input, whatever size the server's chunks
# are, so the work done before a limit is checked stays bounded.
_WINDOW = 64 * 1024

# A percent-encoded byte takes three input bytes: past this multiple of the limit no
# encoding can bring a value back under it.
_MAX_ENCODING_RATIO = 3

# Printable ASCII, not ending in a space (RFC 2046 is stricter; real clients comply).
_BOUNDARY = re.compile(rb"[\x20-\x7e]{0,255}[\x21-\x7e]")

URLENCODED = "application/x-www-form-urlencoded"

_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_QUOTED_PAIR = re.compile(r'\\([\\"])')
# How the HTML standard escapes these three characters in multipart names and filenames.
_HTML_ESCAPES = re.compile(r"%(22|0D|0A)", re.IGNORECASE)
_HTML_UNESCAPED = {"22": '"', "0d": "\r", "0a": "\n"}


async def parse_form(
    content_type: str, body: bytes | AsyncIterable[bytes], limits: Limits
) -> FormData:
    """Parse a form body, whole or streamed, by its Content-Type; other types give an empty form."""
    if content_type == URLENCODED:  # what browsers send: skip the normalizing
        mime = URLENCODED
    else:
        mime = content_type.partition(";")[0].strip().lower()
    if mime == URLENCODED:
        if isinstance(body, bytes):
            return parse_urlencoded(body, limits)
        return await _parse_urlencoded_stream(body, limits)
    if mime == "multipart/form-data":
        reader = _MultipartReader(_boundary(content_type), limits)
        return await reader.parse(_one_chunk(body) if isinstance(body, bytes) else body)
    return FormData()


async def _one_chunk(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _windows(chunk: bytes) -> Iterator[bytes]:
    if len(chunk) <= _WINDOW:
        yield chunk
        return
    for start in range(0, len(chunk), _WINDOW):
        yield chunk[start : start + _WINDOW]


def _too_many(what: str, limit: int) -> HTTPException:
    return HTTPException(400, f"Too many {what} in the form (the limit is {limit}).")


def _too_large(what: str, limit: int) -> HTTPException:
    return HTTPException(413, f"A form {what} is larger than the limit of {limit} bytes.")


# --- text in a charset the client names ----------------------------------------------

# IANA's charset names are printable ASCII, at most 40 characters long.
_CHARSET_NAME = re.compile(r"[\x21-\x7e]{1,40}")

# Python codecs that no client means as a charset: naming one gets UTF-8. punycode (and
# idna, built on it) refuses "replace" and decodes in quadratic time; the escape codecs
# read Python literals (and warn on bad ones); undefined refuses everything.
_NOT_CHARSETS = frozenset({"idna", "punycode", "undefined", "unicode_escape", "raw_unicode_escape"})


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Decode ``data`` by the charset a client named, or UTF-8; never raises.

    A name that is no text charset of Python's (unknown, ``rot13``, ``idna``, a NUL in
    it) means UTF-8; bytes the charset cannot decode become U+FFFD.
    """
    codec = text_codec(charset) if charset else None
    if codec is not None:
        try:
            return data.decode(codec, "replace")
        except ValueError:  # a codec refusing some input even with "replace"
            pass
    return data.decode("utf-8", "replace")


def text_codec(charset: str) -> str | None:
    """The Python codec that decodes text in ``charset`` (a client's name for it), or None."""
    if _CHARSET_NAME.fullmatch(charset) is None:
        return None
    return _known_text_codec(charset.lower())


@functools.lru_cache(maxsize=64)
def _known_text_codec(name: str) -> str | None:
    # Python's codec registry keeps every name it is asked about, unknown ones too: a
    # client making up a name per request would grow it without end. Only the name of
    # one of Python's own codec modules, a bounded set, is ever looked up.
    key = encodings.normalize_encoding(name)
    module = aliases.get(key) or aliases.get(key.replace(".", "_")) or key
    if module in _NOT_CHARSETS or module not in _codec_modules():
        return None
    try:  # (decoding nothing would not even look the codec up)
        b"a".decode(module, "replace")
    except (LookupError, ValueError):  # not text (rot13, base64), or not on this platform
        return None
    return module


@functools.cache
def _codec_modules() -> frozenset[str]:
    return frozenset(module.name for module in pkgutil.iter_modules(encodings.__path__))


# --- application/x-www-form-urlencoded ---------------------------------------------


def parse_urlencoded(body: bytes, limits: Limits) -> FormData:
    """Parse a whole urlencoded body."""
    if len(body) <= _WINDOW:  # nothing to split off or hold: decode it in one run
        return FormData(_decode_pairs(body, limits))
    parser = _UrlencodedParser(limits)
    parser.feed(body)
    return FormData(parser.finish())


async def _parse_urlencoded_stream(stream: AsyncIterable[bytes], limits: Limits) -> FormData:
    parser = _UrlencodedParser(limits)
    async for chunk in stream:
        parser.feed(chunk)
    return FormData(parser.finish())


def _unquote_plus(raw: bytes) -> bytes:
    raw = raw.replace(b"+", b" ")
    # unquote_to_bytes keeps an invalid escape such as "%zz" as it is, like parse_qsl.
    return unquote_to_bytes(raw) if b"%" in raw else raw


# The fast path turns ``a=b&c=d`` into ``a NUL b NUL c NUL d`` and decodes every escape
# in one C call: binascii's quoted-printable decoder reads "=XX" as the byte 0xXX, so
# "%" becomes "=" and both separators become NUL. That is exact only when every pair
# has one "=", every "%" starts a valid escape, and no NUL is there or escaped (%00);
# and no CR or LF is there, which that decoder reads as a line break after "=".
_AS_QUOTED_PRINTABLE = bytes.maketrans(b"&=+%", b"\x00\x00 =")
# Deleting every other byte leaves a run's shape: its separators, and any CR, LF or NUL.
_NOT_SHAPE = bytes(byte for byte in range(256) if byte not in b"&=\r\n\x00")


def _decode_pairs(run: bytes, limits: Limits, held: int = 0) -> list[tuple[str, str]]:
    """A run of complete pairs, ``name=value&...``, decoded, within the limits (``held``:
    the fields parsed before it)."""
    pairs = run.count(b"&") + 1
    if run.translate(None, _NOT_SHAPE) != b"=&" * (pairs - 1) + b"=":
        return _decode_pairs_slowly(run, limits, held)
    joined = a2b_qp(run.translate(_AS_QUOTED_PRINTABLE))
    # A valid escape decodes 3 bytes to 1; any other "%" (kept, or "%%" read as one)
    # shortens the text by less, and with no CR or LF nothing else shortens it. A NUL
    # more than the separators made is an escaped one (%00).
    if len(joined) != len(run) - 2 * run.count(b"%") or joined.count(b"\x00") != 2 * pairs - 1:
        return _decode_pairs_slowly(run, limits, held)
    if held + pairs > limits.max_form_fields:
        raise _too_many("fields", limits.max_form_fields)
    return _texts(joined, len(run), limits.max_part_size)


def _texts(joined: bytes, encoded_size: int, max_size: int) -> list[tuple[str, str]]:
    """NUL-separated decoded names and values (``encoded_size`` bytes before decoding),
    as pairs of text."""
    if encoded_size > max_size:  # decoding never lengthens: else none can be too large
        _check_sizes(joined.split(b"\x00"), max_size)
    # One decode for every piece: the calls, not the bytes, cost.
    texts = iter(joined.decode("utf-8", "replace").split("\x00"))
    return list(zip(texts, texts, strict=True))  # name, value, name, ...


def _decode_pairs_slowly(run: bytes, limits: Limits, held: int) -> list[tuple[str, str]]:
    """``_decode_pairs`` for any run: empty pairs, invalid escapes, NULs, line breaks."""
    flat = _split_pairs(run)
    if held + len(flat) // 2 > limits.max_form_fields:
        raise _too_many("fields", limits.max_form_fields)
    # NUL joins the pieces: none holds one unescaped, and no UTF-8 sequence does.
    joined = b"\x00".join(flat)
    if b"%00" not in joined and joined.count(b"\x00") == len(flat) - 1:
        return _texts(_unquote_plus(joined), len(run), limits.max_part_size)
    # A NUL of the sender's own: names and values decoded one by one.
    pieces = [_unquote_plus(piece) for piece in flat]
    _check_sizes(pieces, limits.max_part_size)
    texts = [piece.decode("utf-8", "replace") for piece in pieces]
    return list(zip(texts[::2], texts[1::2], strict=True))


def _check_sizes(pieces: list[bytes], max_size: int) -> None:
    if pieces and max(map(len, pieces)) > max_size:
        raise _too_large("field", max_size)


def _split_pairs(run: bytes) -> list[bytes]:
    """A run of pairs split into names and values in turn, still encoded; empty pairs skipped."""
    flat: list[bytes] = []
    for segment in run.split(b"&"):
        if segment:
            name, _, value = segment.partition(b"=")
            flat.append(name)
            flat.append(value)
    return flat


class _UrlencodedParser:
    """Split complete ``name=value`` pairs off each chunk; hold back only the last one."""

    __slots__ = ("_complete", "_complete_size", "_limits", "_max_raw", "_pending", "items")

    def __init__(self, limits: Limits) -> None:
        self.items: list[tuple[str, str]] = []
        self._limits = limits
        self._pending = bytearray()
        # Runs of complete pairs not decoded yet: decoding many at once is cheaper, and
        # holding at most a window of them keeps memory bounded.
        self._complete: list[bytes] = []
        self._complete_size = 0
        self._max_raw = limits.max_part_size * _MAX_ENCODING_RATIO

    def feed(self, data: bytes) -> None:
        """Take ``data``; decode the pairs it completes once a window of them is held."""
        for window in _windows(data):
            self._feed_window(window)

    def _feed_window(self, data: bytes) -> None:
        cut = data.rfind(b"&")
        if cut == -1:
            self._pending += data
        else:
            if self._pending:
                self._pending += data[:cut]
                run = bytes(self._pending)
            else:
                run = data[:cut]
            self._complete.append(run)
            self._complete_size += len(run)
            if self._complete_size > _WINDOW:
                self._flush()
            self._pending = bytearray(data[cut + 1 :])
        if len(self._pending) > self._max_raw:
            self._check_pending()

    def finish(self) -> list[tuple[str, str]]:
        """Parse the last pair and return every pair in order."""
        if self._pending:
            self._complete.append(bytes(self._pending))
            self._pending = bytearray()
        self._flush()
        return self.items

    def _flush(self) -> None:
        complete, self._complete, self._complete_size = self._complete, [], 0
        if complete:
            run = complete[0] if len(complete) == 1 else b"&".join(complete)
            self.items += _decode_pairs(run, self._limits, len(self.items))

    def _check_pending(self) -> None:
        # The pair is still arriving: refuse it as soon as its name or value is
        # certainly too large, rather than buffer it to its end.
        pending = self._pending
        equals = pending.find(b"=", 0, self._max_raw + 1)
        if equals == -1 or len(pending) - equals - 1 > self._max_raw:
            raise _too_large("field", self._limits.max_part_size)


# --- multipart/form-data ------------------------------------------------------------


def _boundary(content_type: str) -> bytes:
    try:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(content_type)
    except UnicodeEncodeError:
        options = {}
    boundary = options.get(b"boundary")
    if boundary is None or _BOUNDARY.fullmatch(boundary) is None:
        raise HTTPException(400, "Missing or invalid multipart boundary.")
    return boundary


def _decode_header(raw: bytes) -> str:
    # Browsers send names and filenames as raw UTF-8; latin-1 keeps anything else intact.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _unquote_param(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
    return _HTML_ESCAPES.sub(lambda m: _HTML_UNESCAPED[m.group(1).lower()], value)


def _parse_disposition(value: str) -> dict[str, str]:
    """Parameters of a Content-Disposition value; ``filename*`` (RFC 5987) beats ``filename``."""
    plain: dict[str, str] = {}
    extended: dict[str, str] = {}
    semicolon = value.find(";")
    for match in _PARAM.finditer(value, len(value) if semicolon == -1 else semicolon):
        key = match.group(1).lower()
        raw = match.group(2).strip()
        if not key.endswith("*"):
            plain[key] = _unquote_param(raw)
            continue
        charset, _, rest = raw.partition("'")
        _, quote, encoded = rest.partition("'")
        codec = text_codec(charset or "utf-8")
        if not quote or codec is None:  # an unusable charset: the plain parameter stands
            continue
        extended[key[:-1]] = decode_text(unquote_to_bytes(encoded), codec)
    plain.update(extended)
    return plain


class _MultipartReader:
    """Drive python-multipart's callback parser, keeping fields and writing files."""

    def __init__(self, boundary: bytes, limits: Limits) -> None:
        self._limits = limits
        from python_multipart.multipart import MultipartParser

        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
            **_parser_header_limits(),
        )
        self._items: list[tuple[str, bytes | UploadFile]] = []
        self._files: list[UploadFile] = []
        self._fields = 0
        # Callbacks are synchronous: file data waits here until the chunk is parsed.
        self._writes: list[tuple[UploadFile, bytes]] = []
        self._done = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._header_size = 0
        self._name = ""
        self._file: UploadFile | None = None
        self._chunks: list[bytes] = []
        self._size = 0

    async def parse(self, stream: AsyncIterable[bytes]) -> FormData:
        """Consume ``stream`` and return the form; on any error close every file."""
        try:
            try:
                async for chunk in stream:
                    for window in _windows(chunk):
                        self._parser.write(window)
                        if self._writes:
                            await self._flush()
                self._parser.finalize()
            except _parse_error() as exc:
                raise HTTPException(400, "Malformed multipart body.") from exc
            if not self._done:
                raise HTTPException(400, "Truncated multipart body.")
            for upload in self._files:
                await upload.seek(0)
        except BaseException:
            with anyio.CancelScope(shield=True):
                for upload in self._files:
                    await upload.close()
            raise
        return self._form()

    def _form(self) -> FormData:
        charset = "utf-8"
        for name, value in self._items:
            if name == "_charset_" and isinstance(value, bytes):
                charset = value.decode("latin-1").strip()
                break
        form = FormData(
            (name, decode_text(value, charset) if isinstance(value, bytes) else value)
            for name, value in self._items
        )
        if self._files:
            form.has_uploads = True
        return form

    async def _flush(self) -> None:
        writes, self._writes = self._writes, []
        start = 0
        while start < len(writes):
            upload = writes[start][0]
            end = start + 1
            while end < len(writes) and writes[end][0] is upload:
                end += 1
            await upload.write(b"".join(data for _, data in writes[start:end]))
            start = end

    def _count_header(self, size: int) -> None:
        self._header_size += size
        if self._header_size > self._limits.max_part_header_size:
            raise _too_large("part's headers", self._limits.max_part_header_size)

    def _on_part_begin(self) -> None:
        self._headers = []
        self._header_size = 0
        self._file = None
        self._chunks = []
        self._size = 0

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        # Counted as the line "name: value\r\n" would be, so the limit reads as raw bytes.
        self._count_header(4)
        self._headers.append((bytes(self._header_field), bytes(self._header_value)))
        self._header_field = bytearray()
        self._header_value = bytearray()

    def _on_headers_finished(self) -> None:
        headers: CIMultiDict[str] = CIMultiDict(
            (_decode_header(name), _decode_header(value)) for name, value in self._headers
        )
        disposition = headers.get("content-disposition")
        params = {} if disposition is None else _parse_disposition(disposition)
        name = params.get("name")
        if name is None:
            raise HTTPException(400, "A multipart part has no Content-Disposition name.")
        self._name = name
        limits = self._limits
        filename = params.get("filename")
        if filename is None:
            self._fields += 1
            if self._fields > limits.max_form_fields:
                raise _too_many("fields", limits.max_form_fields)
            return
        if len(self._files) >= limits.max_form_files:
            raise _too_many("files", limits.max_form_files)
        upload = UploadFile(
            filename, headers=CIMultiDictProxy(headers), spool_threshold=limits.spool_threshold
        )
        self._files.append(upload)
        self._items.append((name, upload))
        self._file = upload

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._size += end - start
        if self._file is not None:
            if self._size > self._limits.max_file_size:
                raise _too_large("file", self._limits.max_file_size)
            self._writes.append((self._file, data[start:end]))
        else:
            if self._size > self._limits.max_part_size:
                raise _too_large("field", self._limits.max_part_size)
            self._chunks.append(data[start:end])

    def _on_part_end(self) -> None:
        if self._file is None:
            self._items.append((self._name, b"".join(self._chunks)))
            self._chunks = []

    def _on_end(self) -> None:
        self._done = True


# python-multipart is imported on the first multipart body: an app without one (or a
# short-lived one, as on AWS Lambda) does not pay for loading it.


@functools.cache
def _parse_error() -> type[Exception]:
    from python_multipart.exceptions import FormParserError

    return FormParserError


@functools.cache
def _parser_header_limits() -> dict[str, int]:
    from python_multipart.multipart import MultipartParser

    # Recent python-multipart bounds each header line and the header count of a part on
    # its own (as a parse error). Our one limit on a part's headers is the documented
    # one and bounds both, so lift the library's out of its way.
    parameters = inspect.signature(MultipartParser.__init__).parameters
    if "max_header_size" not in parameters:
        return {}
    return {"max_header_size": 2**62, "max_header_count": 2**62}
