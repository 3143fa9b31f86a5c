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


@contextlib.asynccontextmanager
async def running_beside(func: Callable[[], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    """Run ``func()`` beside the body of the ``async with``; cancel and await it on exit.

    On asyncio a bare task is a fraction of the cost of an anyio task group (a streaming
    response pays it once per request); elsewhere (trio) a task group does the job. Either
    way the task has an owner that cancels it and waits for it.
    """
    if not _on_asyncio():
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
        return
    task = asyncio.ensure_future(func())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio (or no loop at all)
        return False
    return True
