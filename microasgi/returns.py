"""What a handler may return, made into the response that answers the request.

A ``Response`` is sent as it is; ``str``, ``bytes``, ``dict``, ``list``, a dataclass
and ``None`` become the matching response; a ``(body, status)`` or ``(body, status,
headers)`` tuple sets the status and headers of any of those.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from microasgi._json import dumps as json_dumps
from microasgi._types import Message
from microasgi.datastructures import HeadersArg
from microasgi.responses import JSONResponse, PlainTextResponse, Response

__all__ = ["plain_messages", "to_response"]


def _from_body(body: Any, status: int | None, headers: HeadersArg | None) -> Response:
    if isinstance(body, str):
        return PlainTextResponse(body, status or 200, headers)
    if isinstance(body, dict | list):
        return JSONResponse(body, status or 200, headers)
    if body is None:
        return Response(None, 204 if status is None else status, headers)
    if isinstance(body, bytes | bytearray | memoryview):
        return Response(body, status or 200, headers, media_type="application/octet-stream")
    if dataclasses.is_dataclass(body) and not isinstance(body, type):
        return JSONResponse(body, status or 200, headers)
    raise TypeError(
        f"a handler returned {type(body).__name__!s}: return a Response, str, bytes, "
        "dict, list, a dataclass, None or a (body, status[, headers]) tuple"
    )


_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_JSON = (b"content-type", b"application/json")
_OCTETS = (b"content-type", b"application/octet-stream")


def plain_messages(value: Any, method: str) -> tuple[Message, Message] | None:
    """The two messages for a plain return (str, dict, list, bytes), exactly as
    ``to_response(value)`` would send them, without building a Response; else None.
    """
    kind = type(value)
    if kind is str:
        body, content_type = value.encode(), _TEXT
    elif kind is dict or kind is list:
        body, content_type = json_dumps(value), _JSON
    elif kind is bytes:
        body, content_type = value, _OCTETS
    else:
        return None
    headers = [(b"content-length", b"%d" % len(body)), content_type]
    return (
        {"type": "http.response.start", "status": 200, "headers": headers},
        {"type": "http.response.body", "body": b"" if method == "HEAD" else body},
    )


def to_response(value: Any) -> Response:
    """Turn what a handler returned into a Response (see the API's return conversion)."""
    if isinstance(value, Response):
        return value
    if isinstance(value, tuple) and len(value) in (2, 3) and isinstance(value[1], int):
        body, status = value[0], value[1]
        headers = value[2] if len(value) == 3 else None
        if isinstance(body, Response):  # Flask's (response, status[, headers])
            # A copy: the same response object may be returned again (a module-level one).
            return body.copy_with(status, headers)
        return _from_body(body, status, headers)
    return _from_body(value, None, None)
