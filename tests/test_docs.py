"""The documentation cannot drift from the code.

Every fenced code block in ``docs/`` is one of:

- an include of a file (``--8<-- "examples/..."``): the file must exist, and each
  file of ``examples/tutorial/`` is also exercised here as a user would;
- a ``python`` block: run, in order, in one namespace per page (top-level ``await`` and
  ``async with`` allowed), on asyncio and on trio. A block preceded by the line
  ``<!-- fragment -->`` only has to compile, and so does a block titled after another
  framework (``title="Starlette"``, ``title="Quart"``), which also runs when that
  framework is installed;
- a shell block (``sh``): each command is checked against the project (the app it names
  imports, the extra it installs exists, the nox session exists, the CLI accepts the
  options);
- a ``text`` block (diagrams, wire output): not code.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib
import importlib.util
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from interop import servers as s

import microasgi.__main__ as cli
from microasgi.testing import TestClient, WebSocketDenied
from microasgi.websockets import WebSocketDisconnect

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TUTORIAL = ROOT / "examples" / "tutorial"

# The tutorial is a folder a user works in: its modules import one another by bare name.
if str(TUTORIAL) not in sys.path:
    sys.path.insert(0, str(TUTORIAL))

FOREIGN = ("Starlette", "Quart")
LANGUAGES = {"python", "sh", "text", "toml", "dockerfile", "nginx", "html", "ini"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)[ \t]*(?P<lang>[\w+-]*)(?P<info>.*)$")
INCLUDE = re.compile(r'^\s*--8<--\s+"(?P<path>[^":]+)(?::[^"]*)?"\s*$')


@dataclasses.dataclass
class Block:
    """One fenced code block of a docs page."""

    page: Path
    line: int
    lang: str
    info: str
    source: str
    fragment: bool

    @property
    def includes(self) -> list[str]:
        """The files this block includes (empty for a block written inline)."""
        return [m["path"] for line in self.source.splitlines() if (m := INCLUDE.match(line))]

    @property
    def foreign(self) -> str | None:
        """The other framework this block is written for, if it is titled so."""
        for name in FOREIGN:
            if f'title="{name}' in self.info:
                return name
        return None

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def parse_blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with its indentation removed."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        start = FENCE.match(lines[index])
        if start is None:
            index += 1
            continue
        indent, fence = start["indent"], start["fence"]
        previous = next(
            (lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), ""
        )
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].strip() != fence:
            body.append(lines[index][len(indent) :] if lines[index].startswith(indent) else "")
            index += 1
        if index == len(lines):
            raise AssertionError(f"{page}: unclosed code block at line {index}")
        blocks.append(
            Block(
                page=page,
                line=index - len(body),
                lang=start["lang"].lower(),
                info=start["info"],
                source="\n".join(body) + "\n",
                fragment=previous == "<!-- fragment -->",
            )
        )
        index += 1
    return blocks


# CONTRIBUTING.md is included into the site whole: its blocks are docs blocks too.
PAGES = [*sorted(DOCS.rglob("*.md")), ROOT / "CONTRIBUTING.md"]
BLOCKS = [block for page in PAGES for block in parse_blocks(page)]


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


# --- every block is of a known kind -----------------------------------------------


def test_docs_exist() -> None:
    assert len(PAGES) > 20
    assert sum(1 for b in BLOCKS if b.lang == "python" and not b.includes) > 50


@pytest.mark.parametrize("block", BLOCKS, ids=Block.where)
def test_block_has_a_known_kind(block: Block) -> None:
    assert block.lang in LANGUAGES, f"{block.where()}: say which language this block is"
    if block.includes:
        lines = [line for line in block.source.splitlines() if line.strip()]
        assert len(lines) == len(block.includes), f"{block.where()}: mix of include and code"
        for path in block.includes:
            assert (ROOT / path).is_file(), f"{block.where()}: {path} does not exist"
    elif block.lang not in ("python", "sh", "text"):
        raise AssertionError(f"{block.where()}: a {block.lang} block must be an included file")


def test_every_tutorial_file_is_in_the_docs() -> None:
    included = {path for block in BLOCKS for path in block.includes}
    for file in sorted(TUTORIAL.rglob("*")):
        if file.is_file() and "__pycache__" not in file.parts:
            assert str(file.relative_to(ROOT)) in included, f"{file} is not shown in the docs"


# --- python blocks ----------------------------------------------------------------

CODE_PAGES = sorted({b.page for b in BLOCKS if b.lang == "python" and not b.includes})


def compile_block(block: Block) -> types.CodeType:
    """Compile one block, with top-level await allowed (as in an async REPL)."""
    return compile(
        block.source, block.where(), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )


@pytest.mark.parametrize(
    "block",
    [b for b in BLOCKS if b.lang == "python" and not b.includes and (b.fragment or b.foreign)],
    ids=Block.where,
)
def test_fragment_compiles(block: Block) -> None:
    compile_block(block)


@pytest.mark.parametrize("page", CODE_PAGES, ids=page_id)
async def test_page_code_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a page's blocks in order, in one namespace, as a reader would in a REPL."""
    monkeypatch.chdir(tmp_path)  # a snippet that writes files writes them here
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    for block in parse_blocks(page):
        if block.lang != "python" or block.includes or block.fragment or block.foreign:
            continue
        result = eval(compile_block(block), namespace)
        if result is not None:  # a block with top-level await compiles to a coroutine
            await result
    # A page that shows a test function shows one that passes.
    for name, value in namespace.items():
        runnable = inspect.iscoroutinefunction(value) and not inspect.signature(value).parameters
        if name.startswith("test_") and runnable:
            await value()


@pytest.mark.parametrize("framework", FOREIGN)
def test_foreign_blocks_run_where_installed(framework: str) -> None:
    """The Starlette and Quart side of the migration pages is real code too."""
    blocks = [b for b in BLOCKS if b.foreign == framework]
    assert blocks, f"no block titled {framework}"
    pytest.importorskip(framework.lower())
    for block in blocks:
        exec(compile_block(block), {"__name__": "foreign"})


# --- shell blocks -----------------------------------------------------------------

# tomllib is 3.11+, and the suite also runs on 3.10: the extras' names are enough.
_EXTRAS_TABLE = (ROOT / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1]
EXTRAS = set(re.findall(r"^(\w[\w-]*)\s*=", _EXTRAS_TABLE.split("\n[")[0], re.MULTILINE))
NOX_SESSIONS = set(
    re.findall(r"@nox\.session\([^)]*\)\s*def (\w+)", (ROOT / "noxfile.py").read_text())
)
# Commands whose arguments say nothing checkable about this project.
FREE_COMMANDS = {"curl", "cd", "mkdir", "source", "docker", "git", "export", "open", "uv"}


def check_target(target: str) -> None:
    """``module:attribute`` names an ASGI app that imports."""
    module_name, _, attribute = target.partition(":")
    assert module_name, f"{target!r} is not MODULE:ATTRIBUTE"
    assert attribute, f"{target!r} is not MODULE:ATTRIBUTE"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # "Save it as hello.py": a page may name an example by the file a reader saves.
        if exc.name != module_name or not (ROOT / "examples" / f"{module_name}.py").exists():
            raise
        module = importlib.import_module(f"examples.{module_name}")
    app = getattr(module, attribute)
    assert callable(app), f"{target} is not callable"


def check_pip(args: list[str]) -> None:
    assert args[:1] == ["install"], f"pip {args}"
    for arg in args[1:]:
        if arg.startswith("-"):
            continue
        match = re.fullmatch(r"(?:microasgi|\.|-e \.)?\[([\w,-]+)\]", arg)
        if match:
            for extra in match[1].split(","):
                assert extra in EXTRAS, f"no extra {extra!r} in pyproject.toml"


def check_microasgi_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m microasgi ...``: the CLI accepts it and builds a server command."""
    commands: list[list[str]] = []
    monkeypatch.setattr(cli, "become_server", lambda cmd: commands.append(cmd) or 0)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        cli.importlib.util,
        "find_spec",
        lambda name, *a: object() if name in cli.SERVERS else real_find_spec(name, *a),
    )
    assert cli.main(args) == 0
    assert len(commands) == 1
    check_target(args[0])


def check_command(words: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Check one shell command against the project."""
    while words and "=" in words[0] and not words[0].startswith("-"):
        words = words[1:]  # VAR=value prefixes
    if not words:
        return
    command, args = Path(words[0]).name, words[1:]
    if command in ("python", "python3", "py"):
        if args[:2] == ["-m", "microasgi"]:
            check_microasgi_cli(args[2:], monkeypatch)
        elif args[:2] == ["-m", "pip"]:
            check_pip(args[2:])
        elif args[:2] == ["-m", "nox"]:
            check_command(["nox", *args[2:]], monkeypatch)
        elif args[:2] == ["-m", "venv"] or args[:2] == ["-m", "pytest"]:
            pass
        else:
            raise AssertionError(f"unchecked python command: {words}")
    elif command == "pip":
        check_pip(args)
    elif command == "nox":
        if "-s" in args:
            for name in args[args.index("-s") + 1 :]:
                if name.startswith("-"):
                    break
                assert name in NOX_SESSIONS, f"no nox session {name!r}"
    elif command == "pytest":
        for arg in args:
            if not arg.startswith("-"):
                assert (TUTORIAL / arg).exists() or (ROOT / arg).exists(), arg
    elif command in ("uvicorn", "hypercorn", "daphne"):
        check_target(next(a for a in args if not a.startswith("-") and ":" in a))
    elif command == "granian":
        assert "--interface" in args
        assert args[args.index("--interface") + 1] == "asgi"
        check_target(next(a for a in args if not a.startswith("-") and ":" in a))
    elif command not in FREE_COMMANDS:
        raise AssertionError(f"unchecked command {command!r}: teach tests/test_docs.py")


def shell_commands(source: str) -> list[list[str]]:
    """The commands of a shell block (continuation lines joined, ``&&`` split)."""
    text = source.replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("$ ")
        for part in re.split(r"&&|;|\|", line):
            words = shlex.split(part, comments=True)
            if words:
                commands.append(words)
    return commands


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "sh"], ids=Block.where)
def test_shell_block(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    for words in shell_commands(block.source):
        check_command(words, monkeypatch)


# --- the tutorial, as a user follows it -------------------------------------------

import step1_routes  # noqa: E402
import step2_api  # noqa: E402
import step3_forms  # noqa: E402
import step4_chat  # noqa: E402
import step5_tests  # noqa: E402

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "test", [getattr(step5_tests, name) for name in dir(step5_tests) if name.startswith("test_")]
)
async def test_tutorial_tests_pass(test: Any) -> None:
    """Step 5's own tests pass: what the tutorial teaches users to test holds."""
    await test()


async def test_step1_routes() -> None:
    async with TestClient(step1_routes.app) as client:
        home = await client.get("/")
        assert home.headers["content-type"] == "text/html; charset=utf-8"
        assert "/hello/world" in home.text
        hello = await client.get("/hello/Ada%20Lovelace")
        assert (hello.text, hello.headers["content-type"]) == (
            "Hello, Ada Lovelace!",
            "text/plain; charset=utf-8",
        )
        assert (await client.post("/ping")).text == "pong (POST)"
        head = await client.head("/ping")
        assert (head.status_code, head.content) == (200, b"")
        wrong = await client.put("/ping")
        assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, HEAD, OPTIONS, POST")
        assert (await client.get("/hello/a/b")).status_code == 404


async def test_step2_query_and_errors() -> None:
    async with TestClient(step2_api.app) as client:
        ids = [
            (await client.post("/api/notes", json={"text": f"tutorial note {n}"})).json()["id"]
            for n in range(3)
        ]
        limited = await client.get("/api/notes", params={"q": "TUTORIAL NOTE", "limit": "2"})
        assert len(limited.json()) == 2
        assert (await client.get("/api/notes?limit=lots")).status_code == 400
        assert (await client.post("/api/notes", json=["text"])).status_code == 422
        for note_id in ids:
            await client.delete(f"/api/notes/{note_id}")
        assert (await client.delete(f"/api/notes/{ids[0]}")).status_code == 404


async def test_step3_upload_rules() -> None:
    async with TestClient(step3_forms.app) as client:
        missing = await client.post("/upload", data={"title": "x"}, files={"other": b"a"})
        assert missing.status_code == 422
        no_title = await client.post("/upload", files={"file": ("a.txt", b"a", "text/plain")})
        assert no_title.status_code == 422
        two = {"file": ("a.txt", b"a", "text/plain"), "file2": ("b.txt", b"b", "text/plain")}
        assert (await client.post("/upload", data={"title": "t"}, files=two)).status_code == 400

        for n in range(25):
            html = (f"<script>alert({n})</script>", b"<b>hi</b>", "text/html")
            await client.post("/upload", data={"title": f"<i>{n}</i>"}, files={"file": html})
        assert len(step3_forms.app.state.uploads) == 20
        page = await client.get("/upload")
        assert "<i>24</i>" not in page.text
        assert "&lt;i&gt;24&lt;/i&gt;" in page.text
        assert "<script>" not in page.text
        last = max(step3_forms.app.state.uploads)
        download = await client.get(f"/files/{last}")
        assert download.content == b"<b>hi</b>"
        assert download.headers["content-disposition"] == "attachment"
        assert download.headers["x-content-type-options"] == "nosniff"
        assert (await client.get("/files/0")).status_code == 404


async def test_step4_chat_rules() -> None:
    async with TestClient(step4_chat.app) as client:
        page = await client.get("/")
        assert "new WebSocket" in page.text
        assert "textContent" in page.text
        async with client.websocket_connect("/ws/room%201") as ws:
            assert await ws.receive_json() == {"user": "*", "text": "anonymous joined"}
            await ws.send_text("x" * 1001)
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_json()
            assert closed.value.code == 1009
        with pytest.raises(WebSocketDenied) as denied:  # a room name cannot hold a slash
            async with client.websocket_connect("/ws/a/b"):
                pass
        assert denied.value.response.status_code == 404


async def test_step4_rooms_are_separate() -> None:
    async with (
        TestClient(step4_chat.app) as client,
        client.websocket_connect("/ws/one?name=a") as one,
        client.websocket_connect("/ws/two?name=b") as two,
    ):
        assert (await one.receive_json())["text"] == "a joined"
        assert (await two.receive_json())["text"] == "b joined"
        await two.send_text("only in two")
        assert await two.receive_json() == {"user": "b", "text": "only in two"}
        await one.send_text("only in one")
        assert await one.receive_json() == {"user": "a", "text": "only in one"}


@contextlib.contextmanager
def running(command: list[str], log: Path, answers: str | None = None) -> Iterator[None]:
    """Run ``command`` in the tutorial folder until the block ends, then stop its group.

    With ``answers``, wait (20 s at most) until that URL answers over HTTP.
    """
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TUTORIAL}"}
    with s.running_command(command, log, cwd=TUTORIAL, env=env, ready_url=answers):
        yield


def chat_through(base: str) -> None:
    """Two users chat through the tutorial's chat at ``base`` (host:port/prefix)."""
    ws_client = pytest.importorskip("websockets.sync.client")
    with ws_client.connect(f"ws://{base}/ws/lobby?name=ann", open_timeout=5) as ann:
        assert json.loads(ann.recv(timeout=5)) == {"user": "*", "text": "ann joined"}
        with ws_client.connect(f"ws://{base}/ws/lobby?name=bob", open_timeout=5) as bob:
            assert json.loads(ann.recv(timeout=5))["text"] == "bob joined"
            assert json.loads(bob.recv(timeout=5))["text"] == "bob joined"
            bob.send("hello from bob")
            assert json.loads(ann.recv(timeout=5)) == {"user": "bob", "text": "hello from bob"}
        assert json.loads(ann.recv(timeout=5)) == {"user": "*", "text": "bob left"}


@pytest.mark.interop
@pytest.mark.parametrize("server", ["uvicorn", "hypercorn", "granian"])
def test_tutorial_chat_under_a_real_server(server: str, tmp_path: Path) -> None:
    """Step 6, as written: ``python -m microasgi step4_chat:app --server ...``, two chatters."""
    if importlib.util.find_spec(server) is None:
        pytest.skip(f"{server} is not installed")
    import httpx

    port = s.free_port()
    command = [sys.executable, "-m", "microasgi", "step4_chat:app", "--server", server]
    with running(
        [*command, "--port", str(port)], tmp_path / "server.log", f"http://127.0.0.1:{port}/"
    ):
        assert "new WebSocket" in httpx.get(f"http://127.0.0.1:{port}/").text
        chat_through(f"127.0.0.1:{port}")


# --- the deployment files ---------------------------------------------------------

DEPLOY = TUTORIAL / "deploy"


# The tests that need a server package (or nginx) are marked interop: the interop session
# installs the servers and Mangum.


@pytest.mark.interop
def test_lambda_handler_answers_an_api_gateway_event() -> None:
    pytest.importorskip("mangum")
    from deploy.lambda_handler import handler

    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/api/notes",
        "rawQueryString": "",
        "headers": {"host": "abc.execute-api.example.com", "content-type": "application/json"},
        "requestContext": {
            "http": {"method": "POST", "path": "/api/notes", "protocol": "HTTP/1.1"}
            | {"sourceIp": "192.0.2.1", "userAgent": "test"},
            "domainName": "abc.execute-api.example.com",
            "requestId": "1",
            "routeKey": "$default",
            "stage": "$default",
        },
        "body": json.dumps({"text": "from lambda"}),
        "isBase64Encoded": False,
    }
    answer = handler(event, types.SimpleNamespace())
    assert answer["statusCode"] == 201
    note = json.loads(answer["body"])
    assert note["text"] == "from lambda"
    assert answer["headers"]["location"] == (
        f"https://abc.execute-api.example.com/api/notes/{note['id']}"
    )


@pytest.mark.interop
@pytest.mark.parametrize(
    ("module", "server"), [("proxied_hypercorn", "hypercorn"), ("proxied_granian", "granian")]
)
async def test_proxy_wrappers_serve_the_chat(module: str, server: str) -> None:
    pytest.importorskip(server)
    wrapped = importlib.import_module(f"deploy.{module}").app
    headers = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"}
    async with TestClient(wrapped) as client:
        page = await client.get("/", headers=headers)
        assert page.status_code == 200
        assert "new WebSocket" in page.text


def dockerfile_command() -> list[str]:
    """The CMD of deploy/Dockerfile, which must be exec-form JSON."""
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    return list(json.loads(next(line for line in lines if line.startswith("CMD "))[4:]))


def test_dockerfile_copies_and_runs_what_exists() -> None:
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    assert copies
    for sources in copies:
        for source in sources:
            assert (TUTORIAL / source).exists(), source
    for line in lines:
        if line.startswith("RUN pip install"):
            check_pip(shlex.split(line)[2:])
    cmd = dockerfile_command()
    assert cmd[0] == "uvicorn"
    check_target(cmd[1])


@pytest.mark.interop
def test_dockerfile_uses_real_uvicorn_options() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--help"], capture_output=True, text=True, check=False
    ).stdout
    if not help_text:
        pytest.skip("uvicorn is not installed")
    for option in (word for word in dockerfile_command() if word.startswith("--")):
        assert option in help_text, f"uvicorn has no option {option}"


def nginx_config(tmp_path: Path, listen: int, upstream: int) -> Path:
    """The repository's nginx.conf, on test ports, inside a minimal main config."""
    site = (DEPLOY / "nginx.conf").read_text()
    assert "listen 80;" in site
    assert "server 127.0.0.1:8000;" in site
    site = site.replace("listen 80;", f"listen 127.0.0.1:{listen};")
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};")
    return s.nginx_config(tmp_path, site)


@pytest.mark.interop
def test_nginx_conf_is_valid(tmp_path: Path) -> None:
    nginx = shutil.which("nginx")
    if nginx is None:
        pytest.skip("nginx is not installed")
    config = nginx_config(tmp_path, s.free_port(), 8000)
    result = subprocess.run(
        [nginx, "-t", "-c", str(config), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.interop
@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
def test_behind_nginx_with_a_root_path(server: str, tmp_path: Path) -> None:
    """deploy/nginx.conf in front of the app under /pinboard: links, uploads and chat work."""
    nginx = shutil.which("nginx")
    if nginx is None or importlib.util.find_spec(server) is None:
        pytest.skip(f"nginx or {server} is not installed")
    import httpx

    app_port, proxy_port = s.free_port(), s.free_port()
    site = f"127.0.0.1:{proxy_port}/pinboard"
    config = nginx_config(tmp_path, proxy_port, app_port)
    serve = {
        "uvicorn": ["--port", str(app_port), "--root-path", "/pinboard", "--proxy-headers"],
        "hypercorn": ["--bind", f"127.0.0.1:{app_port}", "--root-path", "/pinboard"],
    }[server]
    proxy = [nginx, "-c", str(config), "-p", str(tmp_path)]
    for module, check in [("step3_forms", "upload"), ("step4_chat", "chat")]:
        command = [sys.executable, "-m", server, f"{module}:app", *serve]
        with (
            running(command, tmp_path / f"{module}.log", f"http://127.0.0.1:{app_port}/"),
            running(proxy, tmp_path / "nginx.log", f"http://{site}/"),
        ):
            if check == "upload":
                files = {"file": ("hi.txt", b"hello", "text/plain")}
                sent = httpx.post(f"http://{site}/upload", data={"title": "t"}, files=files)
                assert sent.status_code == 303
                assert sent.headers["location"] == f"http://{site}/upload"
                page = httpx.get(f"http://{site}/upload").text
                assert f'href="http://{site}/files/' in page
            else:
                assert "new WebSocket" in httpx.get(f"http://{site}/").text
                chat_through(site)
