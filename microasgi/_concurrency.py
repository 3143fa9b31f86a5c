"""Calling user code that may be sync or async, iterating sync code off the loop, a task
run beside a block, and awaiting something only if it is ready."""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.abc

T = TypeVar("T")


def on_asyncio() -> bool:
    """Whether the running event loop is asyncio's (else: trio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def if_ready(func: Callable[[], Awaitable[T]]) -> T | None:
    """``await func()`` if it completes without waiting (a server's ``receive`` with a
    message already queued), else cancel it at once: None. A checkpoint is a wait too."""
    if sys.version_info >= (3, 11) and on_asyncio():
        # asyncio's own timeout cancels with a plain Task.cancel(); anyio's cancel scope
        # also formats the task's repr into its reason, several times the cost of the rest.
        timeout = asyncio.timeout(0)
        try:
            async with timeout:
                return await func()
        except TimeoutError:
            if timeout.expired():
                return None
            raise
    with anyio.CancelScope() as scope:
        # Not scope.cancel(): trio's channels (hypercorn -k trio) check for a cancel
        # before they look for a message, so a scope cancelled up front never sees one.
        # A deadline takes effect only once the task would wait.
        scope.deadline = anyio.current_time()
        return await func()
    return None


def is_async_callable(obj: Any) -> bool:
    """Tell whether calling ``obj`` returns an awaitable (async functions and objects,
    and classes whose instances are awaitable: class-based views)."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    if isinstance(obj, type):
        return hasattr(obj, "__await__")
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004 - async callable objects
    )


async def run_callable(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``func(*args, **kwargs)``: await it if async, else run it in a worker thread.

    A sync decorator around an async function (``functools.wraps``) is called on the loop
    and its result awaited; a sync function that returns an awaitable has it awaited too.
    """
    if is_async_callable(func):
        return await func(*args, **kwargs)
    if is_async_callable(inspect.unwrap(func)):
        # A sync decorator around an async function: called on the loop, its coroutine
        # awaited (trio refuses to run a function that returns one in a thread).
        result = func(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result
    result = await run_in_thread(func, *args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


async def run_in_thread(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking ``func(*args, **kwargs)`` in a worker thread."""
    if kwargs:
        return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))
    return await anyio.to_thread.run_sync(func, *args)


async def iterate_held(items: Iterable[T]) -> AsyncIterator[T]:
    """Iterate items already in memory (a list, a tuple): nothing blocks, so no thread."""
    for item in items:
        yield item


async def iterate_in_thread(iterator: Iterator[T]) -> AsyncIterator[T]:
    """Iterate a blocking iterator in worker threads, one item at a time."""
    sentinel: Any = object()
    while True:
        item = await anyio.to_thread.run_sync(next, iterator, sentinel)
        if item is sentinel:
            return
        yield item


class Beside:
    """``async with Beside(func, *args):`` runs ``func(*args)`` in a task of its own while
    the block runs, then cancels it and waits for it to end.

    ``func`` must not raise (it keeps its own failure): the block's errors come out as
    themselves, never grouped. On asyncio the task is asyncio's own: anyio's task group
    costs several times as much there, and a stream (an event stream, a download) runs
    every one of its responses inside one. On trio a nursery is as cheap as a task.
    """

    __slots__ = ("_args", "_func", "_group", "_task")

    def __init__(self, func: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        self._func = func
        self._args = args
        self._task: asyncio.Task[None] | None = None
        self._group: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> None:
        func, args = self._func, self._args
        # The task holds what it needs: kept here, they would last as long as the block.
        del self._func, self._args
        if not on_asyncio():  # trio
            self._group = anyio.create_task_group()
            await self._group.__aenter__()
            self._group.start_soon(func, *args)
            return
        self._task = asyncio.ensure_future(func(*args))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._group is not None:
            self._group.cancel_scope.cancel()
            await self._group.__aexit__(exc_type, exc, tb)
            return
        assert self._task is not None
        self._task.cancel()
        # Unlike awaiting the task, asyncio.wait takes no cancel of the caller's for its own.
        await asyncio.wait((self._task,))
