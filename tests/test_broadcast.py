"""Broadcast's promises, held by memory:// (asyncio and trio) and by a real Redis alike.

Each test is the story of subscribers in one app: who gets which message, in what order,
what happens to one that cannot keep up, and what is left once they are gone.
"""

from __future__ import annotations

import gc
import tracemalloc
import uuid
import weakref

import anyio
import anyio.lowlevel
import pytest
from anyio.abc import TaskStatus
from redis_server import RedisServer

from microasgi.broadcast import Broadcast, Event, Subscriber, SubscriberDropped

pytestmark = pytest.mark.anyio

# redis-py's client is asyncio-only: Redis runs on asyncio (trio's refusal has its test).
FLAVOURS = [("memory", "asyncio"), ("memory", "trio"), ("redis", "asyncio")]


@pytest.fixture(params=FLAVOURS, ids=["-".join(f) for f in FLAVOURS])
def flavour(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(flavour: tuple[str, str]) -> str:
    return flavour[1]


@pytest.fixture
def url(flavour: tuple[str, str], request: pytest.FixtureRequest) -> str:
    if flavour[0] == "memory":
        return "memory://"
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


def channel() -> str:
    """A channel no other test uses (they share one Redis)."""
    return f"test:{uuid.uuid4().hex}"


async def take(subscriber: Subscriber, count: int) -> list[str | bytes]:
    """The next ``count`` messages of ``subscriber`` (5 s at most)."""
    messages: list[str | bytes] = []
    with anyio.fail_after(5):
        async for event in subscriber:
            messages.append(event.message)
            if len(messages) == count:
                break
    return messages


async def subscribers_in_redis(url: str, name: str) -> int:
    """How many connections Redis has subscribed to ``name``."""
    from redis.asyncio import Redis

    async with Redis.from_url(url) as client:
        [(_, count)] = await client.pubsub_numsub(name)
    return int(count)


async def wait_unsubscribed_in_redis(url: str, name: str) -> None:
    """Unsubscribing from Redis happens in the background: wait for it (bounded)."""
    if not url.startswith("redis"):
        return
    for _ in range(200):
        if await subscribers_in_redis(url, name) == 0:
            return
        await anyio.sleep(0.025)
    raise AssertionError(f"Redis still has a subscriber to {name}")


async def never_reads(
    broadcast: Broadcast,
    room: str,
    dropped: list[SubscriberDropped],
    *,
    task_status: TaskStatus[None],
) -> None:
    """A subscriber that never reads (a WebSocket client that stopped reading): it is
    dropped, its block interrupted wherever it waits."""
    try:
        async with broadcast.subscribe(room):
            task_status.started()
            await anyio.sleep_forever()
    except SubscriberDropped as exc:
        dropped.append(exc)


async def test_every_subscriber_gets_every_message_in_order(url: str) -> None:
    room, other = channel(), channel()
    async with (
        Broadcast(url) as broadcast,
        broadcast.subscribe(room) as ann,
        broadcast.subscribe(room) as bob,
        broadcast.subscribe(other) as cat,
    ):
        for n in range(50):
            await broadcast.publish(room, f"message {n}")
        await broadcast.publish(room, b"\x00\xffbytes stay bytes")
        await broadcast.publish(other, "only for cat")
        expected = [f"message {n}" for n in range(50)] + [b"\x00\xffbytes stay bytes"]
        assert await take(ann, 51) == expected
        assert await take(bob, 51) == expected
        assert await take(cat, 1) == ["only for cat"]
        await broadcast.publish(room, "last")
        event = await ann.__anext__()
        assert event == Event(room, "last")
        assert (event.channel, event.message) == (room, "last")


async def test_two_broadcasts_on_the_same_url_share_the_channel(url: str) -> None:
    # Two workers of one app: with Redis they hear each other; in memory, each is alone.
    room = channel()
    async with (
        Broadcast(url) as first,
        Broadcast(url) as second,
        first.subscribe(room) as here,
        second.subscribe(room) as there,
    ):
        await second.publish(room, "from the second")
        await first.publish(room, "from the first")
        heard_here = await take(here, 1 if url == "memory://" else 2)
        heard_there = await take(there, 1 if url == "memory://" else 2)
    if url == "memory://":
        assert (heard_here, heard_there) == (["from the first"], ["from the second"])
    else:
        assert heard_here == heard_there == ["from the second", "from the first"]


async def test_a_subscriber_hears_only_what_was_published_after_it_subscribed(url: str) -> None:
    room = channel()
    async with Broadcast(url) as broadcast:
        await broadcast.publish(room, "before anyone")
        async with broadcast.subscribe(room) as early:
            await broadcast.publish(room, "one")
            async with broadcast.subscribe(room) as late:
                await broadcast.publish(room, "two")
                assert await take(late, 1) == ["two"]
            assert await take(early, 2) == ["one", "two"]


async def test_a_subscriber_that_falls_behind_is_dropped_and_the_others_get_everything(
    url: str,
) -> None:
    room = channel()
    got: list[str | bytes] = []
    dropped: list[SubscriberDropped] = []
    async with Broadcast(url, max_queue=5) as broadcast:

        async def reader(*, task_status: TaskStatus[None]) -> None:
            async with broadcast.subscribe(room) as subscriber:
                task_status.started()
                got.extend(await take(subscriber, 30))

        async with anyio.create_task_group() as group:
            await group.start(reader)
            await group.start(never_reads, broadcast, room, dropped)
            with anyio.fail_after(5):  # the publisher never waits on the slow one
                for n in range(30):
                    await broadcast.publish(room, str(n))
        assert got == [str(n) for n in range(30)]
        [error] = dropped
        assert (error.channel, error.max_queue) == (room, 5)
        assert str(error) == f"subscriber of {room!r} dropped: it fell more than 5 messages behind"
        await wait_unsubscribed_in_redis(url, room)


async def test_max_queue_can_be_set_per_subscriber(url: str) -> None:
    room = channel()
    dropped: list[SubscriberDropped] = []
    async with (
        Broadcast(url, max_queue=3) as broadcast,
        broadcast.subscribe(room, max_queue=10) as roomy,
    ):
        async with anyio.create_task_group() as group:
            await group.start(never_reads, broadcast, room, dropped)  # the Broadcast's 3
            for n in range(10):
                await broadcast.publish(room, str(n))
        assert [error.max_queue for error in dropped] == [3]
        assert await take(roomy, 10) == [str(n) for n in range(10)]
        with pytest.raises(ValueError, match="max_queue"):
            async with broadcast.subscribe(room, max_queue=0):
                pass


async def test_leaving_the_block_unsubscribes_and_keeps_nothing(url: str) -> None:
    room = channel()
    async with Broadcast(url) as broadcast:
        async with broadcast.subscribe(room) as subscriber:
            await broadcast.publish(room, "hello")
            assert await take(subscriber, 1) == ["hello"]
            await broadcast.publish(room, "never read")
        with anyio.fail_after(5):  # iterating it now ends at once
            assert [event async for event in subscriber] == []
        gone = weakref.ref(subscriber)
        del subscriber
        gc.collect()
        assert gone() is None
        await wait_unsubscribed_in_redis(url, room)
        await broadcast.publish(room, "to no one")  # still fine


async def test_a_client_leaving_mid_iteration_leaves_no_task_and_no_subscriber(url: str) -> None:
    room = channel()
    seen: list[weakref.ref[Subscriber]] = []

    async def listener(broadcast: Broadcast, *, task_status: TaskStatus[None]) -> None:
        async with broadcast.subscribe(room) as subscriber:
            seen.append(weakref.ref(subscriber))
            task_status.started()
            async for _ in subscriber:
                pass

    async with Broadcast(url) as broadcast:
        async with broadcast.subscribe(room) as first:  # the connection is up and running
            await broadcast.publish(room, "warm")
            assert await take(first, 1) == ["warm"]
        tasks_before = len(anyio.get_running_tasks())
        async with anyio.create_task_group() as group:
            for _ in range(3):
                await group.start(listener, broadcast)
            await broadcast.publish(room, "hello")
            group.cancel_scope.cancel()  # the WebSocket clients leave
        await anyio.lowlevel.checkpoint()
        assert len(anyio.get_running_tasks()) == tasks_before
        gc.collect()
        assert len(seen) == 3
        assert [ref() for ref in seen] == [None, None, None]
        await wait_unsubscribed_in_redis(url, room)


async def test_iteration_ends_when_the_broadcast_closes(url: str) -> None:
    room = channel()
    messages: list[str | bytes] = []
    heard = anyio.Event()

    async def listener(broadcast: Broadcast, *, task_status: TaskStatus[None]) -> None:
        async with broadcast.subscribe(room) as subscriber:
            task_status.started()
            async for event in subscriber:
                messages.append(event.message)
                heard.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group, Broadcast(url) as broadcast:
            await group.start(listener, broadcast)
            await broadcast.publish(room, "last words")
            await heard.wait()
            # The app shut down: the listener's loop ended, and its task with it.
    assert messages == ["last words"]


async def test_a_broadcast_can_connect_again_after_it_closed(url: str) -> None:
    broadcast = Broadcast(url)
    room = channel()
    for attempt in range(2):
        async with broadcast, broadcast.subscribe(room) as subscriber:
            await broadcast.publish(room, f"attempt {attempt}")
            assert await take(subscriber, 1) == [f"attempt {attempt}"]


async def test_using_a_broadcast_before_connecting_is_a_clear_error(url: str) -> None:
    broadcast = Broadcast(url)
    with pytest.raises(RuntimeError, match="async with broadcast"):
        await broadcast.publish("room", "hello")
    with pytest.raises(RuntimeError, match="async with broadcast"):
        async with broadcast.subscribe("room"):
            pass
    async with broadcast:
        with pytest.raises(RuntimeError, match="already connected"):
            await broadcast.__aenter__()


async def test_messages_are_str_or_bytes(url: str) -> None:
    room = channel()
    async with Broadcast(url) as broadcast, broadcast.subscribe(room) as subscriber:
        with pytest.raises(TypeError, match="str or bytes, not dict"):
            await broadcast.publish(room, {"not": "encoded"})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="channel is a str"):
            await broadcast.publish(b"room", "hello")  # type: ignore[arg-type]
        await broadcast.publish(room, bytearray(b"copied"))
        await broadcast.publish(room, "\x00 text that starts with NUL")
        assert await take(subscriber, 2) == [b"copied", "\x00 text that starts with NUL"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_max_queue_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(ValueError, match="max_queue"):
        Broadcast("memory://", max_queue=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["memory", "mqtt://host", "http://localhost:6379"])
def test_an_unknown_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="use memory:// or redis://"):
        Broadcast(url)


# --- a thousand subscribers, one of them never reading ------------------------------


READERS, WARM_UP, COUNT, SIZE, MAX_QUEUE = 999, 10, 60, 65536, 5


async def test_a_thousand_subscribers_one_never_reading(url: str) -> None:
    """999 readers get every message in order; the one that never reads is dropped; the
    memory held stays bounded by max_queue, far below what keeping every message for the
    slow one would take."""
    with anyio.fail_after(60):
        complete, dropped, peak = await fan_out(url, channel())
    assert complete == READERS
    assert dropped == 1
    # Keeping every message for the slow one would hold COUNT * SIZE bytes.
    assert peak < COUNT * SIZE / 2, f"{peak} bytes held at the peak"


async def fan_out(url: str, room: str) -> tuple[int, int, int]:
    """Publish to READERS and to one that never reads: how many readers got everything,
    how many subscribers were dropped, and the peak of memory held meanwhile."""
    complete: list[Subscriber] = []
    dropped: list[SubscriberDropped] = []
    async with Broadcast(url, max_queue=MAX_QUEUE) as broadcast:

        async def reader(*, task_status: TaskStatus[None]) -> None:
            async with broadcast.subscribe(room) as subscriber:
                task_status.started()
                expected = 0
                async for event in subscriber:
                    if event.message[:6] != f"{expected:06d}":
                        return  # out of order or missing: not counted as complete
                    expected += 1
                    if expected == WARM_UP + COUNT:
                        complete.append(subscriber)
                        return

        async with anyio.create_task_group() as group:
            for _ in range(READERS):
                await group.start(reader)
            tracemalloc.start()
            try:
                # Traced from the start, the readers' own churn is not counted as growth.
                for n in range(WARM_UP):
                    await broadcast.publish(room, f"{n:06d}" + "x" * SIZE)
                await group.start(never_reads, broadcast, room, dropped)
                before = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
                for n in range(WARM_UP, WARM_UP + COUNT):
                    # A new string each time: nothing but the queues keeps it alive.
                    await broadcast.publish(room, f"{n:06d}" + "x" * SIZE)
                peak = tracemalloc.get_traced_memory()[1] - before
            finally:
                tracemalloc.stop()
    return len(complete), len(dropped), peak
