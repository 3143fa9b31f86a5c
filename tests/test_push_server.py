"""examples/push.py under hypercorn, HTTP/2 over TLS: the CSS really is pushed.

An `h2` client that reads the frames (tests/interop/h2client.py) sees the PUSH_PROMISE
for the stylesheet and the pushed response. The same server over HTTP/1.1 advertises no
push, and an HTTP/2 client that disables push (as browsers now do) still gets the page.
The certificate is made at test time with trustme; the server binds 127.0.0.1 on a free
port and is killed by the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h2.settings
import pytest
from interop import servers as s
from interop.h2client import H2Client

pytestmark = pytest.mark.interop

APP = "examples.push:app"
CSS_PATH = "/style.css"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> s.TLSFiles:
    return s.make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module", params=[s.HYPERCORN_ASYNCIO_H2, s.HYPERCORN_TRIO_H2], ids=str)
def server(
    request: pytest.FixtureRequest, tls: s.TLSFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[s.Server]:
    config: s.ServerConfig = request.param
    log_dir: Path = tmp_path_factory.mktemp(f"push-{config.name}")
    with s.running(config, APP, log_dir, tls=tls) as running:
        yield running


def test_the_page_comes_with_a_push_promise_for_its_css(server: s.Server) -> None:
    context = server.ssl_context()
    assert context is not None
    with H2Client(s.HOST, server.port, context) as client:
        exchange = client.request("GET", "/", headers=[("accept-encoding", "identity")])
    assert exchange.connection_error is None, server.log()
    page = exchange.response
    assert page.status == 200
    assert b"pushed with the page" in page.body
    assert list(exchange.pushes) == [CSS_PATH]
    promised, pushed = exchange.pushes[CSS_PATH]
    promise = dict(promised)
    assert promise[":method"] == "GET"
    assert promise[":path"] == CSS_PATH
    assert promise["accept"] == "text/css,*/*;q=0.1"
    assert promise["accept-encoding"] == "identity"
    assert pushed.status == 200
    assert pushed.ended
    assert dict(pushed.headers)["content-type"] == "text/css; charset=utf-8"
    assert b"font:" in pushed.body


def test_over_http11_nothing_is_pushed_and_the_page_says_so(server: s.Server) -> None:
    with server.client(http2=False) as client:
        response = client.get("/")
    assert response.http_version == "HTTP/1.1"
    assert response.status_code == 200
    assert "fetched after the page" in response.text
    assert response.headers["link"] == f"<{CSS_PATH}>; rel=preload; as=style"


def test_a_client_that_disables_push_still_gets_the_page(server: s.Server) -> None:
    # Browsers have dropped push: they send SETTINGS_ENABLE_PUSH=0, and so does httpx.
    context = server.ssl_context()
    assert context is not None
    with H2Client(s.HOST, server.port, context) as client:
        client.conn.update_settings({h2.settings.SettingCodes.ENABLE_PUSH: 0})
        exchange = client.request("GET", "/")
        css = client.request("GET", CSS_PATH)
    assert exchange.connection_error is None, server.log()
    assert exchange.pushes == {}
    assert exchange.response.status == 200
    assert b"<h1>Pushed</h1>" in exchange.response.body
    assert css.response.status == 200
    with server.client(http2=True) as httpx_client:
        response = httpx_client.get("/")
    assert (response.http_version, response.status_code) == ("HTTP/2", 200)
    assert "Traceback" not in server.log()


def test_the_showcase_pushes_below_its_mount_prefix(
    tls: s.TLSFiles, tmp_path_factory: pytest.TempPathFactory
) -> None:
    log_dir = tmp_path_factory.mktemp("push-showcase")
    with s.running(s.HYPERCORN_ASYNCIO_H2, "examples.showcase:app", log_dir, tls=tls) as server:
        context = server.ssl_context()
        assert context is not None
        with H2Client(s.HOST, server.port, context) as client:
            exchange = client.request("GET", "/push/")
    assert exchange.response.status == 200, server.log()
    assert list(exchange.pushes) == ["/push/style.css"]
    assert exchange.pushes["/push/style.css"][1].status == 200
