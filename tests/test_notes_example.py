"""examples/notes.py in process: a visitor logs in, keeps notes, logs out; a script uses the API."""

from __future__ import annotations

import uuid

import pytest

from examples.notes import app
from microasgi.testing import TestClient, TestResponse

pytestmark = pytest.mark.anyio

BASE = "http://localhost"
TOKEN = {"authorization": "Bearer ada-api-token"}


def client() -> TestClient:
    return TestClient(app, base_url=BASE)


async def log_in(
    visitor: TestClient, password: str = "lovelace", next_page: str = ""
) -> TestResponse:
    form = {"username": "ada", "password": password, "next": next_page}
    return await visitor.post("/login", data=form)


async def test_a_visitor_logs_in_keeps_a_note_and_logs_out() -> None:
    note = f"<b>note {uuid.uuid4()}</b>"
    async with client() as visitor:
        asked = await visitor.get("/notes")
        assert asked.status_code == 303
        assert asked.headers["location"] == f"{BASE}/login?next=http%3A%2F%2Flocalhost%2Fnotes"

        form = await visitor.get(asked.headers["location"])
        assert 'value="http://localhost/notes"' in form.text

        wrong = await log_in(visitor, "babbage")
        assert wrong.status_code == 401
        assert "wrong password" in wrong.text
        assert visitor.cookies == {}

        logged_in = await log_in(visitor, next_page="http://localhost/notes")
        assert logged_in.status_code == 303
        assert logged_in.headers["location"] == "/notes"
        cookie = logged_in.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie

        added = await visitor.post("/notes", data={"text": note})
        assert added.status_code == 303
        page = await visitor.get("/notes")
        assert "<h1>Notes of ada</h1>" in page.text
        assert "&lt;b&gt;note" in page.text  # escaped: a note cannot inject HTML
        assert note not in page.text

        left = await visitor.post("/logout")
        assert left.status_code == 303
        assert visitor.cookies == {}
        assert (await visitor.get("/notes")).status_code == 303


@pytest.mark.parametrize(
    ("next_page", "lands_on"),
    [
        ("/notes?sort=new", "/notes?sort=new"),
        ("http://localhost/notes", "/notes"),
        ("https://evil.example/phish", f"{BASE}/notes"),
        ("//evil.example/phish", f"{BASE}/notes"),
        ("javascript:alert(1)", f"{BASE}/notes"),
        ("", f"{BASE}/notes"),
    ],
)
async def test_after_logging_in_only_pages_of_this_site_are_next(
    next_page: str, lands_on: str
) -> None:
    async with client() as visitor:
        response = await log_in(visitor, next_page=next_page)
    assert response.headers["location"] == lands_on


async def test_the_api_takes_a_bearer_token() -> None:
    text = f"from the API {uuid.uuid4()}"
    async with client() as script:
        added = await script.post("/api/notes", json={"text": text}, headers=TOKEN)
        listed = await script.get("/api/notes", headers=TOKEN)
    assert added.status_code == 201
    assert listed.json()["user"] == "ada"
    assert text in listed.json()["notes"]


async def test_the_api_refuses_a_missing_or_bad_token_with_a_401() -> None:
    async with client() as script:
        missing = await script.get("/api/notes")
        wrong = await script.get("/api/notes", headers={"authorization": "Bearer guess"})
        not_bearer = await script.get("/api/notes", headers={"authorization": "Basic YWRhOg=="})
        # A logged-in browser has no API scope: its cookie is not a token.
        await log_in(script)
        with_cookie = await script.get("/api/notes")
        served = await script.get("/api/notes", headers=TOKEN)
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert wrong.json() == {"error": "a valid 'Authorization: Bearer <token>' is needed"}
    assert not_bearer.status_code == 401
    assert with_cookie.status_code == 401
    assert served.status_code == 200


async def test_bad_notes_are_a_400() -> None:
    async with client() as script:
        empty = await script.post("/api/notes", json={"text": ""}, headers=TOKEN)
        long = await script.post("/api/notes", json={"text": "x" * 501}, headers=TOKEN)
        not_json = await script.post("/api/notes", content=b"{", headers=TOKEN)
        wrong_shape = await script.post("/api/notes", json=["text"], headers=TOKEN)
    assert [r.status_code for r in (empty, long, not_json, wrong_shape)] == [400] * 4


async def test_a_host_the_service_does_not_serve_is_a_400() -> None:
    async with TestClient(app, base_url="http://evil.example") as visitor:
        response = await visitor.get("/login")
    assert response.status_code == 400
