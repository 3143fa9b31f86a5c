"""A real browser: headless Chromium chats over a WebSocket and follows an event stream.

Chromium (Debian's ``chromium`` package, no browser download) opens pages served by
uvicorn; the test drives them through the DevTools protocol with a small client over
the `websockets` library: it types a message, submits the form, and waits for the
server's echo to appear in the page; and it opens the showcase's server-sent events
page, whose ``EventSource`` reconnects, and resumes, each time the stream ends.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from interop import servers as s

DEADLINE = 15.0
DEVTOOLS_URL = re.compile(r"DevTools listening on (ws://\S+)")

chat_server = s.server_fixture("interop.app:app", [s.UVICORN_H11])
showcase_server = s.server_fixture("examples.showcase:app", [s.UVICORN_H11])


def chromium_binary() -> str:
    """The installed Chromium; CI must have it, elsewhere the test is skipped."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: apt-get install chromium")
    pytest.skip("chromium is not installed (apt-get install chromium)")


@pytest.fixture
def browser(interop_tmp: Path) -> Iterator[int]:
    """A headless Chromium with DevTools on a free port; yields that port."""
    profile = interop_tmp / "chromium-profile"
    log_path = interop_tmp / "chromium.log"
    argv = [
        chromium_binary(),
        "--headless=new",
        "--no-sandbox",  # the suite runs as root in CI
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    process = s.spawn(argv, log_path)
    try:
        deadline = time.monotonic() + DEADLINE
        while not (found := DEVTOOLS_URL.search(log_path.read_text(errors="replace"))):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"chromium did not start:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.1)
        yield int(found.group(1).split(":")[2].split("/")[0])
    finally:
        s.stop_process_group(process)


class DevTools:
    """Just enough of the Chrome DevTools protocol to evaluate JavaScript in a page."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result, skipping the events in between."""
        command_id = next(self.ids)
        self.connection.send(json.dumps({"id": command_id, "method": method, "params": params}))
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            message = json.loads(self.connection.recv(timeout=DEADLINE))
            if message.get("id") == command_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result
        raise TimeoutError(method)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str) -> Any:
        """Poll a JavaScript expression until it is truthy, for a bounded time."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError:  # a page load in progress: its context went away
                value = None
            if value:
                return value
            time.sleep(0.1)
        pytest.fail(f"the page never showed {what}")


@contextlib.contextmanager
def page_of(browser: int) -> Iterator[DevTools]:
    """DevTools on the browser's one page, with page events on."""
    targets = httpx.get(f"http://127.0.0.1:{browser}/json/list", timeout=5).json()
    page = next(target for target in targets if target["type"] == "page")
    with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as connection:
        devtools = DevTools(connection)
        devtools.call("Page.enable")
        yield devtools


def test_the_browser_chats_over_the_websocket(chat_server: s.Server, browser: int) -> None:
    with page_of(browser) as devtools:
        devtools.call("Page.navigate", url=f"{chat_server.base_url}/chat")
        devtools.wait_for("document.body && document.body.dataset.state === 'open'", "open")
        devtools.evaluate(
            "document.getElementById('message').value = 'hello from chromium ✓';"
            "document.getElementById('form').requestSubmit(); true"
        )
        echoed = devtools.wait_for(
            "Array.from(document.querySelectorAll('#log li')).map(li => li.textContent)",
            "the echo",
        )
    assert echoed == ["hello from chromium ✓"]


def test_the_browser_follows_an_event_stream_and_resumes_from_the_last_event_id(
    showcase_server: s.Server, browser: int
) -> None:
    """Four events per connection; the server ends each stream, the browser comes back
    with ``Last-Event-ID`` and the stream resumes after it, until a 204 says it is over.
    Without the header the stream would start again from 0 and never end."""
    with page_of(browser) as devtools:
        devtools.call("Page.navigate", url=f"{showcase_server.base_url}/events")
        devtools.wait_for("document.body && document.body.dataset.state === 'done'", "the end")
        received = devtools.evaluate(
            "Array.from(document.querySelectorAll('#events li')).map(li => li.textContent)"
        )
        connections = devtools.evaluate("document.body.dataset.connections")
    assert received == [f"event {n} (id {n})" for n in range(12)]
    assert connections == "3"
