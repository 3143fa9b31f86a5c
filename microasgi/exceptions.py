"""Exceptions that user code raises or catches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus


def reason_phrase(status_code: int) -> str:
    """Return the standard reason phrase for ``status_code`` ("" when unknown)."""
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return ""


class HTTPException(Exception):
    """Raise to answer the request with ``status_code`` and a plain-text ``detail``."""

    def __init__(
        self,
        status_code: int,
        detail: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        if detail is None:
            detail = reason_phrase(status_code)
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, detail={self.detail!r})"


class ClientDisconnect(Exception):
    """The client went away while the request body was being read."""
