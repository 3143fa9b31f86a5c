"""The apps of the scale benchmark (``benchmarks.scale``): one module per framework.

Each module's ``app()`` factory serves, where the framework can:

- ``GET /plaintext``: the readiness probe;
- ``GET /stats``: ``"<live generators> <events produced> <Python heap bytes>"`` of this
  process (the heap as tracemalloc counts it, when ``$BENCH_TRACEMALLOC`` is set; else 0);
- ``/ws``: a WebSocket echoing each text message until the client leaves;
- ``GET /stream`` and ``GET /sse``: a stream fed one chunk or event every ``TICK`` seconds
  by the user's async generator (``ticks``), which counts itself while it runs (and the
  variants ``/stream-nowatch`` of raw ASGI and ``/sse-noping`` of microasgi);
- ``GET /file/{small,large}`` (``FileResponse``) and ``GET /static/{small,large}.bin``
  (``StaticFiles``) from the directory named by ``$BENCH_FILES_DIR``;
- ``/room/{room}`` (raw ASGI and microasgi): a chat-like room: every text a member sends
  is published to every member.
"""

from __future__ import annotations

import asyncio
import os
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

FRAMEWORKS = ("raw", "microasgi", "starlette", "blacksheep", "falcon")
TICK = 0.2  # seconds between two chunks or events of a stream
# A generator its framework never stops still ends: the server outlives no measurement.
MAX_TICKS = 300
FILES = {"small": 4 * 1024, "large": 1024 * 1024}
FILES_DIR_ENV = "BENCH_FILES_DIR"
HELLO = b"Hello, World!"
TRACEMALLOC_ENV = "BENCH_TRACEMALLOC"
T = TypeVar("T")

if os.environ.get(TRACEMALLOC_ENV):  # the server imports this module as it starts
    tracemalloc.start()


class Counts:
    """This process's stream generators: how many run now, how many items they made."""

    live = 0
    events = 0

    @classmethod
    def text(cls) -> str:
        """What ``GET /stats`` answers."""
        heap = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
        return f"{cls.live} {cls.events} {heap}"


async def ticks(make: Callable[[int], T]) -> AsyncIterator[T]:
    """The user's generator behind every stream: ``make(i)`` every ``TICK`` seconds."""
    Counts.live += 1
    try:
        for i in range(MAX_TICKS):
            await asyncio.sleep(TICK)
            Counts.events += 1
            yield make(i)
    finally:
        Counts.live -= 1


def chunk(i: int) -> bytes:
    """One chunk of ``/stream``."""
    return b"tick %d\n" % i


def files_dir() -> Path:
    """The directory of the files served (``$BENCH_FILES_DIR``; the benchmark makes it)."""
    return Path(os.environ.get(FILES_DIR_ENV, "/nonexistent-bench-files"))


def file_path(name: str) -> Path | None:
    """The file ``/file/{name}`` serves, or None for a name not in ``FILES``."""
    return files_dir() / f"{name}.bin" if name in FILES else None


def make_files(directory: Path) -> None:
    """Write the served files into ``directory``."""
    for name, size in FILES.items():
        (directory / f"{name}.bin").write_bytes(bytes(i % 251 for i in range(size)))


def target(framework: str) -> str:
    """The ``module:factory`` a server is given for ``framework``'s app."""
    return f"benchmarks.scale_apps.{framework}:app"
