"""What a type checker tells a user (mypy --strict on user code), and the run-time checks
behind the same mistakes: a middleware option typo fails startup."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any, TypedDict

import anyio
import pytest

from microasgi import App, HTTPException, PlainTextResponse, Request, Response, WebSocket
from microasgi._types import Message
from microasgi.middleware.cors import CORSMiddleware
from microasgi.testing import TestClient, WebSocketDenied

mypy_api = pytest.importorskip("mypy.api", reason="mypy is in the test extra")

USER_CODE = """
from typing import TypedDict

from microasgi import (
    App,
    BackgroundTask,
    BackgroundTasks,
    JSONResponse,
    PlainTextResponse,
    Request,
    Router,
    State,
    WebSocket,
)
from microasgi.endpoints import HTTPEndpoint, WebSocketEndpoint
from microasgi.middleware.cors import CORSMiddleware


class Pool:
    async def fetch(self) -> int:
        return 1


class AppState(TypedDict):
    pool: Pool


class AttrState(State):
    pool: Pool


app = App()
router = Router()


@app.get("/typed")
async def typed(request: Request[AppState]) -> str:
    reveal_type(request.state["pool"])
    return str(await request.state["pool"].fetch())


@app.get("/attributes")
async def attributes(request: Request[AttrState]) -> str:
    reveal_type(request.state.pool)
    return ""


@app.get("/plain")
async def plain(request: Request) -> str:
    reveal_type(request.state)
    return ""


@app.websocket("/ws")
async def ws(websocket: WebSocket[AppState]) -> None:
    reveal_type(websocket.state["pool"])


@app.post("/upload", max_body_size=1 << 30, max_form_files=3)
async def upload(request: Request) -> str:
    await request.form(max_files=1, max_fields=10, max_part_size=1024)
    return ""


@router.before_request
async def before(request: Request) -> None: ...


@app.after_request
def after(request: Request, response: object) -> object:
    return response


@app.route("/items/{item_id:int}")
class Item(HTTPEndpoint):
    async def get(self, request: Request, item_id: int) -> dict[str, int]:
        return {"id": item_id}


class Echo(WebSocketEndpoint):
    encoding = "text"

    async def on_receive(self, websocket: WebSocket, data: str) -> None:
        await websocket.send_text(data)


app.add_websocket_route("/echo", Echo)


def send_mail(to: str, *, subject: str) -> None: ...


tasks = BackgroundTasks()
tasks.add_task(send_mail, "ada@example.com", subject="hi")
response = JSONResponse({"ok": True}, background=tasks)
single = PlainTextResponse("ok", background=BackgroundTask(send_mail, "bob@x.org", subject="x"))
app.add_middleware(CORSMiddleware, allow_origins=["https://example.com"], max_age=60)

# Each line below is a mistake the checker must report.
app.add_middleware(CORSMiddleware, allow_orgins=["https://example.com"])  # E1
app.add_middleware(CORSMiddleware, max_age="a minute")  # E2
tasks.add_task(send_mail, "ada@example.com", subjet="hi")  # E3
app.post("/big", max_body=10)  # E4
"""


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """mypy --strict's messages on ``USER_CODE``, by line number."""
    directory = tmp_path_factory.mktemp("typing")
    source = directory / "user_app.py"
    source.write_text(textwrap.dedent(USER_CODE))
    stdout, stderr, _ = mypy_api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(directory / "cache"),
            "--python-version",
            "3.10",
            str(source),
        ]
    )
    assert not stderr, stderr
    by_line: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        found = re.match(r".*user_app\.py:(\d+): (?:error|note): (.*)", line)
        if found:
            number = int(found.group(1))
            text = source.read_text().splitlines()[number - 1]
            tag = text.rsplit("# ", 1)[-1] if "  # E" in text else f"line {number}: {text}"
            by_line.setdefault(tag, []).append(found.group(2))
    return by_line


def revealed(report: dict[str, list[str]], fragment: str) -> str:
    """The type mypy revealed on the line holding ``fragment``."""
    for tag, messages in report.items():
        if fragment in tag:
            return " ".join(m for m in messages if m.startswith("Revealed type"))
    raise AssertionError(f"no message for {fragment!r}: {report}")


def test_a_declared_state_is_typed_and_a_bare_request_needs_no_parameter(
    mypy_report: dict[str, list[str]],
) -> None:
    assert "user_app.Pool" in revealed(mypy_report, 'request.state["pool"]')
    assert "user_app.Pool" in revealed(mypy_report, "request.state.pool")
    assert "microasgi.datastructures.State" in revealed(mypy_report, "reveal_type(request.state)")
    assert "user_app.Pool" in revealed(mypy_report, 'websocket.state["pool"]')


def test_only_the_mistakes_are_reported(mypy_report: dict[str, list[str]]) -> None:
    unexpected = {
        tag: [m for m in messages if not m.startswith("Revealed type")]
        for tag, messages in mypy_report.items()
        if not tag.startswith("E")
    }
    assert {tag: m for tag, m in unexpected.items() if m} == {}
    assert sorted(tag for tag in mypy_report if tag.startswith("E")) == ["E1", "E2", "E3", "E4"]
    assert any("allow_orgins" in message for message in mypy_report["E1"])
    assert any("max_age" in message for message in mypy_report["E2"])
    assert any("subjet" in message for message in mypy_report["E3"])
    assert any("max_body" in message for message in mypy_report["E4"])


# --- the same typo at run time ------------------------------------------------------


def app_with_a_typo() -> App:
    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        return "index"

    options: dict[str, Any] = {"allow_orgins": ["https://example.com"]}  # a typo
    app.add_middleware(CORSMiddleware, **options)
    return app


@pytest.mark.anyio
async def test_a_middleware_option_typo_fails_the_test_clients_startup() -> None:
    with pytest.raises(TypeError, match="allow_orgins"):
        async with TestClient(app_with_a_typo()):
            pass


@pytest.mark.anyio
async def test_a_middleware_option_typo_is_a_failed_startup_for_the_server() -> None:
    replies: list[Message] = []

    async def receive() -> Message:
        if replies:
            await anyio.sleep_forever()
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        replies.append(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    with anyio.fail_after(5), pytest.raises(TypeError, match="allow_orgins"):
        await app_with_a_typo()(scope, receive, send)
    assert [reply["type"] for reply in replies] == ["lifespan.startup.failed"]
    assert "allow_orgins" in replies[0]["message"]


def test_the_user_code_checked_here_is_the_code_a_user_would_run() -> None:
    namespace: dict[str, Any] = {"reveal_type": lambda value: value}
    code = textwrap.dedent(USER_CODE).split("# Each line below")[0]
    exec(compile(code, str(Path(__file__).with_name("user_app.py")), "exec"), namespace)
    assert sorted(route.path for route in namespace["app"].router.routes) == [
        "/attributes",
        "/echo",
        "/items/{item_id:int}",
        "/plain",
        "/typed",
        "/upload",
        "/ws",
    ]


# --- a parameterised Request in an exception handler --------------------------------


class Config(TypedDict):
    """A lifespan state, as a user declares it."""

    motto: str


@pytest.mark.anyio
async def test_an_error_handler_taking_a_parameterised_request_answers_http_only() -> None:
    app = App()

    @app.exception_handler(404)
    async def not_found(request: Request[Config], exc: HTTPException) -> Response:
        return PlainTextResponse("no such page", 404)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        raise HTTPException(404)

    async with TestClient(app) as client:
        page = await client.get("/missing")
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/ws"):
                pass
    assert (page.status_code, page.text) == (404, "no such page")
    assert (denied.value.response.status_code, denied.value.response.text) == (404, "Not Found")
