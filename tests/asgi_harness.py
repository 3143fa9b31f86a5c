"""The tests' hand-made ASGI server: scopes, a scripted receive, a recording send.

``run(app, scope, messages)`` plays the server's part without a socket and returns
every message the app sent. A receive whose script is used up waits forever unless it
is told what to answer next, so a test bounded in time fails, instead of hanging or
passing, when the app asks the client for more than the test gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import anyio

from microasgi._types import ASGIApp, Message, RawHeaders, Receive, Scope
from microasgi.testing import ServerChannel

Header = tuple[str, str] | tuple[bytes, bytes]

CLIENT = ("127.0.0.1", 50000)
SERVER = ("testserver", 80)
NO_EXTENSIONS: Mapping[str, Any] = MappingProxyType({})
CONNECT: Message = {"type": "websocket.connect"}
DISCONNECT: Message = {"type": "http.disconnect"}


def raw_headers(headers: Iterable[Header]) -> RawHeaders:
    """Headers as a server passes them: ``str`` pairs encoded (names lower-cased, latin-1),
    ``bytes`` pairs as given."""
    raw: RawHeaders = []
    for name, value in headers:
        if isinstance(name, str) and isinstance(value, str):
            raw.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        elif isinstance(name, bytes) and isinstance(value, bytes):
            raw.append((name, value))
        else:
            raise TypeError(f"a header is two str or two bytes, not {name!r}: {value!r}")
    return raw


def _host_first(host: str | None, headers: Iterable[Header]) -> RawHeaders:
    return ([(b"host", host.encode("latin-1"))] if host is not None else []) + raw_headers(headers)


def http_scope(
    path: str = "/",
    method: str = "GET",
    *,
    headers: Iterable[Header] = (),
    query_string: bytes = b"",
    root_path: str = "",
    raw_path: bytes | None = None,
    extensions: Mapping[str, Any] | None = NO_EXTENSIONS,
    spec_version: str = "2.4",
    host: str | None = "testserver",
    **fields: Any,
) -> Scope:
    """An http scope as a server builds it for a client of ``host`` (None: no Host header).

    ``extensions=None`` leaves the key out, as uvicorn does; ``fields`` set any other key.
    """
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode() if raw_path is None else raw_path,
        "root_path": root_path,
        "query_string": query_string,
        "headers": _host_first(host, headers),
        "client": CLIENT,
        "server": SERVER,
    }
    if extensions is not None:
        scope["extensions"] = dict(extensions)
    scope.update(fields)
    return scope


def websocket_scope(
    path: str = "/ws",
    *,
    headers: Iterable[Header] = (),
    subprotocols: Iterable[str] = (),
    extensions: Mapping[str, Any] | None = NO_EXTENSIONS,
    host: str | None = "testserver",
    **fields: Any,
) -> Scope:
    """A websocket scope as a server builds it (``extensions`` empty unless given)."""
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": _host_first(host, headers),
        "client": CLIENT,
        "server": SERVER,
        "subprotocols": list(subprotocols),
    }
    if extensions is not None:
        scope["extensions"] = dict(extensions)
    scope.update(fields)
    return scope


def request_body(*chunks: bytes) -> list[Message]:
    """The ``http.request`` messages carrying ``chunks``; only the last ends the body."""
    return [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]


def scripted(
    messages: Iterable[Message] = (),
    *,
    then: Message | None = None,
    after: anyio.Event | None = None,
    log: list[str] | None = None,
) -> Receive:
    """A ``receive`` returning ``messages`` in order, then ``then`` on every later call.

    With ``after``, ``then`` waits until that event is set; with no ``then``, receive
    waits forever. ``log``, when given, gets each received message's type.
    """
    # The script is handed over as a server would (on trio, each receive checks for a
    # cancel and yields), so a test sees what an app sees under a real server.
    channel = ServerChannel()
    for message in messages:
        channel.put_nowait(message)
    channel.end()

    async def receive() -> Message:
        try:
            message = await channel.receive()
        except anyio.EndOfStream:
            if then is None:
                await anyio.sleep_forever()
                raise AssertionError("unreachable") from None
            if after is not None:
                await after.wait()
            message = dict(then)
        if log is not None:
            log.append(message["type"])
        return message

    return receive


def disconnect_after(seconds: float) -> Receive:
    """A ``receive`` whose client leaves after ``seconds``: the body is never read."""

    async def receive() -> Message:
        await anyio.sleep(seconds)
        return {"type": "http.disconnect"}

    return receive


class Recorder:
    """A recording ``send``: keeps every message the app sent, in order.

    ``finished`` is set when the last body message of an http response goes out;
    ``log``, when given, gets each sent message's type as it goes.
    """

    def __init__(self, log: list[str] | None = None) -> None:
        self.messages: list[Message] = []
        self.finished = anyio.Event()
        self.log = log

    async def __call__(self, message: Message) -> None:
        """Record ``message``."""
        self.messages.append(message)
        if self.log is not None:
            self.log.append(message["type"])
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.finished.set()


def what_a_client_sends(scope: Scope) -> list[Message]:
    """A plain client's part: an empty request body, or a websocket's connect."""
    if scope["type"] == "http":
        return request_body(b"")
    if scope["type"] == "websocket":
        return [CONNECT]
    return []


async def run(
    app: ASGIApp,
    scope: Scope,
    messages: Iterable[Message] | None = None,
    *,
    then: Message | None = None,
    after_response: bool = False,
    within: float = 5.0,
    raises: type[BaseException] | None = None,
) -> list[Message]:
    """Run ``app`` on ``scope`` with ``messages`` from the client; return what it sent.

    ``messages`` defaults to ``what_a_client_sends(scope)``. Once they are used up,
    receive answers ``then`` (with ``after_response``: once the response has ended),
    or waits forever. The whole run fails after ``within`` seconds. With ``raises``, the
    app must let that error out (as an unexpected error does, after its answer).
    """
    send = Recorder()
    script = what_a_client_sends(scope) if messages is None else messages
    receive = scripted(script, then=then, after=send.finished if after_response else None)
    with anyio.fail_after(within):
        if raises is None:
            await app(scope, receive, send)
        else:
            try:
                await app(scope, receive, send)
            except raises:
                pass
            else:
                raise AssertionError(f"the app did not let {raises.__name__} out")
    return send.messages


def start_of(sent: list[Message]) -> Message:
    """The one ``http.response.start`` among ``sent`` (fails unless exactly one)."""
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    return starts[0]


def body_of(sent: list[Message]) -> bytes:
    """The response body: every ``http.response.body`` message's bytes, joined."""
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@dataclass
class LifespanRun:
    """What an app did when a server drove its lifespan: its replies, the state it
    filled, and the error it raised (after a failure report, it must raise one)."""

    replies: list[Message]
    state: dict[str, Any]
    error: Exception | None

    def summary(self) -> list[str]:
        """Each reply's type, with its message when it has one."""
        return [r["type"] + (f":{r['message']}" if r.get("message") else "") for r in self.replies]


async def drive_lifespan(
    app: ASGIApp, *, shutdown: bool = True, state: dict[str, Any] | None = None
) -> LifespanRun:
    """Play the server's part of the lifespan protocol: startup, then (if ``shutdown``)
    shutdown once startup was answered, with ``state`` as the scope's (a fresh dict by
    default). Checks that the call ends at once by raising after a failure report, and
    returns normally after a complete shutdown."""
    incoming = [{"type": "lifespan.startup"}]
    if shutdown:
        incoming.append({"type": "lifespan.shutdown"})
    replies: list[Message] = []
    state = {} if state is None else state
    started = anyio.Event()

    async def receive() -> Message:
        if not incoming:
            await anyio.sleep_forever()  # no shutdown coming: the test expects a failure
        message = incoming.pop(0)
        if message["type"] == "lifespan.shutdown":
            await started.wait()
        return message

    async def send(message: Message) -> None:
        replies.append(message)
        if message["type"].startswith("lifespan.startup"):
            started.set()

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    error: Exception | None = None
    with anyio.fail_after(5):
        try:
            await app(scope, receive, send)
        except Exception as exc:
            error = exc
    failed = [r for r in replies if r["type"].endswith(".failed")]
    assert (error is not None) == bool(failed), (replies, error)
    return LifespanRun(replies, state, error)
