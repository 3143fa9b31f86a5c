"""Publish/subscribe for WebSockets and streams, in one process or across many.

``Broadcast("memory://")`` reaches the subscribers of this process; ``Broadcast(
"redis://host:6379/0")`` reaches those of every worker and machine sharing that Redis
(the extra ``microasgi[redis]``; asyncio only). Either way, the messages of a channel
reach this process's subscribers through one in-process fan-out, and each subscriber has
its own bounded queue: one that falls behind is dropped, never the publisher slowed.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType

import anyio
import anyio.lowlevel

from microasgi.broadcast._base import (
    Backend,
    BroadcastError,
    BroadcastUnavailable,
    Event,
    Message,
    SubscriberDropped,
)
from microasgi.broadcast._memory import MemoryBackend

__all__ = [
    "Broadcast",
    "BroadcastError",
    "BroadcastUnavailable",
    "Event",
    "Subscriber",
    "SubscriberDropped",
]

DEFAULT_MAX_QUEUE = 1000
DEFAULT_TIMEOUT = 10.0


class _Room:
    """The subscribers of one channel in this process, and the signal they wait on."""

    __slots__ = ("members", "signal")

    def __init__(self) -> None:
        self.members: dict[Subscriber, None] = {}
        # One signal for the whole room, made by the first subscriber that waits and set
        # once per message: not one per subscriber per message.
        self.signal: anyio.Event | None = None

    async def wait(self) -> None:
        """Wait for the next message (or the end)."""
        if self.signal is None:
            self.signal = anyio.Event()
        await self.signal.wait()

    def wake(self) -> None:
        """Wake every subscriber waiting."""
        signal, self.signal = self.signal, None
        if signal is not None:
            signal.set()


class Subscriber:
    """The events of one channel for one subscriber, in order: ``async for event in it``.

    Made by `Broadcast.subscribe`, for its ``async with`` block.

    Attributes:
        channel: the channel subscribed to.
        max_queue: how many messages it may fall behind before it is dropped.
        dropped: whether it was dropped for falling further behind.
    """

    __slots__ = (
        "__weakref__",
        "_ended",
        "_events",
        "_room",
        "_scope",
        "_started",
        "channel",
        "dropped",
        "max_queue",
    )

    _room: _Room  # set by the Broadcast that made it

    def __init__(self, channel: str, max_queue: int) -> None:
        self.channel = channel
        self.max_queue = max_queue
        self.dropped = False
        self._started = False  # messages before this were published before it subscribed
        self._ended = False
        self._events: deque[Event] = deque()
        # Wraps the subscriber's block, so that dropping it interrupts whatever it waits
        # on: a WebSocket send to a client that stopped reading, not only its next event.
        self._scope = anyio.CancelScope()

    def _start(self) -> None:
        self._started = True

    def _offer(self, event: Event) -> bool:
        """Queue ``event`` (once started); False when the queue is full."""
        if not self._started:
            return True
        if len(self._events) >= self.max_queue:
            return False
        self._events.append(event)
        return True

    def _end(self, *, dropped: bool) -> None:
        """No more events: the broadcast closed, or (``dropped``) this subscriber fell behind."""
        self._ended = True
        if dropped:
            self.dropped = True
            self._events.clear()
            self._scope.cancel()
        self._room.wake()

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Event:
        """The next event; the iteration ends when the broadcast closes."""
        # A ready event is returned without a trip through the event loop (a subscriber
        # that keeps up always has one at most), but a cancelled caller still stops here.
        await anyio.lowlevel.checkpoint_if_cancelled()
        while not self._events:
            if self.dropped:
                raise SubscriberDropped(self.channel, self.max_queue)
            if self._ended:
                raise StopAsyncIteration
            await self._room.wait()
        return self._events.popleft()


class Broadcast:
    """Channels to publish messages to and subscribe to: ``memory://`` or ``redis://``.

    Args:
        url: ``memory://`` (this process only) or ``redis://host:port/db`` (``rediss://``
            for TLS): every process given the same Redis shares the channels.
        max_queue: messages a subscriber may fall behind before it is dropped (raising
            `SubscriberDropped`); ``subscribe(max_queue=)`` overrides it for one.
        timeout: seconds ``publish`` and ``subscribe`` wait for Redis before raising
            `BroadcastUnavailable`.
    """

    def __init__(
        self,
        url: str,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        _check_max_queue(max_queue)
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self.url = url
        self.max_queue = max_queue
        self._backend = _backend_for(url, timeout)
        self._channels: dict[str, _Room] = {}
        self._exit: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> Broadcast:
        """Connect (to Redis: failing with `BroadcastUnavailable` if it cannot be reached)."""
        if self._exit is not None:
            raise RuntimeError("this Broadcast is already connected")
        async with contextlib.AsyncExitStack() as stack:
            # Unwound last first: stop the tasks, wait for them, then disconnect.
            stack.push_async_callback(self._backend.close)
            await self._backend.open(self._deliver, self._channels.keys)
            group = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(group.cancel_scope.cancel)
            self._backend.start(group)
            self._exit = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        """Disconnect; the iteration of every remaining subscriber ends."""
        exit_stack, self._exit = self._exit, None
        if exit_stack is None:
            return None
        for room in self._channels.values():
            for subscriber in room.members:
                subscriber._end(dropped=False)
        self._channels.clear()
        # The block's own exception is not the task group's: given to it, it would come
        # out wrapped in an ExceptionGroup. It propagates as it is once the tasks stopped.
        await exit_stack.aclose()
        return None

    async def publish(self, channel: str, message: str | bytes) -> None:
        """Send ``message`` to every current subscriber of ``channel``, in every process.

        Raises:
            BroadcastUnavailable: Redis cannot be reached (the message is not sent).
        """
        self._check_connected()
        if not isinstance(channel, str):
            raise TypeError(f"a channel is a str, not {type(channel).__name__}")
        if isinstance(message, bytearray | memoryview):
            message = bytes(message)
        elif not isinstance(message, str | bytes):
            raise TypeError(f"a message is str or bytes, not {type(message).__name__}")
        await self._backend.publish(channel, message)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, channel: str, *, max_queue: int | None = None
    ) -> AsyncIterator[Subscriber]:
        """Subscribe to ``channel`` for the ``async with`` block; iterate for its events.

        The subscriber gets every message published after this returns, in order. If it
        falls more than ``max_queue`` messages behind, it is unsubscribed, the block is
        cancelled wherever it waits, and `SubscriberDropped` is raised out of it.

        Raises:
            BroadcastUnavailable: Redis did not confirm the subscription in time.
            SubscriberDropped: this subscriber fell behind and was dropped.
        """
        self._check_connected()
        if max_queue is not None:
            _check_max_queue(max_queue)
        room = self._channels.get(channel)
        if room is None:
            room = self._channels[channel] = _Room()
        subscriber = Subscriber(channel, max_queue or self.max_queue)
        subscriber._room = room
        room.members[subscriber] = None
        try:
            await self._backend.listen(channel, subscriber._start)
            with subscriber._scope:
                yield subscriber
        finally:
            self._leave(subscriber)
        if subscriber.dropped:
            raise SubscriberDropped(channel, subscriber.max_queue)

    def _check_connected(self) -> None:
        if self._exit is None:
            raise RuntimeError(
                "this Broadcast is not connected: use `async with broadcast:` "
                "(in the app's lifespan) first"
            )

    def _deliver(self, channel: str, message: Message) -> None:
        """Queue one message for each subscriber of ``channel`` in this process."""
        room = self._channels.get(channel)
        if room is None:
            return
        event = Event(channel, message)
        behind = [subscriber for subscriber in room.members if not subscriber._offer(event)]
        room.wake()
        for subscriber in behind:
            subscriber._end(dropped=True)
            self._leave(subscriber)

    def _leave(self, subscriber: Subscriber) -> None:
        """Unsubscribe ``subscriber``; the last one of a channel lets the broker know."""
        subscriber._ended = True  # iterating it after its block ends, not waits
        subscriber._events.clear()
        room = self._channels.get(subscriber.channel)
        if room is None or room.members.pop(subscriber, False) is False:
            return
        if not room.members:
            del self._channels[subscriber.channel]
            self._backend.changed()


def _check_max_queue(max_queue: int) -> None:
    if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
        raise ValueError(f"max_queue must be a positive int, not {max_queue!r}")


def _backend_for(url: str, timeout: float) -> Backend:
    scheme, separator, _ = url.partition("://")
    scheme = scheme.lower() if separator else ""
    if scheme == "memory":
        return MemoryBackend()
    if scheme in ("redis", "rediss"):
        from microasgi.broadcast._redis import RedisBackend

        return RedisBackend(url, timeout)
    raise ValueError(f"unknown broadcast URL {url!r}: use memory:// or redis://host:port/db")
