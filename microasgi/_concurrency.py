"""Calling user code that may be sync or async, and iterating sync code off the loop."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
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
