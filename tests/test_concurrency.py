"""``run_until``: a body raced against a watcher, on asyncio and trio."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from functools import partial

import anyio
import pytest
import sniffio

from microasgi._concurrency import run_until

pytestmark = pytest.mark.anyio


async def forever() -> None:
    await anyio.sleep_forever()


async def test_the_body_ending_first_cancels_the_watcher() -> None:
    events: list[str] = []

    async def body() -> None:
        await anyio.sleep(0.01)
        events.append("body done")

    async def until() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            events.append("watcher stopped")

    with anyio.fail_after(5):
        await run_until(body(), until)
    assert events == ["body done", "watcher stopped"]


async def test_the_watcher_ending_first_cancels_the_body_and_leaves_the_task_usable() -> None:
    events: list[str] = []

    async def body() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            events.append("body stopped")

    with anyio.fail_after(5):
        await run_until(body(), partial(anyio.sleep, 0.01))
        # Nothing of the cancel is left over for the caller's next wait.
        await anyio.sleep(0.01)
    assert events == ["body stopped"]


async def test_a_body_waiting_in_its_own_task_group_and_deadline_is_stopped_cleanly() -> None:
    events: list[str] = []

    async def child() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            events.append("child stopped")

    async def body() -> None:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                group.start_soon(child)
                await anyio.sleep_forever()

    with anyio.fail_after(5):
        await run_until(body(), partial(anyio.sleep, 0.01))
        await anyio.sleep(0.01)
    assert events == ["child stopped"]


async def test_a_cancelled_body_finishes_its_shielded_cleanup_and_its_thread_call() -> None:
    events: list[str] = []

    def blocking() -> None:
        time.sleep(0.1)
        events.append("thread done")

    async def body() -> None:
        try:
            await anyio.to_thread.run_sync(blocking)  # the cancel comes in here
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.02)
                events.append("cleanup done")

    with anyio.fail_after(5):
        await run_until(body(), partial(anyio.sleep, 0.02))
    assert events == ["thread done", "cleanup done"]


async def test_a_body_that_swallows_the_cancel_leaves_the_task_usable() -> None:
    async def body() -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            pass

    with anyio.fail_after(5):
        await run_until(body(), partial(anyio.sleep, 0.01))
        # A later deadline still works: no cancel of ours is left on the count.
        with anyio.move_on_after(0.01) as later:
            await anyio.sleep_forever()
    assert later.cancelled_caught


async def test_a_cancel_from_outside_still_cancels() -> None:
    with anyio.fail_after(5), anyio.move_on_after(0.02) as outside:
        await run_until(forever(), forever)
    assert outside.cancelled_caught


async def test_a_cancel_from_outside_at_the_moment_the_watcher_ends_still_cancels() -> None:
    done = anyio.Event()

    async def until() -> None:
        await done.wait()

    with anyio.fail_after(5):
        with anyio.CancelScope() as outside:
            async with anyio.create_task_group() as group:

                async def both_at_once() -> None:
                    await anyio.sleep(0.01)
                    done.set()  # the watcher ends ...
                    outside.cancel()  # ... and the caller is cancelled, in one step

                group.start_soon(both_at_once)
                await run_until(forever(), until)
                await anyio.sleep_forever()  # never reached if the outside cancel got through
        assert outside.cancelled_caught


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_asyncio_timeout_around_a_body_that_swallowed_the_cancel_still_fires() -> None:
    async def body() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await anyio.sleep_forever()

    async def guarded() -> None:
        await run_until(body(), partial(anyio.sleep, 0.01))
        await asyncio.sleep(5)

    # asyncio.timeout (3.11+) counts cancels: one of ours left on the count turns its
    # TimeoutError into a bare CancelledError.
    if sys.version_info >= (3, 11):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await guarded()
    else:
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.05):
                await guarded()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_native_cancel_as_the_body_ends_still_cancels() -> None:
    task = asyncio.current_task()
    assert task is not None

    async def body() -> None:
        await asyncio.sleep(0)  # the watcher starts
        task.cancel()  # as a server would, just as the body ends

    with anyio.fail_after(5), pytest.raises(asyncio.CancelledError):
        await run_until(body(), forever)
    if sys.version_info >= (3, 11):
        task.uncancel()


async def test_errors_propagate_as_themselves_and_stop_the_other_side() -> None:
    stopped: list[str] = []

    async def failing_body() -> None:
        await anyio.sleep(0.01)
        raise LookupError("from the body")

    async def watcher() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            stopped.append("watcher")

    with anyio.fail_after(5), pytest.raises(LookupError, match="from the body"):
        await run_until(failing_body(), watcher)
    assert stopped == ["watcher"]

    async def body() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            stopped.append("body")

    async def failing_watcher() -> None:
        await anyio.sleep(0.01)
        raise LookupError("from the watcher")

    with anyio.fail_after(5), pytest.raises(LookupError, match="from the watcher"):
        await run_until(body(), failing_watcher)
    assert stopped == ["watcher", "body"]


async def test_a_body_that_never_waits_starts_no_watcher_on_asyncio() -> None:
    started = False

    async def body() -> None:
        pass

    async def until() -> None:
        nonlocal started
        started = True

    await run_until(body(), until)
    await anyio.sleep(0.01)
    # On asyncio the watcher starts only once the body waits; trio's task group starts it
    # at once. Either way the body ran to its end.
    lazy = sniffio.current_async_library() == "asyncio"
    assert started is not lazy
