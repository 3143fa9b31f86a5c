"""Signed cookie sessions: ``SessionMiddleware`` loads ``request.session``, and saves it.

The cookie holds the session itself (not a key to data kept on the server), signed so
that a client can read it but not change it:

    base64url(JSON) "." unix-time "." base64url(HMAC-SHA256(key, base64url(JSON) "." unix-time))

The HMAC key is derived from the secret for this one purpose, so the same secret used
elsewhere in an app never signs something a session cookie would accept. A cookie that
does not verify under any of the keys, is older than ``max_age``, or is too long to be
one of ours is an empty session: a client never turns a bad cookie into an error.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal, NoReturn

from microasgi._types import ASGIApp, Message, RawHeaders, Receive, Scope, Send
from microasgi.middleware._headers import add_vary

logger = logging.getLogger("microasgi")

# Browsers keep at most this many bytes of a cookie's name and value, and silently
# drop a longer one: the session is then lost at the next request.
BROWSER_COOKIE_LIMIT = 4096
# Longer cookies are not ours (we would never have written one a browser kept): they are
# dropped before any work is spent on them.
READ_LIMIT = 2 * BROWSER_COOKIE_LIMIT
_PURPOSE = b"microasgi.sessions.SessionMiddleware"
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 6265 token
_ATTRIBUTE = re.compile(r"[^;\x00-\x1f\x7f]*")  # what fits in a cookie attribute's value
_SAME_SITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
_EXPIRED = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
_TIMESTAMP_DIGITS = 12
_IMMUTABLE = (str, int, float, bool, type(None))  # what JSON gives back that cannot change


class Session(dict[str, Any]):
    """The session: a dict that notes whether the app read it, and whether it wrote to it.

    A session the app never touched cannot have changed: its cookie is left alone, and
    the response does not vary with it. One the app only read can have changed only
    inside a list or dict it holds (``session["cart"].append(...)``): then it is compared
    with what the cookie held, so such a change is saved too.
    """

    __slots__ = ("accessed", "modified")

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        super().__init__(data or ())
        self.accessed = self.modified = False

    def _write(self) -> None:
        self.accessed = self.modified = True

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        self.accessed = True
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self.accessed = True
        return super().__iter__()

    def __len__(self) -> int:
        self.accessed = True
        return super().__len__()

    def keys(self) -> Any:
        """The keys (a live view)."""
        self.accessed = True
        return super().keys()

    def values(self) -> Any:
        """The values (a live view)."""
        self.accessed = True
        return super().values()

    def items(self) -> Any:
        """The items (a live view)."""
        self.accessed = True
        return super().items()

    def copy(self) -> dict[str, Any]:
        """A plain dict copy."""
        self.accessed = True
        return dict.copy(self)

    def __setitem__(self, key: str, value: Any) -> None:
        self._write()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._write()
        super().__delitem__(key)

    def clear(self) -> None:
        """Empty the session (its cookie is removed)."""
        self._write()
        super().clear()

    def pop(self, key: str, *default: Any) -> Any:
        """Remove ``key`` and return its value (or ``default``)."""
        self._write()
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last item."""
        self._write()
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, set to ``default`` first if absent."""
        self._write()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Set several keys."""
        self._write()
        super().update(*args, **kwargs)

    def __ior__(self, other: Any) -> Session:  # type: ignore[override,misc]
        self._write()
        super().update(other)
        return self

    def may_have_changed(self) -> bool:
        """Tell whether the app wrote to it, or read a value it could change in place."""
        if self.modified:
            return True
        return self.accessed and any(
            not isinstance(value, _IMMUTABLE) for value in dict.values(self)
        )


class ReadOnlySession(Session):
    """A WebSocket's session: it can be read, but a handshake's answer sets no cookie."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(
            "a WebSocket's session is read-only (its handshake cannot set a cookie): "
            "change the session in an HTTP request"
        )

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse


# The codecs, made once: json.dumps with options builds an encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))
_DECODER = json.JSONDecoder()
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64encode(data: bytes) -> bytes:
    """Unpadded URL-safe base64 (binascii directly: base64's wrappers cost more than the work)."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=")


def _b64decode(data: bytes) -> bytes:
    """Decode unpadded URL-safe base64 (only ever a signed payload: ours)."""
    padded = data.translate(_FROM_URLSAFE) + b"=" * (-len(data) % 4)
    return binascii.a2b_base64(padded)


def _sign(mac: hmac.HMAC, message: bytes) -> bytes:
    """The base64url HMAC of ``message`` under the keyed ``mac`` (left as it was)."""
    copy = mac.copy()
    copy.update(message)
    return _b64encode(copy.digest())


def _secret_keys(secret_key: str | bytes | Sequence[str | bytes]) -> list[hmac.HMAC]:
    """The keyed HMACs for ``secret_key`` (one secret, or a list: the first signs).

    Each is keyed once and copied per signature: keying is most of an HMAC's cost here.
    """
    if isinstance(secret_key, (str, bytes)):
        secrets: list[Any] = [secret_key]
    elif isinstance(secret_key, Sequence):
        secrets = list(secret_key)
    else:
        raise ValueError(f"secret_key is a str, bytes, or a list of them: {secret_key!r}")
    if not secrets:
        raise ValueError("secret_key: give a secret, or a list of them (the first signs)")
    keys = []
    for secret in secrets:
        if not isinstance(secret, (str, bytes)) or not secret:
            raise ValueError(f"secret_key: each secret is a non-empty str or bytes, not {secret!r}")
        raw = secret.encode("utf-8") if isinstance(secret, str) else secret
        keys.append(hmac.new(hmac.digest(raw, _PURPOSE, "sha256"), digestmod=hashlib.sha256))
    return keys


def _attribute(name: str, value: str) -> str:
    """Check a cookie attribute's value: latin-1, without ';' or control characters."""
    if not isinstance(value, str) or not _ATTRIBUTE.fullmatch(value) or not value.isascii():
        raise ValueError(f"{name} must be ASCII, without ';' or control characters: {value!r}")
    return value


class SessionMiddleware:
    """Give each request a ``request.session`` dict, kept in a signed, timestamped cookie."""

    def __init__(
        self,
        app: ASGIApp,
        secret_key: str | bytes | Sequence[str | bytes],
        session_cookie: str = "session",
        max_age: int | None = 14 * 24 * 60 * 60,  # 14 days, in seconds
        path: str = "/",
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = False,
        domain: str | None = None,
    ) -> None:
        """Wrap ``app``; the options are Starlette's, checked here (a typo fails at startup)."""
        self.app = app
        self._keys = _secret_keys(secret_key)
        if not isinstance(session_cookie, str) or not _COOKIE_NAME.fullmatch(session_cookie):
            raise ValueError(f"session_cookie must be a cookie name (a token): {session_cookie!r}")
        if max_age is not None and (
            isinstance(max_age, bool) or not isinstance(max_age, int) or max_age <= 0
        ):
            raise ValueError(f"max_age is a number of seconds above 0, or None: {max_age!r}")
        if not _attribute("path", path).startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        flag = _SAME_SITE.get(same_site.lower()) if isinstance(same_site, str) else None
        if flag is None:
            raise ValueError(f"same_site must be 'lax', 'strict' or 'none': {same_site!r}")
        if flag == "None" and not https_only:
            # Browsers refuse such a cookie: every session would be lost, silently.
            raise ValueError("same_site='none' needs https_only=True (browsers require Secure)")
        self.session_cookie = session_cookie
        self.max_age = max_age
        attributes = f"; Path={path}"
        if domain is not None:
            attributes += f"; Domain={_attribute('domain', domain)}"
        flags = f"; HttpOnly; SameSite={flag}" + ("; Secure" if https_only else "")
        self._name = session_cookie.encode("ascii")
        lasting = (f"; Max-Age={max_age}" if max_age else "") + attributes + flags
        self._lasting = lasting.encode("latin-1")
        self._removal = f"{session_cookie}=; {_EXPIRED}{attributes}{flags}".encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Load the session into ``scope["session"]``; save it as the response starts."""
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        data, payload, signer = self._load(scope["headers"])
        if kind == "websocket":
            scope["session"] = ReadOnlySession(data)
            await self.app(scope, receive, send)
            return
        session = scope["session"] = Session(data)
        # A cookie signed by an older key is signed again with the current one.
        stale = signer > 0
        failed = False

        async def send_with_cookie(message: Message) -> None:
            nonlocal failed
            if message["type"] == "http.response.start" and (session.accessed or stale):
                if failed:  # the app's error response, after a session we could not save
                    await send(message)
                    return
                try:
                    cookie = self._cookie(session, payload, stale)
                except (TypeError, ValueError) as exc:
                    failed = True
                    raise TypeError(f"the session holds a value JSON cannot encode: {exc}") from exc
                headers: RawHeaders = list(message.get("headers", ()))
                if session.accessed:  # what this response shows may depend on the session
                    add_vary(headers, b"Cookie")
                if cookie is not None:
                    headers.append((b"set-cookie", cookie))
                # A new message: the app may send the same headers list again.
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _load(self, headers: Iterable[tuple[bytes, bytes]]) -> tuple[dict[str, Any], bytes, int]:
        """The session the request's cookie holds, its JSON, and the index of the key that
        signed it; ``({}, b"", -1)`` when there is no valid one."""
        for value in self._cookie_values(headers):
            loaded = self._verify(value)
            if loaded is not None:
                return loaded
        return {}, b"", -1

    def _cookie_values(self, headers: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
        """Every value the request sent for our cookie, in order (several paths may match)."""
        values = []
        name = self._name
        for key, header in headers:
            if key == b"cookie" and name in header:
                for chunk in header.split(b";"):
                    cookie_name, sep, value = chunk.partition(b"=")
                    if sep and cookie_name.strip() == name:
                        values.append(value.strip().strip(b'"'))
        return values

    def _verify(self, value: bytes) -> tuple[dict[str, Any], bytes, int] | None:
        """The session in one cookie value, if it is ours, intact and fresh; else None."""
        if len(value) > READ_LIMIT:
            return None
        signed, _, signature = value.rpartition(b".")
        encoded, _, timestamp = signed.partition(b".")
        if not encoded or not (timestamp.isdigit() and len(timestamp) <= _TIMESTAMP_DIGITS):
            return None
        index = self._signer(signed, signature)
        if index is None:
            return None
        if self.max_age is not None and time.time() - int(timestamp) > self.max_age:
            return None
        try:
            payload = _b64decode(encoded)
            data = _DECODER.decode(payload.decode("utf-8"))
        except (binascii.Error, ValueError, RecursionError):
            return None  # signed by us, but not a session: another use of the same secret?
        if not isinstance(data, dict):
            return None
        return data, payload, index

    def _signer(self, signed: bytes, signature: bytes) -> int | None:
        """The index of the key whose signature of ``signed`` is ``signature``, if any."""
        for index, mac in enumerate(self._keys):
            if hmac.compare_digest(_sign(mac, signed), signature):
                return index
        return None

    def _cookie(self, session: Session, payload: bytes, stale: bool) -> bytes | None:
        """The ``Set-Cookie`` value that saves ``session``; None when it has not changed."""
        if not dict.__len__(session):
            return self._removal if payload else None
        if not (stale or session.may_have_changed()):
            return None
        new = _ENCODER.encode(session).encode("ascii")
        if new == payload and not stale:
            return None
        signed = _b64encode(new) + b"." + str(int(time.time())).encode("ascii")
        value = signed + b"." + _sign(self._keys[0], signed)
        size = len(self._name) + 1 + len(value)
        if size > BROWSER_COOKIE_LIMIT:
            logger.warning(
                "the session cookie %r is %d bytes: browsers drop cookies over %d bytes, "
                "so this session will be lost; keep less in the session",
                self.session_cookie,
                size,
                BROWSER_COOKIE_LIMIT,
            )
        return self._name + b"=" + value + self._lasting
