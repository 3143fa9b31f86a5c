"""Plain data: settings, request state, header encoding (and, later, form data)."""

from __future__ import annotations

import copy
import functools
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, fields, replace
from typing import Any, TypedDict

import anyio
import anyio.to_thread
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict

from microasgi._types import RawHeaders

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one request may make the server hold; set on ``App(...)``."""

    max_body_size: int = 16 * MiB
    max_form_fields: int = 1000
    max_form_files: int = 100
    max_part_size: int = 1 * MiB
    max_file_size: int = 16 * MiB
    max_part_header_size: int = 16 * KiB
    spool_threshold: int = 1 * MiB


DEFAULT_LIMITS = Limits()
LIMIT_NAMES = frozenset(f.name for f in fields(Limits))

# A route's limits, as ``(name, value)`` pairs: plain, hashable data.
LimitOverrides = tuple[tuple[str, int], ...]


class RouteLimits(TypedDict, total=False):
    """The limits a route may set for its own requests (each overrides the App's)."""

    max_body_size: int
    max_form_fields: int
    max_form_files: int
    max_part_size: int
    max_file_size: int
    max_part_header_size: int
    spool_threshold: int


def limit_overrides(where: str, limits: dict[str, Any]) -> LimitOverrides | None:
    """Check limits given by name (an unknown name or a value that is not a size is a
    ``TypeError`` naming ``where``); None when there are none."""
    if not limits:
        return None
    for name, value in limits.items():
        if name not in LIMIT_NAMES:
            known = ", ".join(sorted(LIMIT_NAMES))
            raise TypeError(f"{where}: unknown argument {name!r} (the limits are: {known})")
        if type(value) is not int or value < 0:
            raise TypeError(f"{where}: {name} must be a number of bytes or items, not {value!r}")
    return tuple(sorted(limits.items()))


def overridden(limits: Limits, overrides: LimitOverrides) -> Limits:
    """``limits`` with ``overrides`` applied."""
    return replace(limits, **dict(overrides))


class State:
    """Attribute access over a dict: ``state.pool`` reads ``mapping["pool"]``."""

    __slots__ = ("_state",)

    def __init__(self, state: MutableMapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_state", {} if state is None else state)

    def __getattr__(self, name: str) -> Any:
        if name == "_state":  # an instance made without __init__: no mapping to look in
            raise AttributeError(name)
        try:
            return self._state[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._state[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self._state[name]
        except KeyError:
            raise AttributeError(name) from None

    # Item access too, so a state declared as a TypedDict is typed (``Request[MyState]``).
    def __getitem__(self, name: str) -> Any:
        return self._state[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._state[name] = value

    def __delitem__(self, name: str) -> None:
        del self._state[name]

    def __contains__(self, name: object) -> bool:
        return name in self._state

    def __iter__(self) -> Iterator[str]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._state!r})"

    # Copies are of the mapping, as copying a dict would make them: a copy's names are
    # its own (its values shared), a deep copy shares nothing.
    def __copy__(self) -> State:
        return type(self)(copy.copy(self._state))

    def __deepcopy__(self, memo: dict[int, Any]) -> State:
        copied = type(self)()
        memo[id(self)] = copied
        object.__setattr__(copied, "_state", copy.deepcopy(self._state, memo))
        return copied

    def __reduce__(self) -> tuple[type[State], tuple[MutableMapping[str, Any]]]:
        return type(self), (self._state,)


HeadersArg = Mapping[str, str] | Iterable[tuple[str, str]]


# Past this many digits a number is larger than any limit or file: converting a longer one
# is needless work (and Python refuses past 4,300 digits).
_MAX_DIGITS = 19
HUGE = 1 << 63


def parse_digits(text: str) -> int | None:
    """A non-negative decimal of ASCII digits only (``"²".isdigit()`` is true), else None.

    One longer than 19 digits, leading zeros aside, is returned as ``HUGE``.
    """
    if not text.isascii() or not text.isdigit():  # "".isdigit() is False too
        return None
    if len(text) > _MAX_DIGITS:
        text = text.lstrip("0") or "0"
        if len(text) > _MAX_DIGITS:
            return HUGE
    return int(text)


def raw_header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case, as ASGI sends names), or None.

    For the one header the framework itself needs, without building a multidict.
    """
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def content_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, int | None]:
    """The request body's Content-Type (``""`` if absent) and the length its Content-Length
    declares (None if absent or not a number), in one pass; the first of each counts."""
    content_type: bytes | None = None
    length: bytes | None = None
    for key, value in headers:
        if key == b"content-type":
            if content_type is None:
                content_type = value
        elif key == b"content-length" and length is None:
            length = value
    if length is None:
        declared = None
    elif length.isdigit() and len(length) <= _MAX_DIGITS:  # bytes: ASCII digits only
        declared = int(length)
    else:
        declared = parse_digits(length.decode("latin-1"))
    return ("" if content_type is None else content_type.decode("latin-1")), declared


def header_items(headers: HeadersArg | None) -> Iterable[tuple[str, str]]:
    """Yield ``(name, value)`` pairs from a mapping or an iterable of pairs."""
    if headers is None:
        return ()
    if isinstance(headers, Mapping):
        # A multidict's items() keeps repeated names, which is what we want.
        return headers.items()
    return headers


def encode_header(name: str, value: str) -> tuple[bytes, bytes]:
    """Encode one header for the wire, refusing CR, LF and NUL (header injection)."""
    if not isinstance(value, str):
        value = str(value)
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"header {name!r} holds a CR, LF or NUL character")
    return _header_name(name), value.encode("latin-1")


_BAD_NAME = re.compile("[ \t\r\n:\0]")


@functools.lru_cache(maxsize=512)
def _header_name(name: str) -> bytes:
    """A header name checked and encoded, once: an app sets the same few names again and
    again (a response's headers changed after it was made are all encoded at its send)."""
    if not name or not name.isascii() or _BAD_NAME.search(name):
        raise ValueError(f"invalid header name {name!r}")
    return name.lower().encode("latin-1")


def encode_headers(headers: HeadersArg | None) -> RawHeaders:
    """Encode a mapping or iterable of pairs into ASGI's ``[(bytes, bytes)]``."""
    return [encode_header(name, value) for name, value in header_items(headers)]


class UploadFile:
    """An uploaded file: kept in memory up to ``spool_threshold`` bytes, then on disk.

    In memory the data is a list of the chunks as they arrived, joined once when first
    read (a copy-free write path: a file object would copy each chunk in, then all of it
    out again). Past the threshold it moves to a temporary file, and from then on every
    file operation runs in a worker thread, so a large upload never blocks the event loop.
    ``.file`` is a real file object either way (made on first access when in memory).
    """

    __slots__ = (
        "_chunks",
        "_closed",
        "_file",
        "_position",
        "_spool_threshold",
        "_spooled",
        "content_type",
        "filename",
        "headers",
        "size",
    )

    def __init__(
        self,
        filename: str | None = None,
        *,
        headers: CIMultiDictProxy[str] | None = None,
        content_type: str | None = None,
        spool_threshold: int = DEFAULT_LIMITS.spool_threshold,
    ) -> None:
        self.filename = filename
        self.headers: CIMultiDictProxy[str] = (
            CIMultiDictProxy(CIMultiDict()) if headers is None else headers
        )
        self.content_type = (
            self.headers.get("content-type") if content_type is None else content_type
        )
        self.size = 0
        self._spool_threshold = spool_threshold
        self._chunks: list[bytes] | None = []  # None once the data lives in self._file
        self._position = 0
        self._file: tempfile.SpooledTemporaryFile[bytes] | None = None
        self._spooled = False  # the data moved to disk (we roll the file over ourselves)
        self._closed = False

    @property
    def _in_memory(self) -> bool:
        """Whether the data is still held in memory (not yet spooled to disk)."""
        return not self._spooled

    @property
    def file(self) -> tempfile.SpooledTemporaryFile[bytes]:
        """The data as a file object, at the current position."""
        if self._file is None:
            file = tempfile.SpooledTemporaryFile(max_size=self._spool_threshold)  # noqa: SIM115
            file.write(self._joined())
            file.seek(self._position)
            self._file, self._chunks = file, None
            if self._closed:
                file.close()
        return self._file

    def _joined(self) -> bytes:
        chunks = self._chunks or []
        if len(chunks) > 1:
            chunks[:] = [b"".join(chunks)]
        return chunks[0] if chunks else b""

    async def write(self, data: bytes) -> None:
        """Append ``data``; the write that crosses ``spool_threshold`` spools to disk."""
        fits = self.size + len(data) <= self._spool_threshold
        if self._chunks is not None and fits:
            self._chunks.append(data)
            self._position = self.size + len(data)  # like a file: at the end after a write
        elif self._in_memory and fits:
            self.file.write(data)  # in memory: cheap enough to do inline
        elif self._in_memory:
            await anyio.to_thread.run_sync(self._write_spooled, data)
        else:
            await anyio.to_thread.run_sync(self.file.write, data)
        self.size += len(data)

    def _write_spooled(self, data: bytes) -> None:
        file = self.file
        file.write(data)
        # Explicitly, so that we know when it happened (and max_size=0 never would).
        file.rollover()
        self._spooled = True

    async def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (everything left when negative)."""
        if self._chunks is not None:
            if self._closed:
                raise ValueError("I/O operation on closed file.")
            data = self._joined()
            start = self._position
            stop = len(data) if size < 0 else min(len(data), start + size)
            self._position = max(start, stop)
            return data if (start == 0 and stop == len(data)) else data[start:stop]
        if self._in_memory:
            return self.file.read(size)
        return await anyio.to_thread.run_sync(self.file.read, size)

    async def seek(self, offset: int, whence: int = 0) -> int:
        """Move the file position, as ``io.IOBase.seek`` does; returns the new position."""
        if self._chunks is not None:
            if self._closed:
                raise ValueError("I/O operation on closed file.")
            base = {0: 0, 1: self._position, 2: self.size}.get(whence)
            if base is None or base + offset < 0:
                raise ValueError(f"invalid seek: offset {offset}, whence {whence}")
            self._position = base + offset
            return self._position
        if self._in_memory:
            return self.file.seek(offset, whence)
        return await anyio.to_thread.run_sync(self.file.seek, offset, whence)

    async def close(self) -> None:
        """Close the file, releasing its memory or its temporary file on disk."""
        if self._closed:
            return
        self._closed = True
        if self._file is None:
            self._chunks = []
            return
        if self._in_memory:
            self._file.close()
            return
        # Shielded: a cancelled request must still release its temporary file.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._file.close)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(filename={self.filename!r}, size={self.size!r}, "
            f"content_type={self.content_type!r})"
        )


class FormData(MultiDict[str | UploadFile]):
    """A parsed form: a ``MultiDict`` of field values and ``UploadFile``s, in arrival order."""

    #: True for a form the multipart parser put files in: the request's end closes such a
    #: form, so that one of fields alone costs nothing then.
    has_uploads = False

    async def close(self) -> None:
        """Close every ``UploadFile`` in the form."""
        for value in self.values():
            if isinstance(value, UploadFile):
                await value.close()
