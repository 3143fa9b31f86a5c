"""What every backend shares: the event, the errors, and the backend's contract."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from anyio.abc import TaskGroup

Message = str | bytes
Deliver = Callable[[str, Message], None]
Start = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Event:
    """One message as a subscriber receives it.

    Attributes:
        channel: the channel it was published to.
        message: what was published, ``str`` or ``bytes`` as it was published.
    """

    channel: str
    message: Message


class BroadcastError(Exception):
    """Base class of the errors of `microasgi.broadcast`."""


class SubscriberDropped(BroadcastError):
    """A subscriber fell more than ``max_queue`` messages behind and was unsubscribed."""

    def __init__(self, channel: str, max_queue: int) -> None:
        super().__init__(
            f"subscriber of {channel!r} dropped: it fell more than {max_queue} messages behind"
        )
        self.channel = channel
        self.max_queue = max_queue


class BroadcastUnavailable(BroadcastError):
    """The broker (Redis) cannot be reached: nothing was published or subscribed."""


class Backend(Protocol):
    """Carries messages between the subscribers of every process that shares it."""

    async def open(self, deliver: Deliver, wanted: Callable[[], Collection[str]]) -> None:
        """Connect; messages for the ``wanted`` channels will go to ``deliver``."""

    def start(self, group: TaskGroup) -> None:
        """Start the tasks that carry messages in, in ``group`` (their owner cancels them)."""

    async def close(self) -> None:
        """Disconnect, once the tasks have stopped."""

    async def publish(self, channel: str, message: Message) -> None:
        """Send ``message`` to every subscriber of ``channel``, in every process."""

    async def listen(self, channel: str, start: Start) -> None:
        """Call ``start`` (the new subscriber's first delivery) where the messages
        published to ``channel`` after this call begin, and return."""

    def changed(self) -> None:
        """The set of wanted channels changed (a channel lost its last subscriber)."""
