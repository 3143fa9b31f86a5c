"""``Exchange.until_disconnect``: a streaming body stopped when its client leaves, on
asyncio and trio, without breaking what anyio promises to the code inside it.

The client's disconnect comes, as ASGI 2.3 servers report it, through ``receive``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
import pytest
from asgi_harness import http_scope

from microasgi._types import Message, Send
from microasgi.exchange import Exchange

pytestmark = pytest.mark.anyio

Body = Callable[[Send], Awaitable[None]]


def an_exchange(leaves_after: float | None) -> Exchange:
    """An exchange for a GET whose client leaves after ``leaves_after`` seconds (None: never)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if leaves_after is None:
            await anyio.sleep_forever()
        else:
            await anyio.sleep(leaves_after)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        pass

    exchange = Exchange(http_scope("/", spec_version="2.3"), receive, send)
    return exchange


async def run(body: Body, leaves_after: float | None) -> Exchange:
    exchange = an_exchange(leaves_after)
    await exchange.receive()  # the request's body, read before the response
    with anyio.fail_after(5):
        await exchange.until_disconnect(body)
    return exchange


async def test_a_body_that_ends_first_stops_the_watcher() -> None:
    events: list[str] = []

    async def body(send: Send) -> None:
        await anyio.sleep(0.01)
        events.append("body done")

    exchange = await run(body, None)
    assert events == ["body done"]
    assert not exchange.disconnected


async def test_the_client_leaving_stops_the_body_and_leaves_the_task_usable() -> None:
    events: list[str] = []

    async def body(send: Send) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            events.append("body stopped")

    exchange = await run(body, 0.01)
    await anyio.sleep(0.01)  # nothing of the cancel is left for the caller's next wait
    assert events == ["body stopped"]
    assert exchange.disconnected


async def test_a_body_in_its_own_task_group_and_deadline_is_stopped_cleanly() -> None:
    events: list[str] = []

    async def child() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            events.append("child stopped")

    async def body(send: Send) -> None:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                group.start_soon(child)
                await anyio.sleep_forever()

    await run(body, 0.01)
    assert events == ["child stopped"]


async def test_a_stopped_body_finishes_its_shielded_cleanup_and_its_thread_call() -> None:
    events: list[str] = []

    def blocking() -> None:
        time.sleep(0.1)
        events.append("thread done")

    async def body(send: Send) -> None:
        try:
            await anyio.to_thread.run_sync(blocking)  # the client leaves during this
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.02)
                events.append("cleanup done")

    await run(body, 0.02)
    assert events == ["thread done", "cleanup done"]


async def test_a_body_swallowing_the_cancel_leaves_the_task_usable() -> None:
    async def body(send: Send) -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            pass

    await run(body, 0.01)
    with anyio.move_on_after(0.01) as later:  # a later deadline still works
        await anyio.sleep_forever()
    assert later.cancelled_caught


async def test_a_cancel_from_outside_still_cancels() -> None:
    async def body(send: Send) -> None:
        await anyio.sleep_forever()

    exchange = an_exchange(None)
    with anyio.fail_after(5), anyio.move_on_after(0.02) as outside:
        await exchange.until_disconnect(body)
    assert outside.cancelled_caught


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_asyncio_timeout_around_a_stopped_body_still_fires() -> None:
    async def body(send: Send) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await anyio.sleep_forever()

    async def guarded() -> None:
        await run(body, 0.01)
        await asyncio.sleep(5)

    # asyncio.timeout (3.11+) counts cancels: one of ours left over would turn its
    # TimeoutError into a bare CancelledError.
    if sys.version_info >= (3, 11):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await guarded()
    else:
        with pytest.raises(TimeoutError), anyio.fail_after(0.05):
            await guarded()


async def test_a_body_error_propagates_as_itself() -> None:
    async def body(send: Send) -> None:
        await anyio.sleep(0.01)
        raise LookupError("from the body")

    with pytest.raises(LookupError, match="from the body"):
        await run(body, None)


async def test_the_servers_receive_failing_stops_the_body_with_its_error() -> None:
    async def receive() -> Message:
        await anyio.sleep(0.01)
        raise ConnectionResetError("the server's receive broke")

    async def send(message: Message) -> None:
        pass

    stopped: list[str] = []

    async def body(send: Send) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            stopped.append("body")

    exchange = Exchange(http_scope("/", spec_version="2.3"), receive, send)
    with anyio.fail_after(5), pytest.raises(ConnectionResetError):
        await exchange.until_disconnect(body)
    assert stopped == ["body"]


async def test_nothing_is_left_running_after_the_body() -> None:
    async def body(send: Send) -> None:
        await anyio.lowlevel.checkpoint()

    before = len(anyio.get_running_tasks())
    for leaves_after in (None, 0.0):
        await run(body, leaves_after)
    await anyio.lowlevel.checkpoint()
    assert len(anyio.get_running_tasks()) == before


async def test_a_get_body_the_stream_never_read_still_ends_for_a_late_reader() -> None:
    # The relay takes the GET's one (empty, last) body message while the stream runs; a
    # reader that asks for the body afterwards gets its end, once, and nothing else.
    exchange = an_exchange(0.05)
    seen: list[Message] = []

    async def body(send: Send) -> None:
        await anyio.sleep(0.01)  # the relay reads the body's end meanwhile
        seen.append(await exchange.receive())
        seen.append({"body": await exchange.read_body()})
        await anyio.sleep_forever()

    with anyio.fail_after(5):
        await exchange.until_disconnect(body)
    assert seen == [{"type": "http.request", "body": b"", "more_body": False}, {"body": b""}]
    assert exchange.body_ended
    assert exchange.disconnected
