"""A real Redis for the tests: Debian's ``redis-server``, on a free loopback port.

It keeps nothing on disk (``--save '' --appendonly no``), is started and stopped by PID
through tests/interop/servers.py like every other process the suite runs, and can be
stopped and started again on the same port, as a restarted Redis would be.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from interop import servers as s

READY_TIMEOUT = 10.0
START_ATTEMPTS = 3


class RedisFailed(RuntimeError):
    """redis-server did not come up; the message carries its log."""


def redis_server_path() -> str | None:
    """Where ``redis-server`` is installed, if it is (apt-get install redis-server)."""
    return shutil.which("redis-server")


@dataclass
class RedisServer:
    """One redis-server process on 127.0.0.1, which a test may stop and start again."""

    directory: Path
    port: int = field(default_factory=s.free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        """The URL a ``Broadcast`` (or any Redis client) connects to."""
        return f"redis://{s.HOST}:{self.port}/0"

    def start(self) -> None:
        """Start it on its port and return once it answers PING."""
        executable = redis_server_path()
        if executable is None:
            raise RedisFailed("redis-server is not installed (apt-get install redis-server)")
        self.starts += 1
        log = self.directory / f"redis-{self.port}-{self.starts}.log"
        argv = [executable, "--port", str(self.port), "--bind", s.HOST]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = s.spawn(argv, log, cwd=self.directory)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.answers():
                return
            time.sleep(0.05)
        self.stop()
        raise RedisFailed(f"redis-server did not answer on {self.port}:\n{log.read_text()}")

    def stop(self) -> None:
        """Stop it (by its process group), as an operator or a crash would."""
        if self.process is not None:
            s.stop_process_group(self.process)
            self.process = None

    def answers(self) -> bool:
        """Whether it answers PING right now."""
        try:
            with socket.create_connection((s.HOST, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(7) == b"+PONG\r\n"
        except OSError:
            return False


@contextlib.contextmanager
def running_redis(directory: Path) -> Iterator[RedisServer]:
    """A Redis for the ``with`` block, on a free port (another one if that was taken)."""
    directory.mkdir(parents=True, exist_ok=True)
    for attempt in range(START_ATTEMPTS):
        server = RedisServer(directory)
        try:
            server.start()
            break
        except RedisFailed:
            if attempt == START_ATTEMPTS - 1:
                raise
    try:
        yield server
    finally:
        server.stop()
