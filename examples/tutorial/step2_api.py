"""Tutorial step 2: a JSON API with path parameters and the query string.

Run it with ``python -m microasgi step2_api:app``, then
``curl -X POST localhost:8000/api/notes -d '{"text": "buy milk"}'``.
"""

from __future__ import annotations

import itertools
from typing import Any

from microasgi import App, HTTPException, Request

app = App()
notes: dict[int, dict[str, Any]] = {}
next_id = itertools.count(1)


@app.get("/api/notes")
async def list_notes(request: Request) -> list[dict[str, Any]]:
    """Every note, optionally filtered: ``?q=milk&limit=10``."""
    q = request.query.get("q", "").lower()
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        raise HTTPException(400, "limit must be an integer") from None
    found = [note for note in notes.values() if q in note["text"].lower()]
    return found[: max(limit, 0)]


@app.post("/api/notes")
async def create_note(request: Request) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create a note from ``{"text": "..."}``: 201, with its URL in ``Location``."""
    data = await request.json()  # invalid JSON: 400 for you
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise HTTPException(422, 'send {"text": "a non-empty string"}')
    note = {"id": next(next_id), "text": text.strip()}
    notes[note["id"]] = note
    location = str(request.url_for("get_note", note_id=note["id"]))
    return note, 201, {"location": location}


@app.get("/api/notes/{note_id:int}")
async def get_note(request: Request, note_id: int) -> dict[str, Any]:
    """One note; ``note_id`` arrives as an int (``/api/notes/abc`` is a 404)."""
    if note_id not in notes:
        raise HTTPException(404, f"no note {note_id}")
    return notes[note_id]


@app.delete("/api/notes/{note_id:int}")
async def delete_note(request: Request, note_id: int) -> None:
    """Delete a note: returning None answers 204 No Content."""
    if notes.pop(note_id, None) is None:
        raise HTTPException(404, f"no note {note_id}")
