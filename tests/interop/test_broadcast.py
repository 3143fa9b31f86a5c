"""The chat example scaled out: several uvicorn processes share their rooms through Redis.

Real servers (uvicorn, as users run it, with ``REDIS_URL`` set), a real Redis (Debian's
redis-server, started by the suite) and real WebSocket clients (``websockets``): a message
said on one server reaches a client of another, and of another worker of the same server,
and broadcasting resumes after Redis restarts while the servers go on serving.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from redis_server import RedisServer
from websockets.sync.client import ClientConnection

from interop import servers as s

CHAT = "examples.chat:app"
LIMIT = 100  # messages read, or attempts made, before a test gives up
# --workers 2, entered once the socket answers: the test itself finds both workers (it
# connects until two clients are on different PIDs), so it needs no lifespan marks.
UVICORN_TWO_WORKERS = dataclasses.replace(s.UVICORN_WORKERS, workers=1)


def said(user: str, text: str) -> dict[str, str]:
    return {"user": user, "text": text}


def hear(ws: ClientConnection, expected: dict[str, str]) -> None:
    """Read until ``expected`` arrives (others' joins and leaves may come first)."""
    for _ in range(LIMIT):
        if json.loads(ws.recv(timeout=10)) == expected:
            return
    raise AssertionError(f"{expected} never arrived")


def heard_within(ws: ClientConnection, text: str, seconds: float) -> bool:
    """Whether a message with ``text`` arrives within ``seconds`` (read from the start)."""
    try:
        for _ in range(LIMIT):
            if json.loads(ws.recv(timeout=seconds))["text"] == text:
                return True
    except TimeoutError:
        return False
    return False


@contextlib.contextmanager
def chat_servers(
    redis: RedisServer, log_dir: Path, *configs: s.ServerConfig
) -> Iterator[list[s.Server]]:
    """The chat under each of ``configs``, all sharing ``redis``."""
    env = {"REDIS_URL": redis.url}
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(s.running(config, CHAT, log_dir / f"{n}", env=env))
            for n, config in enumerate(configs)
        ]


@contextlib.contextmanager
def join(server: s.Server, room: str, name: str) -> Iterator[ClientConnection]:
    """Join ``room`` as ``name``, entered once the server has subscribed this client."""
    with server.ws_connect(f"/ws/{room}?name={name}") as ws:
        hear(ws, said("*", f"{name} joined"))  # published once it subscribed
        yield ws


def test_a_message_said_on_one_server_reaches_a_client_of_another(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    room = uuid.uuid4().hex
    with (
        chat_servers(redis_server, tmp_path, s.UVICORN, s.UVICORN) as (one, two),
        join(one, room, "ann") as ann,
        join(two, room, "bob") as bob,
    ):
        hear(ann, said("*", "bob joined"))
        bob.send("hello from server two")
        hear(ann, said("bob", "hello from server two"))
        ann.send("hello from server one")
        hear(bob, said("ann", "hello from server one"))
        bob.close()
        hear(ann, said("*", "bob left"))


def test_a_message_said_to_one_worker_reaches_a_client_of_the_other(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    room = uuid.uuid4().hex
    with (
        chat_servers(redis_server, tmp_path, UVICORN_TWO_WORKERS) as (server,),
        contextlib.ExitStack() as clients,
    ):
        # The kernel hands each connection to one worker: connect until both have one.
        by_worker: dict[str, tuple[str, ClientConnection]] = {}
        for attempt in range(LIMIT):
            name = f"client{attempt}"
            ws = clients.enter_context(join(server, room, name))
            assert ws.response is not None
            by_worker.setdefault(ws.response.headers["x-worker-pid"], (name, ws))
            if len(by_worker) == 2:
                break
        else:
            raise AssertionError(f"every connection went to one worker: {set(by_worker)}")
        (first_name, first), (second_name, second) = by_worker.values()
        first.send("from the first worker")
        hear(second, said(first_name, "from the first worker"))
        second.send("from the second worker")
        hear(first, said(second_name, "from the second worker"))


def test_the_servers_keep_serving_while_redis_restarts_and_broadcasting_resumes(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    room = uuid.uuid4().hex
    with (
        chat_servers(own_redis, tmp_path, s.UVICORN, s.UVICORN) as (one, two),
        join(one, room, "ann") as ann,
        join(two, room, "bob") as bob,
    ):
        hear(ann, said("*", "bob joined"))
        own_redis.stop()
        for server in (one, two):
            assert httpx.get(f"{server.base_url}/", timeout=10).status_code == 200
        bob.send("while Redis is away")
        hear(bob, said("*", "not delivered, try again"))

        own_redis.start()
        for attempt in range(LIMIT):
            bob.send(f"attempt {attempt}")
            if heard_within(ann, f"attempt {attempt}", 0.5):
                break
        else:
            raise AssertionError("broadcasting did not resume")
        bob.send("back to normal")
        hear(ann, said("bob", "back to normal"))
        # A client that joins now is subscribed as usual.
        with join(one, room, "cat") as cat:
            bob.send("welcome, cat")
            hear(cat, said("bob", "welcome, cat"))
