"""A small notes service: log in through a form, keep notes, read them from a JSON API.

Run it with ``python -m microasgi examples.notes:app`` and open http://127.0.0.1:8000/:
log in as ``ada`` with the password ``lovelace``. The pages keep who you are in a signed
session cookie (HttpOnly, SameSite=Lax, so a form on another site cannot post with it).
The JSON API takes a token instead: ``curl -H "Authorization: Bearer ada-api-token"
http://127.0.0.1:8000/api/notes``.

Settings come from the environment: ``NOTES_SECRET_KEY`` signs the cookies (a random one
by default: sessions then end when the server restarts), ``NOTES_API_TOKEN`` is ada's
token, and ``NOTES_ALLOWED_HOSTS`` lists the host names the service answers on.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from html import escape
from urllib.parse import urlsplit

import anyio

from microasgi import App, HTMLResponse, JSONResponse, RedirectResponse, Request, Response
from microasgi.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    SimpleUser,
    requires,
)
from microasgi.middleware.authentication import AuthenticationMiddleware
from microasgi.middleware.sessions import SessionMiddleware
from microasgi.middleware.trustedhost import TrustedHostMiddleware
from microasgi.requests import HTTPConnection

MAX_NOTES = 100  # per user: memory stays bounded whatever a client sends
MAX_NOTE_LENGTH = 500
ITERATIONS = 100_000  # PBKDF2 rounds: slow for someone guessing, quick for one login


def hash_password(password: str, salt: bytes) -> bytes:
    """A password's PBKDF2-SHA256 hash (in a real app: a library such as argon2-cffi)."""
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)


_SALT = secrets.token_bytes(16)
USERS = {"ada": (_SALT, hash_password("lovelace", _SALT))}
TOKENS = {os.environ.get("NOTES_API_TOKEN", "ada-api-token"): "ada"}
NOTES: dict[str, list[str]] = {"ada": ["Buy more punched cards"]}


def check_password(username: str, password: str) -> bool:
    """Tell whether ``password`` is ``username``'s, in the same time for unknown users."""
    salt, expected = USERS.get(username, (_SALT, b""))
    return hmac.compare_digest(hash_password(password, salt), expected)


class NotesBackend(AuthenticationBackend):
    """The pages' user from the session; the API's from a Bearer token."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """Who is asking: a token's owner, the session's user, or nobody (None)."""
        header = conn.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            user = TOKENS.get(token.strip()) if scheme.lower() == "bearer" else None
            if user is None:
                raise AuthenticationError("a valid 'Authorization: Bearer <token>' is needed")
            return AuthCredentials(["authenticated", "api"]), SimpleUser(user)
        user = conn.session.get("user")
        if user in USERS:
            return AuthCredentials(["authenticated"]), SimpleUser(user)
        return None


def token_refused(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    """A bad token is a 401 that says how to authenticate, as APIs answer."""
    return JSONResponse({"error": str(exc)}, 401, headers={"www-authenticate": "Bearer"})


app = App()
app.add_middleware(AuthenticationMiddleware, backend=NotesBackend(), on_error=token_refused)
app.add_middleware(
    SessionMiddleware, secret_key=os.environ.get("NOTES_SECRET_KEY") or secrets.token_urlsafe(32)
)
app.add_middleware(
    TrustedHostMiddleware,
    allowed_hosts=os.environ.get("NOTES_ALLOWED_HOSTS", "127.0.0.1,localhost").split(","),
)

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>{title}</title>
<h1>{title}</h1>
{body}
"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """An HTML page; ``title`` is escaped here, ``body`` by the caller."""
    return HTMLResponse(PAGE.format(title=escape(title), body=body), status)


def safe_next(request: Request, target: str) -> str:
    """Where to go after logging in: ``target`` if it is a page of this site, else the notes."""
    parts = urlsplit(target)
    here = request.url
    same_site = (parts.scheme, parts.netloc) in (("", ""), (here.scheme, here.raw_authority))
    if same_site and parts.path.startswith("/") and not parts.path.startswith("//"):
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return str(request.url_for("notes"))


@app.get("/")
async def home(request: Request) -> RedirectResponse:
    """The notes are the home page."""
    return RedirectResponse(str(request.url_for("notes")), 303)


@app.get("/login", name="login")
async def login_form(request: Request, error: str = "", status: int = 200) -> HTMLResponse:
    """The login form; ``next`` (set by ``@requires``) rides along in a hidden field."""
    message = f'<p id="error">{escape(error)}</p>' if error else ""
    return page(
        "Log in",
        f'{message}<form id="login" method="post" action="{request.url_for("login")}">'
        f'<input type="hidden" name="next" value="{escape(request.query.get("next", ""))}">'
        '<label>User <input id="username" name="username" autocomplete="username"></label>'
        '<label>Password <input id="password" name="password" type="password"></label>'
        "<button>Log in</button></form>",
        status,
    )


@app.post("/login")
async def login(request: Request) -> Response:
    """Check the password (in a worker thread: hashing is slow on purpose), then remember."""
    form = await request.form()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    if not await anyio.to_thread.run_sync(check_password, username, password):
        return await login_form(request, "Unknown user or wrong password.", 401)
    request.session.clear()  # a new session for a new login
    request.session["user"] = username
    return RedirectResponse(safe_next(request, str(form.get("next", ""))), 303)


@app.post("/logout")
async def logout(request: Request) -> RedirectResponse:
    """Forget the user: the session cookie is removed."""
    request.session.clear()
    return RedirectResponse(str(request.url_for("login")), 303)


@app.get("/notes", name="notes")
@requires("authenticated", redirect="login")
async def notes_page(request: Request) -> HTMLResponse:
    """The user's notes, a form to add one, and a button to log out."""
    items = "".join(f"<li>{escape(note)}</li>" for note in NOTES.get(request.user.identity, []))
    return page(
        f"Notes of {request.user.display_name}",
        f'<ul id="notes">{items}</ul>'
        f'<form id="add" method="post" action="{request.url_for("add_note")}">'
        f'<input id="text" name="text" maxlength="{MAX_NOTE_LENGTH}" required>'
        "<button>Add</button></form>"
        f'<form id="logout" method="post" action="{request.url_for("logout")}">'
        "<button>Log out</button></form>",
    )


def add(user: str, text: str) -> list[str]:
    """Add a note for ``user`` (refused past the bounds); return their notes."""
    notes = NOTES.setdefault(user, [])
    if not text or len(text) > MAX_NOTE_LENGTH or len(notes) >= MAX_NOTES:
        raise ValueError(f"a note is 1 to {MAX_NOTE_LENGTH} characters, {MAX_NOTES} at most")
    notes.append(text)
    return notes


@app.post("/notes", name="add_note")
@requires("authenticated", redirect="login")
async def add_note(request: Request) -> Response:
    """Add a note from the page's form."""
    try:
        add(request.user.identity, str((await request.form()).get("text", "")).strip())
    except ValueError as exc:
        return page("Not added", f"<p>{escape(str(exc))}</p>", 400)
    return RedirectResponse(str(request.url_for("notes")), 303)


@app.get("/api/notes")
@requires("api", status_code=401)
async def api_notes(request: Request) -> dict[str, object]:
    """The token owner's notes, as JSON."""
    return {"user": request.user.identity, "notes": NOTES.get(request.user.identity, [])}


@app.post("/api/notes")
@requires("api", status_code=401)
async def api_add_note(request: Request) -> tuple[dict[str, object], int]:
    """Add a note from ``{"text": ...}``."""
    body = await request.json()
    text = body.get("text") if isinstance(body, dict) else None
    try:
        notes = add(request.user.identity, text if isinstance(text, str) else "")
    except ValueError as exc:
        return {"error": str(exc)}, 400
    return {"user": request.user.identity, "notes": notes}, 201
