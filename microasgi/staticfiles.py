"""``StaticFiles``: an ASGI app serving one directory, and never anything outside it."""

from __future__ import annotations

import os
import stat
from typing import NamedTuple

import anyio

from microasgi._types import Receive, Scope, Send
from microasgi.fileresponse import FileResponse
from microasgi.responses import PlainTextResponse, RedirectResponse, Response
from microasgi.routing import route_path

# Percent-encodings that name a separator or a NUL: a client that sends them is either
# broken or probing for a path the server's decoding turns into a traversal.
_SUSPICIOUS_ENCODINGS = (b"%2f", b"%5c", b"%00")


class _Found(NamedTuple):
    path: str
    stat_result: os.stat_result


class StaticFiles:
    """Serve the files of ``directory``; mount it: ``app.mount("/static", StaticFiles(...))``.

    ``html=True`` serves ``index.html`` for a directory (redirecting ``/dir`` to ``/dir/``)
    and ``404.html``, when present, for what is not found. ``follow_symlink=True`` serves
    symlinks found in ``directory`` wherever they point; by default a symlink leading
    outside ``directory`` is a 404. Only GET and HEAD are answered (405 otherwise).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        html: bool = False,
        check_dir: bool = True,
        follow_symlink: bool = False,
    ) -> None:
        if check_dir and not os.path.isdir(directory):
            raise RuntimeError(f"StaticFiles directory {os.fspath(directory)!r} does not exist")
        self.html = html
        self.follow_symlink = follow_symlink
        # Resolved once: what a request resolves to is compared with this.
        resolve = os.path.abspath if follow_symlink else os.path.realpath
        self.directory = resolve(directory)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request with a file, a redirect, a 404 or a 405."""
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})
            return
        if scope["type"] != "http":
            raise RuntimeError(f"StaticFiles serves http requests, not {scope['type']!r}")
        response = await self._respond(scope)
        await response(scope, receive, send)

    async def _respond(self, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            return PlainTextResponse(
                "Method Not Allowed", status_code=405, headers={"Allow": "GET, HEAD"}
            )
        segments = _safe_segments(scope)
        if segments is None:
            return await self._not_found()
        found = await anyio.to_thread.run_sync(self._find, segments)
        if found is not None and stat.S_ISREG(found.stat_result.st_mode):
            return FileResponse(found.path, stat_result=found.stat_result)
        if found is not None and self.html:
            index = await anyio.to_thread.run_sync(self._find, [*segments, "index.html"])
            if index is not None and stat.S_ISREG(index.stat_result.st_mode):
                if not scope["path"].endswith("/"):
                    return RedirectResponse(_with_slash(scope), status_code=307)
                return FileResponse(index.path, stat_result=index.stat_result)
        return await self._not_found()

    async def _not_found(self) -> Response:
        if self.html:
            page = await anyio.to_thread.run_sync(self._find, ["404.html"])
            if page is not None and stat.S_ISREG(page.stat_result.st_mode):
                return FileResponse(page.path, status_code=404, stat_result=page.stat_result)
        return PlainTextResponse("Not Found", status_code=404)

    def _find(self, segments: list[str]) -> _Found | None:
        """Resolve ``segments`` inside the directory and stat it (blocking: run in a thread)."""
        joined = os.path.join(self.directory, *segments)
        # realpath resolves every symlink on the way, so the containment check below sees
        # where the request really leads.
        path = joined if self.follow_symlink else os.path.realpath(joined)
        if path != self.directory and not path.startswith(self.directory + os.sep):
            return None
        try:
            stat_result = os.stat(path)
        except (OSError, ValueError):
            # Missing, not a directory, too long, a symlink loop, unreadable: all a 404,
            # which tells a prober nothing about what exists.
            return None
        return _Found(path, stat_result)


def _safe_segments(scope: Scope) -> list[str] | None:
    """The request's path below the mount as path segments, or None if it is not safe."""
    path = route_path(scope)
    raw_path = scope.get("raw_path")
    if raw_path and any(code in raw_path.lower() for code in _SUSPICIOUS_ENCODINGS):
        return None
    if "\\" in path or "\0" in path:
        return None
    segments = [segment for segment in path.split("/") if segment]
    for segment in segments:
        if segment in (".", ".."):
            return None
        if os.sep in segment or (os.altsep and os.altsep in segment):
            return None
        if os.path.splitdrive(segment)[0] or os.path.isabs(segment):
            return None
    return segments


def _with_slash(scope: Scope) -> str:
    """The request's URL path with a trailing slash, as sent (still percent-encoded)."""
    raw_path = scope.get("raw_path")
    target = raw_path.decode("latin-1") if raw_path else scope["path"]
    # Never "//host/...": a Location starting so would send the browser to another site.
    target = "/" + target.lstrip("/") + "/"
    query = scope.get("query_string", b"")
    return f"{target}?{query.decode('latin-1')}" if query else target
