"""Small helpers over ASGI raw headers shared by the middleware (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable

from microasgi._types import RawHeaders


def split_tokens(value: bytes) -> list[bytes]:
    """Split a comma-separated header value into lower-case, stripped, non-empty tokens."""
    return [token for part in value.split(b",") if (token := part.strip().lower())]


def joined_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """Return every ``name`` header's value joined by commas (RFC 9110 list rule), or None."""
    values = [value for key, value in headers if key == name]
    if not values:
        return None
    return values[0] if len(values) == 1 else b",".join(values)


def add_vary(headers: RawHeaders, token: bytes) -> None:
    """Merge ``token`` into the ``vary`` header of ``headers`` (a list we own), at most once."""
    wanted = token.lower()
    first: int | None = None
    for index, (name, value) in enumerate(headers):
        if name == b"vary":
            present = split_tokens(value)
            if b"*" in present or wanted in present:
                return
            if first is None:
                first = index
    if first is None:
        headers.append((b"vary", token))
        return
    # Merge into the first Vary line rather than add a second one.
    name, value = headers[first]
    headers[first] = (name, value + b", " + token if value.strip() else token)
