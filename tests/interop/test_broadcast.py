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
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from redis_server import RedisServer
from websockets.sync.client import ClientConnection, connect

from interop import servers as s

CHAT = "examples.chat:app"
NGINX_CONF = s.REPO_ROOT / "examples" / "scaling" / "nginx.conf"
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
def join(server: s.Server | str, room: str, name: str) -> Iterator[ClientConnection]:
    """Join ``room`` as ``name`` on a server (or at an origin, ``host:port``), entered once
    the server has subscribed this client."""
    path = f"/ws/{room}?name={name}"
    with (
        server.ws_connect(path)
        if isinstance(server, s.Server)
        else connect(f"ws://{server}{path}", open_timeout=10, close_timeout=5)
    ) as ws:
        hear(ws, said("*", f"{name} joined"))  # published once it subscribed
        yield ws


def one_client_per_worker(
    server: s.Server | str, room: str, clients: contextlib.ExitStack
) -> list[tuple[str, ClientConnection]]:
    """Connect until two clients are on different processes; their names and connections.

    The others are closed at once: a client that reads nothing stops taking messages
    (the room's joins and leaves), and then cannot finish its own close in time.
    """
    by_worker: dict[str, tuple[str, ClientConnection]] = {}
    for attempt in range(LIMIT):
        name = f"client{attempt}"
        with contextlib.ExitStack() as this_one:
            ws = this_one.enter_context(join(server, room, name))
            assert ws.response is not None
            pid = ws.response.headers["x-worker-pid"]
            if pid not in by_worker:
                by_worker[pid] = (name, ws)
                clients.push(this_one.pop_all())
        if len(by_worker) == 2:
            return list(by_worker.values())
        time.sleep(0.1)  # a worker may still be starting
    raise AssertionError(f"every connection went to one process: {set(by_worker)}")


def messages_cross(clients: list[tuple[str, ClientConnection]]) -> None:
    """Each of two clients hears what the other says."""
    (first_name, first), (second_name, second) = clients
    first.send(f"from {first_name}")
    hear(second, said(first_name, f"from {first_name}"))
    second.send(f"from {second_name}")
    hear(first, said(second_name, f"from {second_name}"))


class Room(NamedTuple):
    """A room of the chat with ann on one server and bob on another."""

    name: str
    one: s.Server
    two: s.Server
    ann: ClientConnection
    bob: ClientConnection


@contextlib.contextmanager
def ann_and_bob(redis: RedisServer, log_dir: Path) -> Iterator[Room]:
    """Two servers sharing ``redis``; ann in a room on the first, bob in it on the second."""
    room = uuid.uuid4().hex
    with (
        chat_servers(redis, log_dir, s.UVICORN, s.UVICORN) as (one, two),
        join(one, room, "ann") as ann,
        join(two, room, "bob") as bob,
    ):
        hear(ann, said("*", "bob joined"))
        yield Room(room, one, two, ann, bob)


def test_a_message_said_on_one_server_reaches_a_client_of_another(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with ann_and_bob(redis_server, tmp_path) as (_, _, _, ann, bob):
        bob.send("hello from server two")
        hear(ann, said("bob", "hello from server two"))
        ann.send("hello from server one")
        hear(bob, said("ann", "hello from server one"))
        bob.close()
        hear(ann, said("*", "bob left"))


def test_a_message_said_to_one_worker_reaches_a_client_of_the_other(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with (
        chat_servers(redis_server, tmp_path, UVICORN_TWO_WORKERS) as (server,),
        contextlib.ExitStack() as clients,
    ):
        # The kernel hands each connection to one worker: connect until both have one.
        messages_cross(one_client_per_worker(server, uuid.uuid4().hex, clients))


def nginx_in_front(directory: Path, listen: int, upstreams: list[int]) -> Path:
    """examples/scaling/nginx.conf on test ports, inside a minimal main configuration."""
    site = NGINX_CONF.read_text()
    for old, new in [
        ("listen 80;", f"listen {s.HOST}:{listen};"),
        ("server 127.0.0.1:8001;", f"server {s.HOST}:{upstreams[0]};"),
        ("server 127.0.0.1:8002;", f"server {s.HOST}:{upstreams[1]};"),
    ]:
        assert old in site, f"{NGINX_CONF} no longer says {old!r}"
        site = site.replace(old, new)
    main = directory / "nginx.conf"
    main.write_text(
        f"pid {directory}/nginx.pid;\nerror_log {directory}/error.log;\ndaemon off;\n"
        f"events {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {directory};\n"
        f"  proxy_temp_path {directory};\n{site}\n}}\n"
    )
    return main


def test_behind_nginx_any_instance_serves_any_client_without_sticky_sessions(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    nginx = shutil.which("nginx")
    if nginx is None:
        pytest.skip("nginx is not installed (the interop session installs it)")
    port = s.free_port()
    with chat_servers(redis_server, tmp_path, s.UVICORN, s.UVICORN) as (one, two):
        config = nginx_in_front(tmp_path, port, [one.port, two.port])
        proxy = [nginx, "-c", str(config), "-p", str(tmp_path)]
        origin = f"{s.HOST}:{port}"
        with (
            s.running_command(proxy, tmp_path / "nginx.log", ready_url=f"http://{origin}/"),
            contextlib.ExitStack() as clients,
        ):
            assert "new WebSocket" in httpx.get(f"http://{origin}/", timeout=10).text
            # nginx takes turns: two clients land on the two instances, and hear each other.
            messages_cross(one_client_per_worker(origin, uuid.uuid4().hex, clients))


def test_the_servers_keep_serving_while_redis_restarts_and_broadcasting_resumes(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    with ann_and_bob(own_redis, tmp_path) as (room, one, two, ann, bob):
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
