"""Calling user code that may be sync or async, and iterating sync code off the loop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


def is_async_callable(obj: Any) -> bool:
    """Tell whether calling ``obj`` returns an awaitable (async functions and objects)."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004 - async callable objects
    )


async def run_callable(func: Callable[[], Any]) -> Any:
    """Call ``func``: await it if async, else run it in a worker thread."""
    if is_async_callable(func):
        return await func()
    result = await anyio.to_thread.run_sync(func)
    if isinstance(result, Awaitable):
        result = await result
    return result


async def iterate_in_thread(iterator: Iterator[T]) -> AsyncIterator[T]:
    """Iterate a blocking iterator in worker threads, one item at a time."""
    sentinel: Any = object()
    while True:
        item = await anyio.to_thread.run_sync(next, iterator, sentinel)
        if item is sentinel:
            return
        yield item


def running_beside(
    func: Callable[[], Coroutine[Any, Any, None]],
) -> contextlib.AbstractAsyncContextManager[None]:
    """Run ``func()`` beside the body of the ``async with``; cancel and await it on exit.

    On asyncio a bare task is a fraction of the cost of an anyio task group (a streaming
    response pays it once per request); elsewhere (trio) a task group does the job. Either
    way the task has an owner that cancels it and waits for it.
    """
    return _TaskBeside(func) if _on_asyncio() else _group_beside(func)


class _TaskBeside:
    """``running_beside`` on asyncio: a class, as a generator-based manager costs 3 us more."""

    __slots__ = ("_func", "_task")

    def __init__(self, func: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._func = func
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        self._task = asyncio.ensure_future(self._func())

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def _group_beside(func: Callable[[], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    failure: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(func)
        try:
            yield
        except Exception as exc:  # raised below, outside the group: not an ExceptionGroup
            failure = exc
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio (or no loop at all)
        return False
    return True
