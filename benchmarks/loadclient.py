"""Clients that hold thousands of connections from one asyncio process, cheaply.

Each connection is an ``asyncio.Protocol`` speaking just enough of the protocol: the
WebSocket handshake (checked, Sec-WebSocket-Accept included) and frames, or an HTTP/1.1
GET whose streamed answer is read and counted. No task per connection: what arrives is
handled in the protocol's callbacks, so the client's own cost stays small beside the
server's, and thousands of sockets fit in one process (``raise_fd_limit``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import resource
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

HOST = "127.0.0.1"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OPEN_TIMEOUT = 30.0
# Connections opened at once: the server's listen backlog must not overflow.
OPEN_IN_PARALLEL = 100
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA

C = TypeVar("C", bound="_Connection")


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


class _Connection(asyncio.Protocol):
    """One client connection: opened once the server's answer head arrived."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost = False
        self._head = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the request."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request())

    def request(self) -> bytes:
        """The request's bytes."""
        raise NotImplementedError

    def check_head(self, head: bytes) -> str | None:
        """What is wrong with the answer's head (None when it is right)."""
        raise NotImplementedError

    def body_received(self, data: bytes) -> None:
        """Bytes after the head."""
        raise NotImplementedError

    def data_received(self, data: bytes) -> None:
        """Split the head from what follows it."""
        if self.opened.done():
            self.body_received(data)
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            return
        head, rest = bytes(self._head[:end]), bytes(self._head[end + 4 :])
        self._head.clear()
        error = self.check_head(head)
        if error is not None:
            self.opened.set_exception(ConnectionError(error))
            self.close()
            return
        self.opened.set_result(None)
        if rest:
            self.body_received(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        """Note that the connection is gone."""
        self.lost = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"connection lost before the answer: {exc}"))

    def close(self) -> None:
        """Leave: close the socket."""
        if self.transport is not None:
            self.transport.close()


class WebSocketClient(_Connection):
    """A WebSocket client: counts text messages, and tells ``on_text`` of each."""

    def __init__(self, path: str, port: int) -> None:
        super().__init__()
        self.path = path
        self.port = port
        self.key = base64.b64encode(os.urandom(16))
        self.texts = 0
        self.on_text: Callable[[WebSocketClient, str], None] | None = None
        self._next: asyncio.Future[str] | None = None
        self._frames = bytearray()

    def request(self) -> bytes:
        """The opening handshake."""
        return (
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            ).encode()
            + b"Sec-WebSocket-Key: "
            + self.key
            + b"\r\n\r\n"
        )

    def check_head(self, head: bytes) -> str | None:
        """The server must switch protocols and prove it read our key."""
        lines = head.split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.1 101"):
            return f"handshake refused: {lines[0]!r}"
        accept = base64.b64encode(hashlib.sha1(self.key + _GUID).digest())
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(b":") for x in lines)}
        if headers.get(b"sec-websocket-accept") != accept:
            return "wrong Sec-WebSocket-Accept"
        return None

    def body_received(self, data: bytes) -> None:
        """Parse the server's frames (unmasked, unfragmented: small messages)."""
        frames = self._frames
        frames += data
        while len(frames) >= 2:
            opcode, length, start = frames[0] & 0x0F, frames[1] & 0x7F, 2
            if length == 126:
                if len(frames) < 4:
                    return
                (length,) = struct.unpack_from("!H", frames, 2)
                start = 4
            elif length == 127:
                if len(frames) < 10:
                    return
                (length,) = struct.unpack_from("!Q", frames, 2)
                start = 10
            if len(frames) < start + length:
                return
            payload = bytes(frames[start : start + length])
            del frames[: start + length]
            self._frame(opcode, payload)

    def _frame(self, opcode: int, payload: bytes) -> None:
        if opcode == TEXT:
            self.texts += 1
            text = payload.decode()
            if self._next is not None and not self._next.done():
                self._next.set_result(text)
            if self.on_text is not None:
                self.on_text(self, text)
        elif opcode == PING:
            self._write(PONG, payload)
        elif opcode == CLOSE:
            self.close()

    def _write(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        assert len(payload) < 126  # one length byte: the short messages sent here
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    def send_text(self, text: str) -> None:
        """Send a (short) text message."""
        self._write(TEXT, text.encode())

    async def echo(self, text: str) -> str:
        """Send ``text`` and wait for the next text message."""
        self._next = asyncio.get_running_loop().create_future()
        self.send_text(text)
        return await self._next

    def leave(self) -> None:
        """Send a close frame (1000), then close the socket."""
        if self.transport is not None and not self.transport.is_closing():
            self._write(CLOSE, struct.pack("!H", 1000))
        self.close()


class StreamClient(_Connection):
    """An HTTP/1.1 GET whose streamed answer is read as it comes and counted."""

    def __init__(self, path: str, port: int) -> None:
        super().__init__()
        self.path = path
        self.port = port
        self.received = 0

    def request(self) -> bytes:
        """The GET."""
        return f"GET {self.path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n\r\n".encode()

    def check_head(self, head: bytes) -> str | None:
        """A 200."""
        status = head.split(b"\r\n", 1)[0]
        return None if status.startswith(b"HTTP/1.1 200") else f"answered {status!r}"

    def body_received(self, data: bytes) -> None:
        """Count the bytes (chunked framing included)."""
        self.received += len(data)


async def _open(make: Callable[[], C], port: int) -> C:
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(make, HOST, port)
    await connection.opened
    return connection


async def open_many(make: Callable[[], C], port: int, count: int) -> list[C]:
    """Open ``count`` connections (at most OPEN_IN_PARALLEL at once); each one answered."""
    limit = asyncio.Semaphore(OPEN_IN_PARALLEL)

    async def one() -> C:
        async with limit:
            return await _open(make, port)

    return await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), OPEN_TIMEOUT)


def open_websockets(port: int, path: str, count: int) -> Awaitable[list[WebSocketClient]]:
    """Open ``count`` WebSockets to ``path``."""
    return open_many(lambda: WebSocketClient(path, port), port, count)


def open_streams(port: int, path: str, count: int) -> Awaitable[list[StreamClient]]:
    """Open ``count`` streamed GETs of ``path``."""
    return open_many(lambda: StreamClient(path, port), port, count)


async def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """A one-off GET (``Connection: close``): status and body."""

    async def fetch() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
            )
            data = await reader.read()
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if b"transfer-encoding: chunked" in head.lower():
            body = _unchunk(body)
        return int(head.split(b" ", 2)[1]), body

    return await asyncio.wait_for(fetch(), timeout)


def _unchunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if not size:
            break
        out += body[:size]
        body = body[size + 2 :]
    return bytes(out)


async def echo_all(clients: Sequence[WebSocketClient], text: str) -> None:
    """One echo on every connection at once; each must come back unchanged."""
    answers = await asyncio.gather(*(client.echo(text) for client in clients))
    wrong = sum(answer != text for answer in answers)
    if wrong:
        raise RuntimeError(f"{wrong} of {len(clients)} echoes came back changed")


class Arrivals:
    """How long after its publication one message reached every listener."""

    def __init__(self, listeners: Sequence[WebSocketClient]) -> None:
        self.expected = len(listeners)
        self.text = ""
        self.count = 0
        self.sent_at = 0.0
        self.all_in: asyncio.Future[float] | None = None
        for listener in listeners:
            listener.on_text = self._arrived

    def _arrived(self, client: WebSocketClient, text: str) -> None:
        if text != self.text or self.all_in is None:
            return
        self.count += 1
        if self.count == self.expected and not self.all_in.done():
            self.all_in.set_result(time.perf_counter() - self.sent_at)

    async def publish(self, publisher: WebSocketClient, text: str, timeout: float) -> float:
        """Send ``text`` through ``publisher``; seconds until the last listener had it."""
        self.text, self.count = text, 0
        self.all_in = asyncio.get_running_loop().create_future()
        self.sent_at = time.perf_counter()
        publisher.send_text(text)
        return await asyncio.wait_for(self.all_in, timeout)
