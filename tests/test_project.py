"""The project's promises about itself: the README's commands and what CI runs agree."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from sse_events import parse as parse_events

from microasgi.testing import TestClient

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.anyio


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text)


def test_readme_opens_with_the_serve_and_test_commands() -> None:
    serve, gate = readme_commands()[:2]
    assert "python -m microasgi examples.showcase:app" in serve
    assert "nox" in gate


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    gate = readme_commands()[1]
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in script if line and not line.startswith(("#", "set ", "cd "))]
    assert commands == [gate]


async def test_hello_example() -> None:
    from examples.hello import app

    async with TestClient(app) as client:
        assert (await client.get("/")).text == "Hello, world!"
        assert (await client.get("/users/3")).json() == {"id": 3}


async def test_showcase_serves_every_part() -> None:
    from examples.showcase import app

    async with TestClient(app) as client:
        index = await client.get("/")
        assert index.status_code == 200
        links = ["/api/items/7?q=demo", "/stream", "/events", "/chat/", "/push/", "/upload/"]
        for link in [*links, "/static/"]:
            assert f'href="{link}"' in index.text
            assert (await client.get(link)).status_code == 200, link
        page = await client.get("/upload/")
        assert 'action="/upload/upload"' in page.text
        uploaded = await client.post("/upload/upload", files={"file": ("a.txt", b"abc")})
        assert "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" in uploaded.text
        notes = await client.get("/notes/api/notes", headers={"origin": "http://localhost:5173"})
        assert notes.headers["access-control-allow-origin"] == "http://localhost:5173"
        css = await client.get("/static/style.css", headers={"range": "bytes=0-9"})
        assert css.status_code == 206
        assert len(css.content) == 10
        item = (await client.get("/api/items/7?q=demo")).json()
        assert item == {"id": 7, "q": "demo", "url": "http://testserver/api/items/7"}


async def test_the_showcase_event_stream_resumes_after_the_last_event_id() -> None:
    from examples.showcase import app

    async with TestClient(app) as client:
        page = await client.get("/events")
        assert 'new EventSource("/events/stream")' in page.text
        first = await client.get("/events/stream")
        assert first.headers["content-type"] == "text/event-stream; charset=utf-8"
        resumed = await client.get("/events/stream", headers={"last-event-id": "7"})
        finished = await client.get("/events/stream", headers={"last-event-id": "11"})
        nonsense = await client.get("/events/stream", headers={"last-event-id": "9" * 5000})
    events = parse_events(first.content)
    assert [(e.data, e.last_event_id) for e in events] == [(f"event {n}", str(n)) for n in range(4)]
    assert [e.data for e in parse_events(resumed.content)] == [f"event {n}" for n in range(8, 12)]
    assert finished.status_code == 204  # all sent: the browser stops reconnecting
    assert nonsense.status_code == 200  # an id it never sent: from the start, not a 500


async def test_no_link_on_the_showcase_pages_is_broken() -> None:
    """Every page reachable from the home page, and every link and asset on them, answers 200.

    The static site is mounted under ``/static`` here and at the root in its own example,
    so its pages must link relatively.
    """
    from examples.showcase import app

    link = re.compile(r'(?:href|src)="([^"#]+)')
    seen: dict[str, int] = {}
    todo = ["http://testserver/"]
    async with TestClient(app) as client:
        while todo and len(seen) < 100:
            url = todo.pop()
            if url in seen:
                continue
            response = await client.get(url)
            seen[url] = response.status_code
            if response.headers.get("content-type", "").startswith("text/html"):
                for target in link.findall(response.text):
                    absolute = urljoin(url, target)
                    if urlsplit(absolute).netloc == "testserver":
                        todo.append(absolute)
    assert len(seen) < 100, "the crawl did not end"
    assert "http://testserver/static/guide/" in seen
    assert {url: status for url, status in seen.items() if status != 200} == {}
