"""Broadcast over a real Redis: what survives Redis going away, and what is refused clearly.

The shared promises (order, fan-out, dropping, unsubscribing) are in test_broadcast.py,
run against Redis there too; this module is about Redis itself: restarts, an unreachable
server, the asyncio-only client, the missing extra, and what goes over the wire.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator

import anyio
import pytest
from anyio.abc import TaskStatus
from redis_server import RedisServer

from microasgi import App, Request, WebSocket
from microasgi.broadcast import Broadcast, BroadcastUnavailable, Subscriber
from microasgi.broadcast._redis import decode, encode
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio

ATTEMPTS = 100  # bounded retries while a restarted Redis comes back


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's client is asyncio-only


def channel() -> str:
    return f"test:{uuid.uuid4().hex}"


async def next_message(subscriber: Subscriber, seconds: float = 5) -> str | bytes | None:
    """The next message, or None if none came within ``seconds``."""
    with anyio.move_on_after(seconds):
        return (await subscriber.__anext__()).message
    return None


async def publish_until_heard(broadcast: Broadcast, room: str, subscriber: Subscriber) -> int:
    """Publish until ``subscriber`` hears one (Redis may still be coming back)."""
    for attempt in range(ATTEMPTS):
        try:
            await broadcast.publish(room, f"attempt {attempt}")
        except BroadcastUnavailable:
            await anyio.sleep(0.1)
            continue
        if await next_message(subscriber, 0.2) is not None:
            return attempt
    raise AssertionError("broadcasting did not resume")


async def test_subscribers_keep_their_subscription_across_a_redis_restart(
    own_redis: RedisServer,
) -> None:
    room = channel()
    async with (
        Broadcast(own_redis.url, timeout=2) as here,
        Broadcast(own_redis.url, timeout=2) as there,
        here.subscribe(room) as subscriber,
    ):
        await there.publish(room, "before")
        assert await next_message(subscriber) == "before"

        own_redis.stop()
        # Nothing can be published while Redis is away, and the publisher is told so.
        with pytest.raises(BroadcastUnavailable, match="cannot publish to Redis at redis://"):
            await there.publish(room, "while down")

        own_redis.start()
        await publish_until_heard(there, room, subscriber)
        # From then on, every message arrives, in order.
        for n in range(20):
            await there.publish(room, f"after {n}")
        heard = [await next_message(subscriber) for _ in range(20)]
        # An attempt published before the resubscription settled may still come first.
        while heard[0] != "after 0" and str(heard[0]).startswith("attempt"):
            heard = [*heard[1:], await next_message(subscriber)]
        assert heard == [f"after {n}" for n in range(20)]


async def test_the_first_publish_after_a_restart_does_not_fail_on_a_stale_connection(
    own_redis: RedisServer,
) -> None:
    room = channel()
    async with Broadcast(own_redis.url, timeout=2) as broadcast:
        await broadcast.publish(room, "before")  # leaves a connection in the pool
        own_redis.stop()
        own_redis.start()  # answering again: that connection is dead, Redis is not
        await broadcast.publish(room, "after")


async def test_subscribing_while_redis_is_down_waits_for_it_within_the_timeout(
    own_redis: RedisServer,
) -> None:
    room = channel()
    async with Broadcast(own_redis.url, timeout=0.5) as broadcast:
        own_redis.stop()
        with pytest.raises(BroadcastUnavailable, match="did not confirm a subscription"):
            async with broadcast.subscribe(room):
                pass

    heard: list[str | bytes] = []

    async def late_subscriber(broadcast: Broadcast, *, task_status: TaskStatus[None]) -> None:
        task_status.started()
        async with broadcast.subscribe(room) as subscriber:  # waits for Redis to come back
            await broadcast.publish(room, "made it")
            heard.append((await subscriber.__anext__()).message)

    own_redis.start()
    async with (
        Broadcast(own_redis.url, timeout=20) as broadcast,
        anyio.create_task_group() as group,
    ):
        own_redis.stop()
        await group.start(late_subscriber, broadcast)
        own_redis.start()
    assert heard == ["made it"]


async def test_an_app_keeps_serving_while_redis_restarts_and_broadcasting_resumes(
    own_redis: RedisServer,
) -> None:
    broadcast = Broadcast(own_redis.url, timeout=2)
    app = App()

    @app.lifespan
    async def lifespan(app: App) -> AsyncIterator[None]:
        async with broadcast:
            yield

    @app.get("/")
    async def home(request: Request) -> str:
        return "still here"

    @app.post("/say")
    async def say(request: Request) -> tuple[str, int]:
        try:
            await broadcast.publish("news", await request.text())
        except BroadcastUnavailable:
            return "the news cannot go out right now", 503
        return "sent", 200

    @app.websocket("/news")
    async def news(websocket: WebSocket) -> None:
        await websocket.accept()
        async with broadcast.subscribe("news") as subscriber, anyio.create_task_group() as group:

            async def relay() -> None:
                async for event in subscriber:
                    await websocket.send_text(str(event.message))

            group.start_soon(relay)
            await websocket.send_text("subscribed")
            async for _ in websocket.iter_text():  # until the client leaves
                pass
            group.cancel_scope.cancel()

    with anyio.fail_after(60):
        async with TestClient(app) as client, client.websocket_connect("/news") as ws:
            assert await ws.receive_text() == "subscribed"
            assert (await client.post("/say", content=b"one")).text == "sent"
            assert await ws.receive_text() == "one"

            own_redis.stop()
            assert (await client.get("/")).text == "still here"
            refused = await client.post("/say", content=b"lost")
            assert refused.status_code == 503

            own_redis.start()
            for _ in range(ATTEMPTS):
                if (await client.post("/say", content=b"again")).status_code == 200:
                    with anyio.move_on_after(0.2):
                        assert await ws.receive_text() == "again"
                        break
                await anyio.sleep(0.05)
            else:
                raise AssertionError("broadcasting did not resume")
            assert (await client.post("/say", content=b"two")).text == "sent"
            while (text := await ws.receive_text()) == "again":
                pass  # an earlier attempt that arrived late
            assert text == "two"


async def test_one_connection_per_broadcast_however_many_subscribers(
    own_redis: RedisServer,
) -> None:
    from redis.asyncio import Redis

    rooms = [channel() for _ in range(3)]
    async with (
        Redis.from_url(own_redis.url) as observer,
        Broadcast(own_redis.url) as broadcast,
        anyio.create_task_group() as group,
    ):

        async def listener(room: str, *, task_status: TaskStatus[None]) -> None:
            async with broadcast.subscribe(room) as subscriber:
                task_status.started()
                async for _ in subscriber:
                    pass

        for n in range(30):
            await group.start(listener, rooms[n % 3])
        [connection] = await observer.client_list(_type="pubsub")
        assert connection["sub"] == "3"
        assert dict(await observer.pubsub_numsub(*rooms)) == {room.encode(): 1 for room in rooms}
        group.cancel_scope.cancel()


async def test_redis_that_cannot_be_reached_at_startup_fails_the_startup(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    nobody = RedisServer(tmp_path_factory.mktemp("nobody"))  # never started
    with pytest.raises(BroadcastUnavailable, match=f"cannot reach Redis at {nobody.url}"):
        async with Broadcast(nobody.url, timeout=2):
            pass


async def test_messages_do_not_name_the_password(tmp_path_factory: pytest.TempPathFactory) -> None:
    nobody = RedisServer(tmp_path_factory.mktemp("nobody"))
    url = nobody.url.replace("redis://", "redis://user:s3cret@")
    with pytest.raises(BroadcastUnavailable) as refused:
        async with Broadcast(url, timeout=2):
            pass
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_redis_on_trio_is_refused_clearly(redis_server: RedisServer) -> None:
    with pytest.raises(RuntimeError, match=r"asyncio only .* on trio, use memory://"):
        async with Broadcast(redis_server.url):
            pass


def test_without_the_redis_package_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis.exceptions", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'microasgi\[redis\]'"):
        Broadcast("redis://localhost:6379/0")
    Broadcast("memory://")  # the embedded default needs nothing


@pytest.mark.parametrize(
    "message", ["hello", "", "héllo ✓", "\x00starts with NUL", b"", b"\x00\xff", b"plain"]
)
def test_each_message_crosses_redis_as_the_type_it_was_published_as(
    message: str | bytes,
) -> None:
    assert decode(encode(message)) == message
    assert type(decode(encode(message))) is type(message)


def test_text_is_plain_utf8_on_the_wire_so_other_redis_clients_can_join() -> None:
    assert encode('{"user": "ann"}') == b'{"user": "ann"}'
    assert decode(b"from redis-cli") == "from redis-cli"  # another client's text
    assert decode(b"\xff\xfe") == b"\xff\xfe"  # and its binary
