"""The app test_gzip_stream serves: an NDJSON stream behind GZip, paced by the test.

``GET /ticks/RUN`` streams ``TICKS`` short lines; line ``i`` goes out only once the test
has called ``POST /ticks/RUN/i``, so the test knows the app is waiting while it reads.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio

from microasgi import App, Request, StreamingResponse
from microasgi.middleware.gzip import GZipMiddleware

TICKS = 4
# A test that dies leaves its stream waiting: this bounds how long the server keeps it.
GATE_TIMEOUT = 60.0

# "RUN/i" -> the event that lets line i of stream RUN go; whoever comes first makes it.
gates: dict[str, anyio.Event] = {}

app = App()


def line(i: int) -> str:
    """Line ``i`` of a stream: a dozen bytes, far under GZip's ``minimum_size``."""
    return json.dumps({"tick": i}) + "\n"


def gate(run: str, i: int) -> anyio.Event:
    """The event for line ``i`` of stream ``run``."""
    return gates.setdefault(f"{run}/{i}", anyio.Event())


@app.get("/ticks/{run}")
async def ticks(request: Request, run: str) -> StreamingResponse:
    """Stream the lines, each once the test lets it go."""

    async def produce() -> AsyncIterator[str]:
        try:
            for i in range(TICKS):
                with anyio.fail_after(GATE_TIMEOUT):
                    await gate(run, i).wait()
                yield line(i)
        finally:
            for i in range(TICKS):
                gates.pop(f"{run}/{i}", None)

    return StreamingResponse(produce(), media_type="application/x-ndjson")


@app.post("/ticks/{run}/{i:int}")
async def let_go(request: Request, run: str, i: int) -> str:
    """Let line ``i`` of stream ``run`` go."""
    gate(run, i).set()
    return "ok"


app.add_middleware(GZipMiddleware, minimum_size=500)
