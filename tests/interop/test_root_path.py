"""Behind a proxy that strips a prefix: every server routes the same under a root path.

Each server is started with root path ``/base`` (granian: ``--url-path-prefix``) and
receives the paths a stripping proxy forwards. uvicorn puts the root path into
``path``, the others leave ``path`` as received (test_server_facts shows it): microasgi
must route both the same, and build URLs that include the root path.
"""

from __future__ import annotations

from interop import servers as s

ROOT = "/base"
CONFIGS = [s.UVICORN_H11, s.HYPERCORN_ASYNCIO, s.DAPHNE, s.GRANIAN]

behind_proxy = s.server_fixture("interop.app:app", CONFIGS, root_path=ROOT)


def test_routes_and_urls_under_a_root_path(behind_proxy: s.Server) -> None:
    client = behind_proxy.client()
    public = behind_proxy.base_url + ROOT
    assert client.get("/").text == "Hello, world!"
    assert client.get("/users/3").json() == {"id": 3, "is_int": True}
    assert client.get("/nowhere").status_code == 404
    assert client.get("/links").json() == {
        "user": f"{public}/users/3",
        "ping": f"{public}/sub/ping",
        "path": "/users/3",
    }


def test_mounted_apps_under_a_root_path(behind_proxy: s.Server) -> None:
    client = behind_proxy.client()
    public = behind_proxy.base_url + ROOT
    # Below the outermost App, scopes are spec-style: path includes root_path.
    assert client.get("/sub/ping").json() == {
        "pong": True,
        "path": f"{ROOT}/sub/ping",
        "root_path": f"{ROOT}/sub",
        "url": f"{public}/sub/ping",
    }
    raw = client.get("/raw/facts").json()
    assert (raw["path"], raw["root_path"]) == (f"{ROOT}/raw/facts", f"{ROOT}/raw")


def test_redirect_keeps_the_root_path(behind_proxy: s.Server) -> None:
    redirect = behind_proxy.client().get("/users/3/")
    assert redirect.status_code == 308
    assert redirect.headers["location"] in {
        f"{ROOT}/users/3",
        f"{behind_proxy.base_url}{ROOT}/users/3",
    }


def test_websocket_under_a_root_path(behind_proxy: s.Server) -> None:
    with behind_proxy.ws_connect("/ws/text") as ws:
        ws.send("under a root path")
        assert ws.recv(timeout=5) == "under a root path"
