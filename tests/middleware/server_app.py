"""The app ``test_middleware_server`` runs under a real server: GZip and CORS around two routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from microasgi import App, Request, StreamingResponse
from microasgi.middleware.cors import CORSMiddleware
from microasgi.middleware.gzip import GZipMiddleware

FRONT = "http://front.test"
TEXT = "".join(f"line {i}: the quick brown fox\n" for i in range(3000))
CHUNKS = [TEXT[i : i + 1000] for i in range(0, len(TEXT), 1000)]

app = App()


@app.get("/text")
async def text(request: Request) -> str:
    """The whole text in one body."""
    return TEXT


@app.get("/stream")
async def stream(request: Request) -> StreamingResponse:
    """The same text, streamed in chunks."""

    async def chunks() -> AsyncIterator[str]:
        for chunk in CHUNKS:
            yield chunk

    return StreamingResponse(chunks(), media_type="text/plain")


app.add_middleware(GZipMiddleware)
app.add_middleware(CORSMiddleware, allow_origins=[FRONT], allow_methods=["GET", "POST"])
