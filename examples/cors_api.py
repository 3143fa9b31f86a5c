"""A JSON API called from a browser frontend on another origin, with cookies.

Run it, naming the frontend's origin (Vite's dev server by default)::

    FRONTEND_ORIGIN=https://app.example.com python -m microasgi examples.cors_api:app

The frontend calls it with ``fetch(url, {credentials: "include"})``. Sending JSON makes the
browser ask first (a preflight ``OPTIONS``); CORSMiddleware answers that itself, and labels
every other response so the browser lets the frontend read it. Other origins get the same
responses without the labels, so their scripts cannot read them.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from microasgi import App, HTTPException, Request
from microasgi.middleware.cors import CORSMiddleware


def create_app(frontend_origin: str) -> App:
    """Build the notes API, letting scripts from ``frontend_origin`` call it."""
    app = App()
    notes: dict[int, dict[str, Any]] = {}
    ids = itertools.count(1)

    @app.get("/api/notes")
    async def list_notes(request: Request) -> Any:
        """Every note, with the count in a header the frontend may read."""
        return list(notes.values()), 200, {"X-Total-Count": str(len(notes))}

    @app.post("/api/notes")
    async def create_note(request: Request) -> Any:
        """Add a note from ``{"text": "..."}``."""
        data = await request.json()
        text = data.get("text") if isinstance(data, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise HTTPException(422, "send {'text': 'a non-empty string'}")
        note_id = next(ids)
        notes[note_id] = {"id": note_id, "text": text}
        return notes[note_id], 201

    @app.delete("/api/notes/{note_id:int}")
    async def delete_note(request: Request, note_id: int) -> None:
        """Remove a note (204), or 404 when there is none with that id."""
        if notes.pop(note_id, None) is None:
            raise HTTPException(404, f"no note {note_id}")

    app.add_middleware(
        CORSMiddleware,
        allow_origins=[frontend_origin],
        # GET and POST with JSON, DELETE: what the frontend's fetch calls use. Content-Type
        # needs no listing: CORS-safelisted headers are always allowed.
        allow_methods=["GET", "POST", "DELETE"],
        allow_credentials=True,  # cookies (a session, say) go along
        expose_headers=["X-Total-Count"],
        max_age=3600,  # browsers may skip the preflight for an hour
    )
    return app


app = create_app(os.environ.get("FRONTEND_ORIGIN", "http://localhost:5173"))
