"""The app test_cli stops with signals: it leaves a mark when each process starts and stops.

Marks go to ``INTEROP_MARK_DIR`` (servers.py sets it per server): ``signals-PID-1`` at
startup, as the showcase's (so ``Server.started_pids`` counts workers), and
``signals-PID-stopped`` once the lifespan shutdown has run in that process.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import anyio

from microasgi import App, Request

app = App()


async def mark(suffix: str) -> None:
    """Leave ``signals-PID-SUFFIX`` in the mark directory, when there is one."""
    mark_dir = os.environ.get("INTEROP_MARK_DIR")
    if mark_dir:
        await anyio.Path(mark_dir, f"signals-{os.getpid()}-{suffix}").touch(exist_ok=False)


@app.lifespan
async def lifespan(app: App) -> AsyncIterator[None]:
    """Mark the start and the end of this process's lifespan."""
    await mark("1")
    yield
    await mark("stopped")


@app.get("/")
async def index(request: Request) -> str:
    """Answer, so the test knows the server serves."""
    return "serving"
