"""Tutorial step 5: test the app in-process with TestClient (no server needed).

Run with ``pytest step5_tests.py`` from this folder (``pip install pytest anyio``).
"""

from __future__ import annotations

import pytest
import step2_api
import step3_forms
import step4_chat

from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio  # run each async test on an event loop (asyncio by default)


async def test_notes_api() -> None:
    async with TestClient(step2_api.app) as client:
        created = await client.post("/api/notes", json={"text": "Buy milk"})
        assert created.status_code == 201
        note = created.json()
        assert created.headers["location"] == f"http://testserver/api/notes/{note['id']}"

        found = await client.get("/api/notes", params={"q": "milk"})
        assert note in found.json()

        assert (await client.get(f"/api/notes/{note['id']}")).json() == note
        assert (await client.delete(f"/api/notes/{note['id']}")).status_code == 204
        assert (await client.get(f"/api/notes/{note['id']}")).status_code == 404


async def test_bad_input_is_a_clear_4xx() -> None:
    async with TestClient(step2_api.app) as client:
        assert (await client.post("/api/notes", content=b"{not json")).status_code == 400
        assert (await client.post("/api/notes", json={"text": " "})).status_code == 422
        assert (await client.get("/api/notes/abc")).status_code == 404


async def test_upload() -> None:
    async with TestClient(step3_forms.app) as client:
        files = {"file": ("hello.txt", b"Hello!", "text/plain")}
        sent = await client.post("/upload", data={"title": "Greeting"}, files=files)
        assert sent.status_code == 303
        assert sent.headers["location"] == "http://testserver/upload"

        page = await client.get("/upload")
        assert "Greeting" in page.text

        too_big = {"file": ("big.bin", b"x" * (3 * 1024 * 1024), "application/octet-stream")}
        refused = await client.post("/upload", data={"title": "Big"}, files=too_big)
        assert refused.status_code == 413


async def test_chat() -> None:
    async with (
        TestClient(step4_chat.app) as client,
        client.websocket_connect("/ws/lobby?name=ann") as ann,
    ):
        assert await ann.receive_json() == {"user": "*", "text": "ann joined"}
        async with client.websocket_connect("/ws/lobby?name=bob") as bob:
            assert await ann.receive_json() == {"user": "*", "text": "bob joined"}
            assert await bob.receive_json() == {"user": "*", "text": "bob joined"}
            await bob.send_text("hi ann")
            assert await ann.receive_json() == {"user": "bob", "text": "hi ann"}
        assert await ann.receive_json() == {"user": "*", "text": "bob left"}
