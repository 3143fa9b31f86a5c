"""The one place that reads ``scope["extensions"]``.

Servers advertise optional protocol features (server push, early hints, trailers,
pathsend, WebSocket denial responses) as keys of ``scope["extensions"]``. Some servers
omit the key entirely (uvicorn's HTTP/1.1), some share the dict across requests
(granian): we only ever read it.
"""

from __future__ import annotations

from microasgi._types import Scope

PUSH = "http.response.push"
EARLY_HINT = "http.response.early_hint"
TRAILERS = "http.response.trailers"
PATHSEND = "http.response.pathsend"
WEBSOCKET_HTTP_RESPONSE = "websocket.http.response"


def supports(scope: Scope, name: str) -> bool:
    """Tell whether the server advertised the extension ``name`` for this scope."""
    extensions = scope.get("extensions")
    return extensions is not None and name in extensions


def wants_trailers(scope: Scope) -> bool:
    """Trailers are sent only when advertised and the request said ``TE: trailers``."""
    if not supports(scope, TRAILERS):
        return False
    return any(
        token.split(b";")[0].strip().lower() == b"trailers"
        for name, value in scope["headers"]
        if name == b"te"
        for token in value.split(b",")
    )
