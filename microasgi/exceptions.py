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


class WebSocketException(Exception):
    """Raise in a WebSocket handler to close the connection with ``code`` and ``reason``.

    Before the handshake is accepted it refuses the connection instead (a close the
    server answers with 403). Either way it is the handler's chosen end, not an error:
    never a 1011, and it does not propagate to the server.
    """

    def __init__(self, code: int, reason: str | None = None) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason or ""

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r})"
