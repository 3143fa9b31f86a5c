"""ProxyHeadersMiddleware behind nginx, under uvicorn and hypercorn.

The deployment file examples/deploy/nginx-proxy-headers.conf runs as written (ports and
certificate paths aside) in front of tests/interop/proxy_app.py, which trusts 127.0.0.1.
Everything is on loopback, so each party has an address of its own: nginx reaches the
app from 127.0.0.1 (trusted), a visitor reaches nginx from 127.0.0.3, and a client that
goes around nginx reaches the app from 127.0.0.2 (not trusted).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from interop import servers as s

CONF = s.REPO_ROOT / "examples" / "deploy" / "nginx-proxy-headers.conf"
VISITOR = "127.0.0.3"
AROUND_THE_PROXY = "127.0.0.2"


def _server(*argv: str) -> Callable[[s.Launch], list[str]]:
    def command(launch: s.Launch) -> list[str]:
        return [arg.replace("PORT", str(launch.port)) for arg in argv] + [launch.app]

    return command


# uvicorn would apply the headers itself (its --proxy-headers is on by default): turned off,
# so what the app sees is the middleware's doing. hypercorn applies none by default.
SERVERS = [
    s.ServerConfig(
        "uvicorn",
        "uvicorn",
        _server("-m", "uvicorn", "--host", s.HOST, "--port", "PORT", "--no-proxy-headers"),
    ),
    s.ServerConfig(
        "hypercorn", "hypercorn", _server("-m", "hypercorn", "--bind", f"{s.HOST}:PORT")
    ),
]

app_server = s.server_fixture("interop.proxy_app:app", SERVERS)


def site_config(plain: int, secure: int, upstream: int, tls: s.TLSFiles) -> str:
    """The deployment file on test ports and certificates."""
    site = CONF.read_text()
    for old, new in [
        ("listen 80;", f"listen {s.HOST}:{plain};"),
        ("listen 443 ssl;", f"listen {s.HOST}:{secure} ssl;"),
        ("/etc/ssl/certs/example.com.pem", str(tls.cert)),
        ("/etc/ssl/private/example.com.key", str(tls.key)),
        ("http://127.0.0.1:8000", f"http://127.0.0.1:{upstream}"),
    ]:
        assert old in site, f"{CONF.name} no longer has {old!r}"
        site = site.replace(old, new)
    return site


@pytest.fixture
def nginx(app_server: s.Server, tls_files: s.TLSFiles, tmp_path: Path) -> Iterator[dict[str, str]]:
    """nginx in front of the app: yields its plain and TLS base URLs."""
    binary = shutil.which("nginx")
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    plain, secure = s.free_port(), s.free_port()
    config = s.nginx_config(tmp_path, site_config(plain, secure, app_server.port, tls_files))
    argv = [binary, "-c", str(config), "-p", str(tmp_path)]
    base = f"http://{s.HOST}:{plain}"
    with s.running_command(argv, tmp_path / "nginx.log", ready_url=f"{base}/whoami"):
        yield {"http": base, "https": f"https://{s.HOST}:{secure}"}


def client_from(address: str, **options: Any) -> httpx.Client:
    """An httpx client whose connections leave from ``address`` (a loopback address)."""
    transport = httpx.HTTPTransport(local_address=address, verify=options.pop("verify", True))
    return httpx.Client(transport=transport, timeout=10, **options)


def test_through_nginx_the_app_sees_the_visitor_and_https(
    nginx: dict[str, str], tls_files: s.TLSFiles
) -> None:
    verify = tls_files.client_context(("http/1.1",))
    with client_from(VISITOR, verify=verify) as visitor:
        secure = visitor.get(f"{nginx['https']}/whoami").json()
    with client_from(VISITOR) as visitor:
        plain = visitor.get(f"{nginx['http']}/whoami").json()
    assert secure == {"client": VISITOR, "scheme": "https", "url": f"{nginx['https']}/whoami"}
    assert plain == {"client": VISITOR, "scheme": "http", "url": f"{nginx['http']}/whoami"}


def test_a_visitor_forging_headers_through_nginx_is_not_believed(nginx: dict[str, str]) -> None:
    forged = {
        "x-forwarded-for": "6.6.6.6",
        "x-forwarded-proto": "https",
        "forwarded": "for=6.6.6.6",
    }
    with client_from(VISITOR) as visitor:
        seen = visitor.get(f"{nginx['http']}/whoami", headers=forged).json()
    # nginx appends the visitor's address to the forged list: the right-most untrusted wins.
    assert seen == {"client": VISITOR, "scheme": "http", "url": f"{nginx['http']}/whoami"}


def test_a_client_going_around_nginx_is_not_believed(
    app_server: s.Server, nginx: dict[str, str]
) -> None:
    forged = {
        "x-forwarded-for": "6.6.6.6",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "bank.example",
    }
    direct = f"{app_server.base_url}/whoami"
    with client_from(AROUND_THE_PROXY) as intruder:
        seen = intruder.get(direct, headers=forged).json()
    assert seen == {"client": AROUND_THE_PROXY, "scheme": "http", "url": direct}
