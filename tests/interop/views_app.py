"""The app of test_views: limits per route, WebSocketException and background tasks,
as the servers see them."""

from __future__ import annotations

from microasgi import (
    App,
    BackgroundTasks,
    PlainTextResponse,
    Request,
    WebSocket,
    WebSocketException,
)
from microasgi.middleware.cors import CORSMiddleware

KiB = 1024
MiB = 1024 * KiB
# What a failing background task raises: the test looks for it in the server's log.
TASK_ERROR = "the background task failed on purpose"

app = App(max_body_size=64 * KiB, max_file_size=64 * KiB)


async def uploaded_size(request: Request) -> str:
    """The size of the form's ``file``."""
    upload = (await request.form())["file"]
    assert not isinstance(upload, str)
    return str(len(await upload.read()))


app.post("/upload", max_body_size=4 * MiB, max_file_size=4 * MiB)(uploaded_size)
app.post("/avatar")(uploaded_size)


@app.websocket("/policy")
async def policy(websocket: WebSocket) -> None:
    """Echo, until a message breaks the policy."""
    if websocket.query.get("banned"):
        raise WebSocketException(4003, "banned")
    await websocket.accept()
    async for text in websocket.iter_text():
        if text == "spam":
            raise WebSocketException(1008, "no spam")  # a code RFC 6455 defines
        if text == "quiet":
            raise WebSocketException(4010, "quiet hours")  # a code for applications
        await websocket.send_text(text)


def broken_task() -> None:
    """A background task that fails after its response went out."""
    raise RuntimeError(TASK_ERROR)


@app.get("/background")
async def background(request: Request) -> PlainTextResponse:
    """A complete response, then a task that fails."""
    tasks = BackgroundTasks()
    tasks.add_task(broken_task)
    return PlainTextResponse("sent before the task", background=tasks)


@app.get("/")
async def index(request: Request) -> str:
    """Still serving."""
    return "ok"


# The same app with a misspelt middleware option: its startup must fail.
misspelt = App()
misspelt.add_middleware(CORSMiddleware, **{"allow_orgins": ["https://example.com"]})
