"""``if_ready``: awaiting something only if it needs no wait, on asyncio and trio.

``request.is_disconnected()`` and the HTTP/2 body drain look at ``receive`` this way:
what the server holds is taken, a wait is cut short, and nothing else is swallowed.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from microasgi._concurrency import if_ready, on_asyncio

pytestmark = pytest.mark.anyio


async def test_a_value_that_needs_no_wait_is_returned() -> None:
    async def ready() -> str:
        return "message"

    assert await if_ready(ready) == "message"


@pytest.mark.parametrize("wait", ["an event", "a checkpoint"])
async def test_a_wait_is_cut_short(wait: str) -> None:
    # Even a checkpoint: whatever gives the event loop a turn is a wait.
    finished = False

    async def waits() -> str:
        nonlocal finished
        await (anyio.Event().wait() if wait == "an event" else anyio.lowlevel.checkpoint())
        finished = True
        return "too late"

    with anyio.fail_after(5):
        assert await if_ready(waits) is None
    assert not finished


async def test_a_timeout_error_of_its_own_is_raised() -> None:
    async def fails() -> str:
        raise TimeoutError("the server's own")

    with pytest.raises(TimeoutError, match="the server's own"):
        await if_ready(fails)


async def test_a_cancel_from_outside_is_not_taken_for_its_own() -> None:
    reached = False
    with anyio.fail_after(5), anyio.CancelScope() as outer:
        outer.cancel()
        await if_ready(anyio.Event().wait)
        reached = True
    assert outer.cancelled_caught
    assert not reached


async def test_the_loop_is_told_apart(anyio_backend: str) -> None:
    assert on_asyncio() == (anyio_backend == "asyncio")
