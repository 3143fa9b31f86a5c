"""``memory://``: the subscribers of one process, no broker."""

from __future__ import annotations

from collections.abc import Callable, Collection

import anyio.lowlevel
from anyio.abc import TaskGroup

from microasgi.broadcast._base import Deliver, Message, Start


class MemoryBackend:
    """Hands each message straight to this process's subscribers."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def open(self, deliver: Deliver, wanted: Callable[[], Collection[str]]) -> None:
        """Nothing to connect to: remember where messages go."""
        self._deliver = deliver

    def start(self, group: TaskGroup) -> None:
        """No task: publishing delivers."""

    async def close(self) -> None:
        """Forget the subscribers."""
        self._deliver = None

    async def publish(self, channel: str, message: Message) -> None:
        """Queue ``message`` for every subscriber of ``channel``, then let them run."""
        if self._deliver is not None:
            self._deliver(channel, message)
        await anyio.lowlevel.checkpoint()

    async def listen(self, channel: str, start: Start) -> None:
        """Every message published from now on: start at once."""
        start()

    def changed(self) -> None:
        """Nothing to tell a broker."""
