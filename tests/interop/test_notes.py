"""examples/notes.py under real servers: httpx logs in and calls the API, Chromium clicks through.

The browser test drives headless Chromium over the DevTools protocol with test_browser's
fixture and helpers: it is sent to the login form, logs in, sees its notes, adds one, and
logs out, while the session cookie stays out of the page's reach (HttpOnly).
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from interop import servers as s
from interop.test_browser import browser, page_of  # noqa: F401 - browser is a fixture

TOKEN = {"authorization": "Bearer ada-api-token"}

notes_server = s.server_fixture("examples.notes:app", [s.UVICORN, s.DEFAULT_OPTIONS[1]])


def test_httpx_logs_in_reads_the_protected_page_and_logs_out(notes_server: s.Server) -> None:
    client = notes_server.client()
    base = notes_server.base_url
    asked = client.get("/notes")
    assert asked.status_code == 303
    assert asked.headers["location"] == f"{base}/login?" + urlencode({"next": f"{base}/notes"})
    refused = client.post("/login", data={"username": "ada", "password": "nope"})
    assert refused.status_code == 401
    assert "session" not in client.cookies

    logged_in = client.post("/login", data={"username": "ada", "password": "lovelace"})
    assert logged_in.status_code == 303
    cookie = logged_in.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    page = client.get("/notes")
    assert page.status_code == 200
    assert "<h1>Notes of ada</h1>" in page.text

    client.post("/logout")
    assert "session" not in client.cookies
    assert client.get("/notes").status_code == 303


def test_httpx_uses_the_api_with_a_token(notes_server: s.Server) -> None:
    client = notes_server.client()
    text = f"from httpx {uuid.uuid4()}"
    assert client.get("/api/notes").status_code == 401
    wrong = client.get("/api/notes", headers={"authorization": "Bearer guess"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    added = client.post("/api/notes", json={"text": text}, headers=TOKEN)
    assert added.status_code == 201
    assert text in client.get("/api/notes", headers=TOKEN).json()["notes"]


def test_a_host_the_service_does_not_serve_is_a_400(notes_server: s.Server) -> None:
    client = notes_server.client()
    assert client.get("/login", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/login").status_code == 200


def test_chromium_logs_in_through_the_form_and_out_again(
    notes_server: s.Server,
    browser: int,  # noqa: F811 - the fixture imported above
) -> None:
    note = f"a note from chromium {uuid.uuid4()}"
    with page_of(browser) as devtools:
        devtools.call("Page.navigate", url=f"{notes_server.base_url}/notes")
        devtools.wait_for("document.getElementById('login') !== null", "the login form")
        assert "/login?next=" in devtools.evaluate("location.href")

        devtools.evaluate(
            "document.getElementById('username').value = 'ada';"
            "document.getElementById('password').value = 'lovelace';"
            "document.getElementById('login').requestSubmit(); true"
        )
        title = devtools.wait_for(
            "document.querySelector('#notes') && document.title", "the notes page"
        )
        assert title == "Notes of ada"
        assert devtools.evaluate("location.pathname") == "/notes"
        assert devtools.evaluate("document.cookie") == ""  # HttpOnly: scripts cannot read it

        devtools.evaluate(
            f"document.getElementById('text').value = {note!r};"
            "document.getElementById('add').requestSubmit(); true"
        )
        notes = devtools.wait_for(
            "Array.from(document.querySelectorAll('#notes li')).map(li => li.textContent)"
            f".includes({note!r}) && document.title",
            "the new note",
        )
        assert notes == "Notes of ada"

        devtools.evaluate("document.getElementById('logout').requestSubmit(); true")
        devtools.wait_for("document.getElementById('login') !== null", "the login form again")
        devtools.call("Page.navigate", url=f"{notes_server.base_url}/notes")
        devtools.wait_for(
            "location.pathname === '/login' && document.getElementById('login') !== null",
            "the login form after logging out",
        )
