"""Work to do after the response is sent: ``BackgroundTask`` and ``BackgroundTasks``.

Give either as ``background=`` to any response. The tasks run once the body has gone
out, in the order they were added: an async function is awaited, a sync one runs in a
worker thread. A task that fails stops the ones after it, and its error propagates like
any other; the response is already out, so the client does not see it (no 500), the
server's log does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ParamSpec

from microasgi._concurrency import run_callable

__all__ = ["BackgroundTask", "BackgroundTasks"]

P = ParamSpec("P")


class BackgroundTask:
    """One call to make after the response: ``BackgroundTask(func, *args, **kwargs)``."""

    __slots__ = ("args", "func", "kwargs")

    def __init__(self, func: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs

    async def __call__(self) -> None:
        """Make the call (a sync function in a worker thread)."""
        await run_callable(self.func, *self.args, **self.kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self.func, '__qualname__', self.func)!r})"


class BackgroundTasks:
    """Calls to make after the response, in order: ``tasks.add_task(func, *args)``."""

    __slots__ = ("tasks",)

    def __init__(self, tasks: Iterable[BackgroundTask] | None = None) -> None:
        self.tasks = list(tasks or ())

    def add_task(self, func: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Add ``func(*args, **kwargs)`` after the tasks already added."""
        self.tasks.append(BackgroundTask(func, *args, **kwargs))

    async def __call__(self) -> None:
        """Run every task in order; one that fails ends the run with its error."""
        for task in self.tasks:
            await task()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.tasks!r})"
