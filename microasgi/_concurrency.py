"""Calling user code that may be sync or async, and iterating sync code off the loop."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


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

    A sync function that returns an awaitable (a sync decorator around an async function)
    has it awaited too.
    """
    if is_async_callable(func):
        return await func(*args, **kwargs)
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
