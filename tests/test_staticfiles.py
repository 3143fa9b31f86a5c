"""StaticFiles mounted in an App: what it serves, and every way of asking for what it must not."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest
from asgi_harness import DISCONNECT, body_of, http_scope, run, start_of

from microasgi import App
from microasgi._types import Message, Scope
from microasgi.staticfiles import StaticFiles
from microasgi.testing import TestClient, WebSocketDenied

pytestmark = pytest.mark.anyio

SECRET = b"the secret outside the directory"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A public directory to serve, with secrets beside it and symlinks in it."""
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "key.txt").write_bytes(SECRET)
    # A sibling whose name starts with the served one's: a prefix check alone lets it through.
    (tmp_path / "public_evil").mkdir()
    (tmp_path / "public_evil" / "x.txt").write_bytes(SECRET)
    public = tmp_path / "public"
    public.mkdir()
    (public / "hello.txt").write_bytes(b"hello, world\n")
    (public / "with space.txt").write_bytes(b"spaced")
    (public / "index.html").write_bytes(b"<h1>home</h1>")
    (public / "sub").mkdir()
    (public / "sub" / "index.html").write_bytes(b"<h1>sub</h1>")
    (public / "sub" / "page.html").write_bytes(b"<p>page</p>")
    (public / "a b").mkdir()
    (public / "a b" / "index.html").write_bytes(b"<p>a b</p>")
    (public / "no_index").mkdir()
    (public / "no_index" / "file.txt").write_bytes(b"x")
    (public / "link_in").symlink_to(public / "hello.txt")
    (public / "link_out").symlink_to(tmp_path / "secret.txt")
    (public / "dirlink_out").symlink_to(tmp_path / "private")
    (public / "sibling").symlink_to(tmp_path / "public_evil")
    return public


def make_app(directory: Path, **options: Any) -> App:
    app = App()
    app.mount("/static", StaticFiles(directory=directory, **options), name="static")
    return app


async def get(app: App, path: str, **kwargs: Any) -> Any:
    async with TestClient(app) as client:
        return await client.get(path, **kwargs)


# --- serving -----------------------------------------------------------------------------


async def test_serves_a_file_with_its_metadata(tree: Path) -> None:
    r = await get(make_app(tree), "/static/hello.txt")
    assert r.status_code == 200
    assert r.content == b"hello, world\n"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-length"] == "13"
    assert r.headers["accept-ranges"] == "bytes"
    assert "etag" in r.headers
    assert "last-modified" in r.headers


async def test_serves_percent_encoded_names_and_nested_files(tree: Path) -> None:
    app = make_app(tree)
    assert (await get(app, "/static/with%20space.txt")).content == b"spaced"
    assert (await get(app, "/static/sub/page.html")).content == b"<p>page</p>"
    assert (await get(app, "/static//sub//page.html")).content == b"<p>page</p>"


async def test_head_sends_headers_only(tree: Path) -> None:
    async with TestClient(make_app(tree)) as client:
        r = await client.head("/static/hello.txt")
    assert r.status_code == 200
    assert r.headers["content-length"] == "13"
    assert r.content == b""


async def test_not_modified_and_ranges_work_through_file_response(tree: Path) -> None:
    async with TestClient(make_app(tree)) as client:
        first = await client.get("/static/hello.txt")
        r = await client.get("/static/hello.txt", headers={"if-none-match": first.headers["etag"]})
        assert r.status_code == 304
        assert r.content == b""
        headers = {"if-modified-since": first.headers["last-modified"]}
        assert (await client.get("/static/hello.txt", headers=headers)).status_code == 304
        headers = {"if-modified-since": "not a date at all"}
        assert (await client.get("/static/hello.txt", headers=headers)).status_code == 200
        r = await client.get("/static/hello.txt", headers={"range": "bytes=7-11"})
        assert r.status_code == 206
        assert r.content == b"world"
        assert r.headers["content-range"] == "bytes 7-11/13"
        r = await client.get("/static/hello.txt", headers={"range": "bytes=100-"})
        assert r.status_code == 416
        assert r.headers["content-range"] == "bytes */13"


async def test_five_thousand_ranges_get_the_plain_file(tree: Path) -> None:
    header = "bytes=" + ",".join(f"{i}-{i}" for i in range(5000))
    r = await get(make_app(tree), "/static/hello.txt", headers={"range": header})
    assert r.status_code == 200
    assert r.content == b"hello, world\n"


async def test_pathsend_is_used_when_the_server_offers_it(tree: Path) -> None:
    kinds: list[str] = []
    static = StaticFiles(directory=tree)

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        async def spy(message: Message) -> None:
            kinds.append(message["type"])
            await send(message)

        await static(scope, receive, spy)

    app = App()
    app.mount("/static", recording)
    async with TestClient(app, extensions={"http.response.pathsend": {}}) as client:
        r = await client.get("/static/hello.txt")
    assert r.content == b"hello, world\n"
    assert kinds == ["http.response.start", "http.response.pathsend"]


async def test_symlink_inside_the_directory_is_served(tree: Path) -> None:
    assert (await get(make_app(tree), "/static/link_in")).content == b"hello, world\n"


async def test_follow_symlink_serves_links_that_leave(tree: Path) -> None:
    r = await get(make_app(tree, follow_symlink=True), "/static/link_out")
    assert r.status_code == 200
    assert r.content == SECRET
    # Following links is not following "..": that stays a 404.
    r = await get(make_app(tree, follow_symlink=True), "/static/../secret.txt")
    assert r.status_code == 404


# --- refusing -----------------------------------------------------------------------------

TRAVERSALS = [
    "/static/../secret.txt",
    "/static/sub/../../secret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E/secret.txt",
    "/static/.%2e/secret.txt",
    "/static/%2e./secret.txt",
    "/static/..%2fsecret.txt",
    "/static/..%2Fsecret.txt",
    "/static/%2e%2e%2fsecret.txt",
    "/static/sub%2f..%2f..%2fsecret.txt",
    "/static/..%5csecret.txt",
    "/static/..%5Csecret.txt",
    "/static/..\\secret.txt",
    "/static/sub\\..\\..\\secret.txt",
    "/static/%252e%252e/secret.txt",
    "/static/%c0%ae%c0%ae/secret.txt",
    "/static/%2fsecret.txt",
    "/static/%2F" + "%2F".join(str(Path(__file__).resolve()).split("/")[1:]),
    "/static/" + str(Path(__file__).resolve()),
    "/static/./hello.txt",
    "/static/hello.txt%00",
    "/static/%00hello.txt",
    "/static/hello.txt%00.png",
    "/static/link_out",
    "/static/dirlink_out/key.txt",
    "/static/sibling/x.txt",
    "/static/../public_evil/x.txt",
    "/static/.../secret.txt",
    "/static/" + "a/" * 3000 + "x",
    "/static/" + "x" * 5000,
]


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_nothing_outside_the_directory_is_served(tree: Path, path: str) -> None:
    r = await get(make_app(tree), path)
    assert r.status_code == 404
    assert SECRET not in r.content


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_html_mode_refuses_the_same_with_its_404_page(tree: Path, path: str) -> None:
    (tree / "404.html").write_bytes(b"<p>lost</p>")
    r = await get(make_app(tree, html=True), path)
    assert r.status_code == 404
    assert r.content == b"<p>lost</p>"


async def test_encoded_separators_are_refused_even_inside(tree: Path) -> None:
    # As Apache's AllowEncodedSlashes Off: a %2F is never a path separator to us.
    app = make_app(tree)
    assert (await get(app, "/static/sub/page.html")).status_code == 200
    assert (await get(app, "/static/sub%2fpage.html")).status_code == 404
    assert (await get(app, "/static/sub%2Fpage.html")).status_code == 404


async def test_backslash_names_are_never_served(tree: Path) -> None:
    # A legal file name on POSIX, a separator on Windows: refused everywhere alike.
    (tree / "back\\slash.txt").write_bytes(b"x")
    assert (await get(make_app(tree), "/static/back\\slash.txt")).status_code == 404
    assert (await get(make_app(tree), "/static/hello.txt\x00")).status_code == 404


async def test_symlink_to_an_absolute_path_outside_is_refused(tree: Path) -> None:
    (tree / "etc_link").symlink_to("/etc")
    assert (await get(make_app(tree), "/static/etc_link/hostname")).status_code == 404


async def test_missing_file_and_directory_without_html(tree: Path) -> None:
    app = make_app(tree)
    r = await get(app, "/static/missing.txt")
    assert r.status_code == 404
    assert r.text == "Not Found"
    assert (await get(app, "/static/sub/")).status_code == 404
    assert (await get(app, "/static/sub")).status_code == 404


async def test_only_get_and_head(tree: Path) -> None:
    async with TestClient(make_app(tree)) as client:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            r = await client.request(method, "/static/hello.txt")
            assert r.status_code == 405
            assert r.headers["allow"] == "GET, HEAD"


def test_missing_directory_is_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="does not exist"):
        StaticFiles(directory=tmp_path / "nope")


async def test_unchecked_missing_directory_gives_404(tmp_path: Path) -> None:
    app = make_app(tmp_path / "later", check_dir=False)
    assert (await get(app, "/static/a.txt")).status_code == 404
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "a.txt").write_bytes(b"now")
    assert (await get(app, "/static/a.txt")).content == b"now"


# --- html mode ----------------------------------------------------------------------------


async def test_html_serves_index_and_redirects_to_the_slash(tree: Path) -> None:
    async with TestClient(make_app(tree, html=True)) as client:
        r = await client.get("/static/")
        assert r.content == b"<h1>home</h1>"
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        r = await client.get("/static/sub/")
        assert r.content == b"<h1>sub</h1>"
        r = await client.get("/static/sub", params={"q": "1"})
        assert r.status_code == 307
        assert r.headers["location"] == "/static/sub/?q=1"
        r = await client.get("/static/a%20b")
        assert r.status_code == 307
        assert r.headers["location"] == "/static/a%20b/"
        assert (await client.get("/static/a%20b/")).content == b"<p>a b</p>"
        assert (await client.get("/static/sub/page.html")).content == b"<p>page</p>"


async def test_html_mount_root_without_slash_redirects(tree: Path) -> None:
    r = await get(make_app(tree, html=True), "/static")
    assert r.status_code == 307
    assert r.headers["location"] == "/static/"


async def test_html_not_found_page(tree: Path) -> None:
    app = make_app(tree, html=True)
    r = await get(app, "/static/missing.html")
    assert r.status_code == 404
    assert r.text == "Not Found"  # no 404.html yet
    assert (await get(app, "/static/no_index/")).status_code == 404
    (tree / "404.html").write_bytes(b"<p>lost</p>")
    r = await get(app, "/static/missing.html")
    assert r.status_code == 404
    assert r.content == b"<p>lost</p>"
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    # The 404 page is a 404, whatever the request's validators or Range say.
    etag = r.headers["etag"]
    headers = {"if-none-match": etag, "range": "bytes=0-1"}
    r = await get(app, "/static/missing.html", headers=headers)
    assert r.status_code == 404
    assert r.content == b"<p>lost</p>"


async def test_html_index_through_a_symlinked_directory_leaving_is_refused(tree: Path) -> None:
    (tree.parent / "private" / "index.html").write_bytes(SECRET)
    r = await get(make_app(tree, html=True), "/static/dirlink_out/")
    assert r.status_code == 404
    r = await get(make_app(tree, html=True), "/static/dirlink_out")
    assert r.status_code == 404


# --- the ASGI contract ---------------------------------------------------------------------


async def call(app: StaticFiles, scope: Scope) -> tuple[int, dict[str, str], bytes]:
    """Run ``app`` with a receive that only says http.disconnect: status, headers, body."""
    sent = await run(app, scope, [], then=DISCONNECT)
    start = start_of(sent)
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, body_of(sent)


async def test_path_is_taken_below_root_path(tree: Path) -> None:
    static = StaticFiles(directory=tree)
    assert (await call(static, http_scope("/mnt/hello.txt", root_path="/mnt")))[0] == 200
    # A server that leaves path relative to root_path.
    assert (await call(static, http_scope("/hello.txt", root_path="/mnt")))[0] == 200
    # root_path only counts at a "/" boundary.
    assert (await call(static, http_scope("/mnthello.txt", root_path="/mnt")))[0] == 404


async def test_redirect_never_points_to_another_host(tree: Path) -> None:
    static = StaticFiles(directory=tree, html=True)
    status, headers, _ = await call(static, http_scope("//sub"))
    assert status == 307
    assert headers["location"] == "/sub/"


async def test_served_under_a_proxy_root_path(tree: Path) -> None:
    async with TestClient(make_app(tree, html=True), root_path="/proxy") as client:
        assert (await client.get("/static/hello.txt")).content == b"hello, world\n"
        r = await client.get("/static/sub")
        assert r.status_code == 307
        assert r.headers["location"] == "/proxy/static/sub/"


async def test_websocket_is_closed(tree: Path) -> None:
    async with TestClient(make_app(tree)) as client:
        with pytest.raises(WebSocketDenied):
            async with client.websocket_connect("/static/hello.txt"):
                pass


async def test_other_scopes_are_a_clear_error(tree: Path) -> None:
    async def receive() -> Message:
        raise AssertionError("not called")

    async def send(message: Message) -> None:
        raise AssertionError("not called")

    with pytest.raises(RuntimeError, match="serves http requests"):
        await StaticFiles(directory=tree)({"type": "lifespan"}, receive, send)


def test_directory_is_resolved(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree.parent)
    assert StaticFiles(directory="public").directory == os.path.realpath(tree)


# --- examples/static_site.py -------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def site() -> App:
    """The app of examples/static_site.py."""
    spec = importlib.util.spec_from_file_location(
        "examples_static_site", EXAMPLES / "static_site.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app: App = module.app
    return app


async def test_static_site_example(site: App) -> None:
    async with TestClient(site) as client:
        home = await client.get("/")
        assert home.status_code == 200
        assert home.headers["content-type"] == "text/html; charset=utf-8"
        assert b'href="guide/"' in home.content  # relative: the showcase mounts it at /static
        css = await client.get("/style.css")
        assert css.headers["content-type"] == "text/css; charset=utf-8"
        # A browser's second visit: revalidated, nothing sent again.
        again = await client.get("/style.css", headers={"if-none-match": css.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""
        guide = await client.get("/guide")
        assert guide.status_code == 307
        assert guide.headers["location"] == "/guide/"
        assert b"<h1>Guide</h1>" in (await client.get("/guide/")).content
        missing = await client.get("/no/such/page")
        assert missing.status_code == 404
        assert b"Nothing here" in missing.content
        assert (await client.get("/../static_site.py")).status_code == 404
        assert (await client.get("/api/health")).json() == {"status": "ok"}
        download = await client.get("/download/guide")
        assert download.headers["content-disposition"] == (
            'attachment; filename="microasgi guide.html"'
        )
        assert download.content == (EXAMPLES / "static" / "guide" / "index.html").read_bytes()
