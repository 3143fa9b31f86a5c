"""BackgroundTasks: calls made after the response is sent, in order, sync or async."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import pytest
from asgi_harness import body_of, http_scope, run, start_of

from microasgi import (
    App,
    BackgroundTask,
    BackgroundTasks,
    JSONResponse,
    PlainTextResponse,
    Request,
    StreamingResponse,
)
from microasgi._types import Message, Receive, Scope, Send
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio


def logging_send(send: Send, log: list[str]) -> Send:
    """``send`` that notes each message type in ``log`` as it goes."""

    async def logged(message: Message) -> None:
        log.append(message["type"])
        await send(message)

    return logged


def app_noting_messages(app: App, log: list[str]) -> App:
    """Wrap ``app`` as a server sees it, noting what it sends, in order."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, logging_send(send, log))

    return wrapped  # type: ignore[return-value]


async def test_tasks_run_in_order_after_the_response_with_their_arguments() -> None:
    log: list[str] = []
    loop_thread = threading.get_ident()
    threads: list[int] = []

    async def send_mail(to: str, *, subject: str) -> None:
        log.append(f"mail to {to}: {subject}")

    def write_audit(entry: str) -> None:
        threads.append(threading.get_ident())
        log.append(f"audit {entry}")

    app = App()

    @app.post("/signup")
    async def signup(request: Request) -> JSONResponse:
        tasks = BackgroundTasks()
        tasks.add_task(send_mail, "ada@example.com", subject="welcome")
        tasks.add_task(write_audit, "signup")
        tasks.add_task(send_mail, "admin@example.com", subject="new user")
        return JSONResponse({"ok": True}, background=tasks)

    sent = await run(app_noting_messages(app, log), http_scope("/signup", "POST"))
    assert start_of(sent)["status"] == 200
    assert body_of(sent) == b'{"ok":true}'
    assert log == [
        "http.response.start",
        "http.response.body",
        "mail to ada@example.com: welcome",
        "audit signup",
        "mail to admin@example.com: new user",
    ]
    assert threads
    assert loop_thread not in threads  # the sync task ran off the event loop


async def test_a_task_list_and_a_single_task_both_fit_background() -> None:
    done: list[str] = []

    async def note(what: str) -> None:
        done.append(what)

    app = App()

    @app.get("/one")
    async def one(request: Request) -> PlainTextResponse:
        return PlainTextResponse("one", background=BackgroundTask(note, "single"))

    @app.get("/many")
    async def many(request: Request) -> PlainTextResponse:
        return PlainTextResponse("many", background=BackgroundTasks([BackgroundTask(note, "a")]))

    async with TestClient(app) as client:
        assert (await client.get("/one")).text == "one"
        assert (await client.get("/many")).text == "many"
    assert done == ["single", "a"]


async def test_tasks_run_after_a_streamed_body() -> None:
    log: list[str] = []

    async def chunks() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    async def after() -> None:
        log.append("task")

    app = App()

    @app.get("/stream")
    async def stream(request: Request) -> StreamingResponse:
        tasks = BackgroundTasks()
        tasks.add_task(after)
        return StreamingResponse(chunks(), background=tasks)

    sent = await run(app_noting_messages(app, log), http_scope("/stream"))
    assert body_of(sent) == b"ab"
    assert log[-2:] == ["http.response.body", "task"]


async def test_a_failing_task_stops_the_rest_and_reaches_the_server_after_the_response() -> None:
    done: list[str] = []

    def first() -> None:
        done.append("first")

    async def broken() -> None:
        raise ConnectionError("mail server down")

    def never() -> None:
        done.append("never")

    app = App()

    @app.get("/")
    async def index(request: Request) -> PlainTextResponse:
        tasks = BackgroundTasks()
        tasks.add_task(first)
        tasks.add_task(broken)
        tasks.add_task(never)
        return PlainTextResponse("sent", background=tasks)

    sent = await run(app, http_scope("/"), raises=ConnectionError)
    # The client got its whole response, not a 500; the server sees the error.
    assert start_of(sent)["status"] == 200
    assert body_of(sent) == b"sent"
    assert [m for m in sent if m["type"] == "http.response.body"][-1].get("more_body") is not True
    assert done == ["first"]
    async with TestClient(app) as client:
        with pytest.raises(ConnectionError, match="mail server down"):
            await client.get("/")
    async with TestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/")
    assert (response.status_code, response.text) == (200, "sent")
