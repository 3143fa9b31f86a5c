"""Who is asking, and may they: users, credentials, backends, and ``@requires``.

``AuthenticationMiddleware`` (in ``microasgi.middleware.authentication``) asks a backend
once per connection and sets ``request.user`` and ``request.auth``; ``@requires`` guards a
handler with the scopes it needs. The names and behaviour are Starlette's, so moving an
app over is a change of imports.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar, cast
from urllib.parse import urlencode

from microasgi._concurrency import is_async_callable
from microasgi.exceptions import HTTPException
from microasgi.requests import HTTPConnection
from microasgi.responses import RedirectResponse

__all__ = [
    "AuthCredentials",
    "AuthenticationBackend",
    "AuthenticationError",
    "BaseUser",
    "SimpleUser",
    "UnauthenticatedUser",
    "has_required_scope",
    "requires",
]

P = ParamSpec("P")
R = TypeVar("R")

_CONNECTION_NAMES = ("request", "websocket")


class AuthenticationError(Exception):
    """Raised by a backend for credentials that are present but wrong (a 400 by default)."""


class AuthCredentials:
    """What the connection may do: a list of scope names, such as ``"authenticated"``."""

    def __init__(self, scopes: Sequence[str] | None = None) -> None:
        self.scopes: list[str] = [] if scopes is None else list(scopes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.scopes!r})"


class BaseUser:
    """A user, as a backend describes one; subclass it with your own user's fields."""

    @property
    def is_authenticated(self) -> bool:
        """True for a user the backend recognised."""
        raise NotImplementedError

    @property
    def display_name(self) -> str:
        """A name to show."""
        raise NotImplementedError

    @property
    def identity(self) -> str:
        """What identifies the user (an id or a user name)."""
        raise NotImplementedError


class SimpleUser(BaseUser):
    """An authenticated user known by a user name."""

    def __init__(self, username: str) -> None:
        self.username = username

    @property
    def is_authenticated(self) -> bool:
        """Always True."""
        return True

    @property
    def display_name(self) -> str:
        """The user name."""
        return self.username

    @property
    def identity(self) -> str:
        """The user name."""
        return self.username

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.username!r})"


class UnauthenticatedUser(BaseUser):
    """Nobody: the user of a connection the backend did not recognise."""

    @property
    def is_authenticated(self) -> bool:
        """Always False."""
        return False

    @property
    def display_name(self) -> str:
        """An empty name."""
        return ""

    @property
    def identity(self) -> str:
        """An empty identity."""
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class AuthenticationBackend:
    """Recognises a connection's user; subclass it and implement ``authenticate``."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """The connection's credentials and user; None for an anonymous one.

        Raise ``AuthenticationError`` for credentials that are present but wrong.
        """
        raise NotImplementedError


def has_required_scope(conn: HTTPConnection, scopes: Sequence[str]) -> bool:
    """Tell whether the connection was granted every one of ``scopes``."""
    granted = conn.auth.scopes
    return all(scope in granted for scope in scopes)


def _connection_position(func: Callable[..., Any]) -> tuple[int, str]:
    """Where ``func`` takes the request or WebSocket: a parameter of that name, else the first
    (after ``self`` or ``cls``, for a method decorated in its class)."""
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        raise TypeError(f"@requires cannot read the parameters of {func!r}") from None
    for index, parameter in enumerate(parameters):
        if parameter.name in _CONNECTION_NAMES:
            return index, parameter.name
    positional = [
        (index, parameter.name)
        for index, parameter in enumerate(parameters)
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    ]
    if positional and positional[0][1] in ("self", "cls"):
        positional = positional[1:]
    if not positional:
        raise TypeError(
            f"@requires: {func.__qualname__} takes no request: a handler's first parameter "
            "(or one named 'request' or 'websocket') receives it"
        )
    return positional[0]


def requires(
    scopes: str | Sequence[str],
    status_code: int = 403,
    redirect: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let a handler run only for connections granted every one of ``scopes``.

    Otherwise an HTTP request gets ``HTTPException(status_code)``, or, with ``redirect``,
    a 303 to the route of that name with ``?next=`` the URL it asked for; a WebSocket is
    denied (``status_code``, where the server can send a response; a 403 elsewhere). The
    handler keeps its signature and stays sync or async.
    """
    needed = (scopes,) if isinstance(scopes, str) else tuple(scopes)
    if not all(isinstance(scope, str) for scope in needed):
        raise TypeError(f"@requires takes scope names (str): {scopes!r}")
    if isinstance(status_code, bool) or not isinstance(status_code, int):
        raise TypeError(f"@requires: status_code is an HTTP status, not {status_code!r}")

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        index, name = _connection_position(func)

        def connection(args: tuple[Any, ...], kwargs: dict[str, Any]) -> HTTPConnection:
            conn = kwargs[name] if name in kwargs else args[index] if index < len(args) else None
            if not isinstance(conn, HTTPConnection):
                raise TypeError(
                    f"@requires: {func.__qualname__} was called without a request or "
                    f"WebSocket as its {name!r} argument (got {type(conn).__name__})"
                )
            return conn

        def refusal(conn: HTTPConnection) -> RedirectResponse:
            if redirect is None or conn.scope["type"] != "http":
                raise HTTPException(status_code)
            query = urlencode({"next": str(conn.url)})
            return RedirectResponse(f"{conn.url_for(redirect)}?{query}", status_code=303)

        if is_async_callable(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                conn = connection(args, kwargs)
                if not has_required_scope(conn, needed):
                    return refusal(conn)
                return await func(*args, **kwargs)  # type: ignore[misc]

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(func)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            conn = connection(args, kwargs)
            if not has_required_scope(conn, needed):
                return refusal(conn)
            return func(*args, **kwargs)

        return cast(Callable[P, R], sync_wrapper)

    return decorator
