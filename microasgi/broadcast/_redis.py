"""``redis://``: Redis pub/sub carries the messages between workers and machines.

Each Broadcast keeps ONE pub/sub connection, subscribed to the channels this process has
subscribers of, whose messages fan out in process; a small pool of connections publishes.
When Redis goes away, the connection is made again (with a bounded backoff) and every
channel subscribed again; what was published in between is lost. redis-py's asyncio
client runs on asyncio only.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection
from itertools import chain
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup
from yarl import URL

from microasgi._concurrency import on_asyncio
from microasgi.broadcast._base import BroadcastUnavailable, Deliver, Message, Start

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

logger = logging.getLogger("microasgi.broadcast")

PUBLISH_CONNECTIONS = 8  # publishes in flight at once per process; more wait for a connection
RECONNECT_FIRST = 0.05  # seconds before the first attempt to reach a lost Redis again
RECONNECT_MAX = 2.0  # ... doubling up to this
CLOSE_TIMEOUT = 5.0

# A str goes as its UTF-8, readable by any Redis client; bytes (and the rare str that
# starts with NUL) carry a two-byte marker, so each arrives as the type it was sent as.
TEXT = b"\x00t"
BINARY = b"\x00b"


def encode(message: Message) -> bytes:
    """The bytes that carry ``message`` through Redis."""
    if isinstance(message, str):
        data = message.encode()
        return TEXT + data if data.startswith(b"\x00") else data
    return BINARY + message


def decode(data: bytes) -> Message:
    """The message ``encode`` made ``data`` from (another client's: str if UTF-8)."""
    if data.startswith(BINARY):
        return data[len(BINARY) :]
    if data.startswith(TEXT):
        data = data[len(TEXT) :]
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


class RedisBackend:
    """Publishes to Redis, and listens to it on one connection for this process."""

    def __init__(self, url: str, timeout: float) -> None:
        try:
            from redis.exceptions import RedisError
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                "Broadcast('redis://...') needs the redis package: "
                "install it with: pip install 'microasgi[redis]'"
            ) from exc
        self._errors = (OSError, TimeoutError, RedisError)  # Redis did not answer
        self._url = url
        self._where = str(URL(url).with_user(None))  # for messages: no password
        self._timeout = timeout
        self._publisher: Redis | None = None
        self._listener: Redis | None = None
        self._deliver: Deliver | None = None
        self._wanted: Callable[[], Collection[str]] = frozenset
        self._changed: anyio.Event | None = None
        # The state of the current connection's subscriptions:
        self._subscribed: set[str] = set()  # channels it asked Redis for
        self._pending: dict[str, int] = {}  # (UN)SUBSCRIBEs Redis has not confirmed yet
        self._ready: set[str] = set()  # subscribed, and confirmed
        self._heard = False  # Redis answered on this connection
        self._first: PubSub | None = None  # the connection open() made, for start()
        # New subscribers, started where their first message can be told apart in the
        # stream: at their channel's confirmation, or at the answer to a PING sent after
        # they came (for a channel already subscribed), never with a message on its way.
        self._joining: dict[str, list[Start]] = {}
        self._unsent: list[tuple[str, Start]] = []
        self._pings: dict[bytes, list[tuple[str, Start]]] = {}
        self._pings_sent = 0

    async def open(self, deliver: Deliver, wanted: Callable[[], Collection[str]]) -> None:
        """Connect, failing with `BroadcastUnavailable` if Redis cannot be reached."""
        if not on_asyncio():
            raise RuntimeError(
                "Broadcast('redis://...') runs on asyncio only (redis-py's client is "
                "asyncio-only); on trio, use memory://"
            )
        from redis import exceptions
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        options: dict[str, Any] = {"socket_connect_timeout": self._timeout}
        options["socket_keepalive"] = True
        pool = BlockingConnectionPool.from_url(
            self._url,
            max_connections=PUBLISH_CONNECTIONS,
            timeout=self._timeout,
            socket_timeout=self._timeout,
            # Once, on a new connection: a pooled one is dead after Redis restarted. The
            # errors are named, or redis-py 5 does not retry at all.
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[exceptions.ConnectionError, exceptions.TimeoutError],
            **options,
        )
        self._publisher = Redis(connection_pool=pool)
        # No retries under the listener: a lost connection is started over in _run.
        self._listener = Redis.from_url(self._url, retry=Retry(NoBackoff(), 0), **options)
        self._deliver = deliver
        self._wanted = wanted
        self._changed = anyio.Event()
        self._first = await self._connect()

    def start(self, group: TaskGroup) -> None:
        """Listen to Redis in a task of ``group``."""
        pubsub, self._first = self._first, None
        group.start_soon(self._run, pubsub)

    async def close(self) -> None:
        """Close both clients and their connections."""
        if self._first is not None:
            await _discard(self._first)
            self._first = None
        clients = [client for client in (self._publisher, self._listener) if client is not None]
        self._publisher = self._listener = None
        self._deliver = self._changed = None
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            for client in clients:
                await client.aclose(close_connection_pool=True)

    async def publish(self, channel: str, message: Message) -> None:
        """PUBLISH ``message``; raise `BroadcastUnavailable` if Redis cannot take it."""
        assert self._publisher is not None
        try:
            with anyio.fail_after(self._timeout):
                await self._publisher.publish(channel, encode(message))
        except self._errors as exc:
            raise BroadcastUnavailable(f"cannot publish to Redis at {self._where}: {exc}") from exc

    async def listen(self, channel: str, start: Start) -> None:
        """Call ``start`` where the next message for ``channel`` was published after now."""
        started = anyio.Event()

        def begin() -> None:
            start()
            started.set()

        if channel in self._ready:
            self._unsent.append((channel, begin))
        else:
            self._joining.setdefault(channel, []).append(begin)
        self.changed()
        try:
            with anyio.move_on_after(self._timeout):
                await started.wait()
                return
        finally:
            if not started.is_set():
                self._forget(channel, begin)
        raise BroadcastUnavailable(
            f"Redis at {self._where} did not confirm a subscription to {channel!r} "
            f"within {self._timeout} s"
        )

    def _forget(self, channel: str, begin: Start) -> None:
        """A subscriber gave up waiting: drop it from every list it may be in."""
        with contextlib.suppress(ValueError):
            self._joining.get(channel, []).remove(begin)
        for entries in [self._unsent, *self._pings.values()]:
            with contextlib.suppress(ValueError):
                entries.remove((channel, begin))

    def changed(self) -> None:
        """Wake the task that sends SUBSCRIBE and UNSUBSCRIBE."""
        if self._changed is not None:
            self._changed.set()

    async def _connect(self) -> PubSub:
        assert self._listener is not None
        pubsub = self._listener.pubsub()
        try:
            with anyio.fail_after(self._timeout):
                await pubsub.connect()  # type: ignore[no-untyped-call]
        except self._errors as exc:
            await _discard(pubsub)
            raise BroadcastUnavailable(f"cannot reach Redis at {self._where}: {exc}") from exc
        return pubsub

    async def _run(self, pubsub: PubSub | None) -> None:
        """Listen until cancelled: when the connection is lost, make it again."""
        delay = RECONNECT_FIRST
        while True:
            if pubsub is None:
                try:
                    pubsub = await self._connect()
                except BroadcastUnavailable as exc:
                    logger.debug("broadcast: %s", exc)
                    await anyio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX)
                    continue
                logger.warning("broadcast: connected to Redis at %s again", self._where)
            self._heard = False
            try:
                await self._session(pubsub)
            except Exception as exc:  # Redis, the network or redis-py failed: start over
                reason = _reason(exc)
                logger.warning(
                    "broadcast: lost Redis at %s (%s), reconnecting", self._where, reason
                )
            finally:
                self._subscribed.clear()
                self._pending.clear()
                self._ready.clear()
                # Those waiting for a PING now wait for their channel's subscription.
                for channel, begin in [*self._unsent, *chain(*self._pings.values())]:
                    self._joining.setdefault(channel, []).append(begin)
                self._unsent, self._pings = [], {}
                await _discard(pubsub)
                pubsub = None
            # A connection that worked resets the backoff; one refused at once does not.
            delay = RECONNECT_FIRST if self._heard else min(delay * 2, RECONNECT_MAX)
            await anyio.sleep(delay)

    async def _session(self, pubsub: PubSub) -> None:
        """Subscribe to what is wanted, and deliver what arrives, until the connection fails."""
        self.changed()  # subscribe again to every channel that has subscribers
        async with anyio.create_task_group() as group:
            group.start_soon(self._subscribe_forever, pubsub)
            await self._read_forever(pubsub)

    async def _subscribe_forever(self, pubsub: PubSub) -> None:
        """Bring the connection's subscriptions in line with the channels that have subscribers."""
        while self._changed is not None:
            await self._changed.wait()
            self._changed = anyio.Event()
            wanted = set(self._wanted())
            new, gone = wanted - self._subscribed, self._subscribed - wanted
            self._subscribed = wanted
            self._ready -= gone
            for channel in new | gone:
                self._pending[channel] = self._pending.get(channel, 0) + 1
            for channel in [channel for channel in self._joining if channel not in wanted]:
                del self._joining[channel]
            if new:
                await pubsub.subscribe(*new)
            if gone:
                await pubsub.unsubscribe(*gone)
            if self._unsent:
                self._pings_sent += 1
                token = f"microasgi-broadcast-{self._pings_sent}"
                self._pings[token.encode()], self._unsent = self._unsent, []
                await pubsub.ping(token)

    async def _read_forever(self, pubsub: PubSub) -> None:
        """Handle what Redis sends, one message at a time."""
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is not None and self._handle(message):
                # Let the subscribers take it before the next: a burst read in one go
                # must not overflow the queues of subscribers that keep up.
                await anyio.lowlevel.checkpoint()

    def _handle(self, message: dict[str, Any]) -> bool:
        """Deliver a message (and say so), or note a confirmation or a PING's answer."""
        self._heard = True
        kind, channel = message["type"], message["channel"]
        if isinstance(channel, bytes):
            channel = channel.decode(errors="replace")
        if kind == "message" and self._deliver is not None:
            self._deliver(channel, decode(message["data"]))
            return True
        if kind in ("subscribe", "unsubscribe"):
            self._confirmed(channel)
        elif kind == "pong":
            for _, begin in self._pings.pop(message["data"], []):
                begin()
        return False

    def _confirmed(self, channel: str) -> None:
        """Redis confirmed a command for ``channel``; when the last, the channel is ready."""
        left = self._pending.get(channel, 0) - 1
        if left < 0:
            return  # not asked for by this connection
        if left:
            self._pending[channel] = left
            return
        del self._pending[channel]
        if channel in self._subscribed:
            self._ready.add(channel)
            for begin in self._joining.pop(channel, []):
                begin()


def _reason(exc: BaseException) -> str:
    """What went wrong, out of the task group's wrapping."""
    inner: tuple[BaseException, ...] = getattr(exc, "exceptions", ())
    while len(inner) == 1:
        exc = inner[0]
        inner = getattr(exc, "exceptions", ())
    return f"{type(exc).__name__}: {exc}"


async def _discard(pubsub: PubSub) -> None:
    """Close a pub/sub connection, whatever state it is in, without waiting long."""
    with anyio.move_on_after(CLOSE_TIMEOUT, shield=True), contextlib.suppress(Exception):
        await pubsub.aclose()
