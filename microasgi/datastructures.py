"""Plain data: settings, request state, header encoding (and, later, form data)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

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


class State:
    """Attribute access over a dict: ``state.pool`` reads ``mapping["pool"]``."""

    __slots__ = ("_state",)

    def __init__(self, state: MutableMapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_state", {} if state is None else state)

    def __getattr__(self, name: str) -> Any:
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

    def __contains__(self, name: object) -> bool:
        return name in self._state

    def __iter__(self) -> Iterator[str]:
        return iter(self._state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._state!r})"


HeadersArg = Mapping[str, str] | Iterable[tuple[str, str]]


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
    if not name or not name.isascii() or any(c in name for c in " \t\r\n:\0"):
        raise ValueError(f"invalid header name {name!r}")
    return name.lower().encode("latin-1"), value.encode("latin-1")


def encode_headers(headers: HeadersArg | None) -> RawHeaders:
    """Encode a mapping or iterable of pairs into ASGI's ``[(bytes, bytes)]``."""
    return [encode_header(name, value) for name, value in header_items(headers)]
