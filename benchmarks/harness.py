"""Drive an ASGI app in-process, as a server would, with as little overhead of our own as possible.

Every request gets a shallow copy of a prebuilt scope (a server builds a fresh top-level dict per
request; the nested values are shared, as granian does). ``receive`` hands out prebuilt messages;
once they are exhausted it blocks until the response is complete and then reports a disconnect,
which is what uvicorn does, so frameworks that listen for a disconnect behave as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# uvicorn's values: spec 2.3 means "listen for http.disconnect", which Starlette then does.
ASGI_INFO = {"version": "3.0", "spec_version": "2.3"}
_HTTP_DISCONNECT: Message = {"type": "http.disconnect"}
_WS_DISCONNECT: Message = {"type": "websocket.disconnect", "code": 1000}
_FINAL_TYPES = frozenset({"websocket.close", "websocket.http.response.body"})


class Unavailable(Exception):
    """A framework or one of its features is missing: the scenario is reported, never faked."""


class Exchange:
    """One request's receive/send pair over prebuilt incoming messages."""

    __slots__ = ("_disconnect", "_done", "_i", "_incoming", "_waiter", "sent")

    def __init__(self, incoming: Sequence[Message], disconnect: Message) -> None:
        self._incoming = incoming
        self._disconnect = disconnect
        self._i = 0
        self._done = False
        self._waiter: asyncio.Future[None] | None = None
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        """The next prebuilt message; after the last, wait for the response, then disconnect."""
        i = self._i
        if i < len(self._incoming):
            self._i = i + 1
            return self._incoming[i]
        if not self._done:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._disconnect

    async def send(self, message: Message) -> None:
        """Record an outgoing message; note when the response is complete."""
        self.sent.append(message)
        kind = message["type"]
        if (kind == "http.response.body" and not message.get("more_body", False)) or (
            kind in _FINAL_TYPES
        ):
            self._done = True
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)


@dataclass(frozen=True)
class Answer:
    """What the client saw: status (or WebSocket events), headers and the assembled body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    ws_texts: list[str] = field(default_factory=list)
    ws_close_code: int | None = None
    accepted: bool = False


def assemble(sent: Sequence[Message]) -> Answer:
    """Fold the messages an app sent into one Answer, failing loudly on protocol misuse."""
    status = 0
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []
    texts: list[str] = []
    close_code: int | None = None
    accepted = False
    finished = False
    for message in sent:
        kind = message["type"]
        if finished:
            raise AssertionError(f"message after the end of the response: {kind}")
        if kind == "http.response.start":
            if status:
                raise AssertionError("two http.response.start messages")
            status = int(message["status"])
            headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", [])]
        elif kind == "http.response.body":
            if not status:
                raise AssertionError("body before http.response.start")
            chunks.append(bytes(message.get("body", b"")))
            finished = not message.get("more_body", False)
        elif kind == "websocket.accept":
            accepted = True
            status = 101
        elif kind == "websocket.send":
            text = message.get("text")
            if text is None:
                raise AssertionError("expected a text frame, got bytes")
            texts.append(text)
        elif kind == "websocket.close":
            close_code = int(message.get("code", 1000))
            finished = True
        else:
            raise AssertionError(f"unexpected message type {kind!r}")
    return Answer(status, headers, b"".join(chunks), texts, close_code, accepted)


@dataclass(frozen=True)
class Request:
    """A prebuilt request: its scope and the messages the server will hand to ``receive``."""

    scope: Scope
    incoming: tuple[Message, ...]
    # When given, each request of a batch goes to the next of these paths in turn, on
    # from where the last batch stopped: URLs a framework has not seen lately, as real
    # traffic's are, so a cache of looked-up paths does not stand in for its router.
    paths: tuple[str, ...] = ()

    @property
    def disconnect(self) -> Message:
        """The message that ends this connection."""
        return _WS_DISCONNECT if self.scope["type"] == "websocket" else _HTTP_DISCONNECT


async def call_once(app: ASGIApp, request: Request) -> Answer:
    """Run one request and return what the client saw."""
    exchange = Exchange(request.incoming, request.disconnect)
    await app(dict(request.scope), exchange.receive, exchange.send)
    return assemble(exchange.sent)


@dataclass(frozen=True)
class Batch:
    """One timed batch: wall-clock and process CPU time, and the last request's messages."""

    wall_ns: int
    cpu_ns: int
    last: list[Message]


async def run_batch(app: ASGIApp, request: Request, n: int) -> Batch:
    """Run ``n`` requests back to back and time them."""
    proto = request.scope
    incoming = request.incoming
    disconnect = request.disconnect
    exchange = Exchange(incoming, disconnect)
    paths = request.paths
    clock, cpu_clock = time.perf_counter_ns, time.process_time_ns
    start, cpu_start = clock(), cpu_clock()
    if paths:
        for _ in range(n):
            scope = dict(proto)
            scope["path"] = path = paths[next(_turns) % len(paths)]
            scope["raw_path"] = path.encode()
            exchange = Exchange(incoming, disconnect)
            await app(scope, exchange.receive, exchange.send)
    else:
        for _ in range(n):
            exchange = Exchange(incoming, disconnect)
            await app(dict(proto), exchange.receive, exchange.send)
    # CPU time of every thread of the process: other processes' load does not inflate it.
    cpu = cpu_clock() - cpu_start
    return Batch(clock() - start, cpu, exchange.sent)


_turns = itertools.count()  # where a Request's ``paths`` go on from, batch after batch

MIN_BATCH = 10  # fewer requests and cold-start effects would dominate a batch


async def calibrate(app: ASGIApp, request: Request, target_ns: int) -> int:
    """Pick a batch size so that one batch of this app takes about ``target_ns`` of CPU."""
    await run_batch(app, request, 3)  # warm caches first
    n = 1
    while True:
        # The least of three tries: one preempted try must not shrink the batch.
        elapsed = min([(await run_batch(app, request, n)).cpu_ns for _ in range(3)])
        if elapsed >= target_ns // 4 or n >= 1 << 20:
            per = max(elapsed / n, 1.0)
            return max(MIN_BATCH, int(target_ns / per))
        n *= 2


async def settle(app: ASGIApp, request: Request) -> None:
    """Collect garbage so one app's garbage is not billed to the next; then warm up again."""
    gc.collect()
    await run_batch(app, request, 1)


class Lifespan:
    """Run an app's lifespan startup, keep it alive, and shut it down at the end."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        scope: Scope = {"type": "lifespan", "asgi": ASGI_INFO, "state": {}}
        try:
            await self._app(scope, self._inbox.get, self._outbox.put)
        except Exception:
            # Like uvicorn's lifespan="auto": an app without lifespan support still serves.
            await self._outbox.put({"type": "lifespan.unsupported"})

    async def startup(self) -> None:
        """Send startup and wait for the app's answer (failure is an error)."""
        self._task = asyncio.create_task(self._run())
        await self._inbox.put({"type": "lifespan.startup"})
        done_or_answer = asyncio.ensure_future(self._outbox.get())
        await asyncio.wait({done_or_answer, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not done_or_answer.done():
            done_or_answer.cancel()
            return  # returned without answering: no lifespan support
        message = done_or_answer.result()
        if message["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"lifespan startup failed: {message.get('message')}")

    async def shutdown(self) -> None:
        """Send shutdown and wait for the app's lifespan to end (bounded)."""
        task = self._task
        if task is None or task.done():
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=5)
        except asyncio.TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
