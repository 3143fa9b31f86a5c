"""Start real ASGI servers (and other processes) as subprocesses for the tests.

Each server binds 127.0.0.1 on a free port, is polled until it answers (bounded in
time), writes its output to a log file that failing tests show, and is stopped by
process group: SIGTERM first, SIGKILL after a bounded wait. Every test that starts a
real server goes through here, the ones outside tests/interop included.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from websockets.sync.client import ClientConnection, connect

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = REPO_ROOT / "tests"
HOST = "127.0.0.1"
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
START_ATTEMPTS = 3
LOG_TAIL = 4000
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class TLSFiles:
    """A certificate for 127.0.0.1 made at test time, and the CA that trusts it."""

    ca: trustme.CA
    cert: Path
    key: Path

    def client_context(self, alpn: tuple[str, ...] = ("h2", "http/1.1")) -> ssl.SSLContext:
        """An SSL context trusting only the test CA, offering the ``alpn`` protocols."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        context.set_alpn_protocols(list(alpn))
        return context


def make_tls_files(directory: Path) -> TLSFiles:
    """Issue a certificate for 127.0.0.1; the key is PKCS#8 because granian needs it."""
    ca = trustme.CA()
    issued = ca.issue_cert(HOST, "localhost")
    cert = directory / "cert.pem"
    key = directory / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    for extra in issued.cert_chain_pems[1:]:
        with cert.open("ab") as handle:
            handle.write(extra.bytes())
    private_key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), password=None)
    key.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TLSFiles(ca=ca, cert=cert, key=key)


RELAY_IDLE_SECONDS = 60.0


def tls_relay(host: str, port: int, context: ssl.SSLContext) -> socket.socket:
    """Connect over TLS, and hand back a plain socket whose bytes a thread relays through it.

    The one thread is the only user of the TLS socket, as OpenSSL requires.
    """
    raw = socket.create_connection((host, port), timeout=10)
    secure = context.wrap_socket(raw, server_hostname=host)
    ours, theirs = socket.socketpair()
    threading.Thread(target=_relay, args=(secure, theirs), daemon=True).start()
    return ours


def _relay(secure: ssl.SSLSocket, plain: socket.socket) -> None:
    with secure, plain, selectors.DefaultSelector() as selector:
        selector.register(secure, selectors.EVENT_READ)
        selector.register(plain, selectors.EVENT_READ)
        server_open = True
        with contextlib.suppress(OSError):  # a side gone: closing both tells the other
            while ready := {key.fileobj for key, _ in selector.select(RELAY_IDLE_SECONDS)}:
                if plain in ready:
                    data = plain.recv(65536)
                    if not data:
                        return
                    if server_open:
                        secure.settimeout(10)
                        secure.sendall(data)
                if secure in ready and not _forward(secure, plain):
                    # As a TCP peer's close would: the client reads up to the end, and its
                    # last writes (the reply to a close frame) still go somewhere.
                    server_open = False
                    selector.unregister(secure)
                    plain.shutdown(socket.SHUT_WR)


def _forward(secure: ssl.SSLSocket, plain: socket.socket) -> bool:
    """Pass on what the server sent; False once it has closed the connection."""
    # Non-blocking, and read until OpenSSL has nothing buffered: what woke the selector
    # may be a TLS record with no data in it (a session ticket).
    secure.setblocking(False)
    try:
        while data := secure.recv(65536):
            plain.sendall(data)
    except ssl.SSLWantReadError:
        return True
    return False


@dataclass(frozen=True)
class Launch:
    """What a command line needs to know to start one server."""

    app: str
    port: int
    root_path: str | None
    tls: TLSFiles | None


@dataclass(frozen=True)
class ServerConfig:
    """One way of running one server, as a user would on the command line."""

    name: str
    family: str
    command: Callable[[Launch], list[str]]
    tls: bool = False
    http2: bool = False
    workers: int = 1
    trio: bool = False
    lifespan: bool = True

    def __str__(self) -> str:
        return self.name


def _uvicorn(*options: str) -> Callable[[Launch], list[str]]:
    def command(launch: Launch) -> list[str]:
        argv = ["-m", "uvicorn", launch.app, "--host", HOST, "--port", str(launch.port)]
        argv += ["--lifespan", "on", "--no-access-log", *options]
        if launch.root_path:
            argv += ["--root-path", launch.root_path]
        if launch.tls:
            argv += ["--ssl-certfile", str(launch.tls.cert), "--ssl-keyfile", str(launch.tls.key)]
        return argv

    return command


def _hypercorn(*options: str) -> Callable[[Launch], list[str]]:
    def command(launch: Launch) -> list[str]:
        argv = ["-m", "hypercorn", launch.app, "--bind", f"{HOST}:{launch.port}", *options]
        if launch.root_path:
            argv += ["--root-path", launch.root_path]
        if launch.tls:
            argv += ["--certfile", str(launch.tls.cert), "--keyfile", str(launch.tls.key)]
        return argv

    return command


def _daphne(launch: Launch) -> list[str]:
    argv = ["-m", "daphne", "-b", HOST, "-p", str(launch.port)]
    if launch.root_path:
        argv += ["--root-path", launch.root_path]
    if launch.tls:
        raise ValueError("daphne's TLS goes through a Twisted endpoint string; not used here")
    return [*argv, launch.app]


def _granian(*options: str) -> Callable[[Launch], list[str]]:
    def command(launch: Launch) -> list[str]:
        argv = ["-m", "granian", "--interface", "asgi", "--host", HOST, "--port", str(launch.port)]
        argv += ["--no-access-log", *options]
        if launch.root_path:
            argv += ["--url-path-prefix", launch.root_path]
        if launch.tls:
            argv += [
                "--ssl-certificate",
                str(launch.tls.cert),
                "--ssl-keyfile",
                str(launch.tls.key),
            ]
        return [*argv, launch.app]

    return command


UVICORN_H11 = ServerConfig(
    "uvicorn-h11", "uvicorn", _uvicorn("--http", "h11", "--ws", "wsproto", "--loop", "asyncio")
)
UVICORN_HTTPTOOLS = ServerConfig(
    "uvicorn-httptools",
    "uvicorn",
    _uvicorn("--http", "httptools", "--ws", "websockets-sansio", "--loop", "uvloop"),
)
UVICORN_WORKERS = ServerConfig("uvicorn-workers", "uvicorn", _uvicorn("--workers", "2"), workers=2)
HYPERCORN_ASYNCIO = ServerConfig("hypercorn-asyncio", "hypercorn", _hypercorn("-k", "asyncio"))
HYPERCORN_TRIO = ServerConfig("hypercorn-trio", "hypercorn", _hypercorn("-k", "trio"), trio=True)
HYPERCORN_ASYNCIO_H2 = ServerConfig(
    "hypercorn-asyncio-h2", "hypercorn", _hypercorn("-k", "asyncio"), tls=True, http2=True
)
HYPERCORN_TRIO_H2 = ServerConfig(
    "hypercorn-trio-h2", "hypercorn", _hypercorn("-k", "trio"), tls=True, http2=True, trio=True
)
HYPERCORN_WORKERS = ServerConfig(
    "hypercorn-workers", "hypercorn", _hypercorn("-k", "asyncio", "-w", "2"), workers=2
)
DAPHNE = ServerConfig("daphne", "daphne", _daphne, lifespan=False)
GRANIAN = ServerConfig("granian", "granian", _granian("--http", "1"))
GRANIAN_H2 = ServerConfig("granian-h2", "granian", _granian("--http", "auto"), tls=True, http2=True)
GRANIAN_WORKERS = ServerConfig(
    "granian-workers", "granian", _granian("--http", "1", "--workers", "2"), workers=2
)

# Each server as a user starts it, choosing no protocol, loop or worker class.
UVICORN = ServerConfig("uvicorn", "uvicorn", _uvicorn())
DEFAULT_OPTIONS = [
    UVICORN,
    ServerConfig("hypercorn", "hypercorn", _hypercorn()),
    ServerConfig("granian", "granian", _granian()),
]

ALL = [
    UVICORN_H11,
    UVICORN_HTTPTOOLS,
    UVICORN_WORKERS,
    HYPERCORN_ASYNCIO,
    HYPERCORN_TRIO,
    HYPERCORN_ASYNCIO_H2,
    HYPERCORN_TRIO_H2,
    HYPERCORN_WORKERS,
    DAPHNE,
    GRANIAN,
    GRANIAN_H2,
    GRANIAN_WORKERS,
]
SINGLE_WORKER = [config for config in ALL if config.workers == 1]
PLAIN = [config for config in SINGLE_WORKER if not config.tls]
HTTP2 = [config for config in ALL if config.http2]
MULTI_WORKER = [config for config in ALL if config.workers > 1]


def nginx_config(directory: Path, site: str) -> Path:
    """A minimal nginx main configuration around ``site`` (its server blocks).

    Everything nginx writes (pid, logs, temporary files) goes under ``directory``.
    """
    (directory / "site.conf").write_text(site)
    main = directory / "nginx.conf"
    main.write_text(
        f"pid {directory}/nginx.pid;\nerror_log {directory}/error.log;\ndaemon off;\n"
        "events {}\nhttp {\n"
        f"  access_log off;\n  client_body_temp_path {directory};\n"
        f"  proxy_temp_path {directory};\n  include {directory}/site.conf;\n}}\n"
    )
    return main


class ServerFailed(RuntimeError):
    """The server did not come up; the message carries the tail of its log."""


@dataclass
class Server:
    """A running server: where to reach it and how to read what it printed."""

    config: ServerConfig
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    tls: TLSFiles | None
    root_path: str | None
    mark_dir: Path
    temp_dir: Path
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The origin to send HTTP requests to."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{HOST}:{self.port}"

    def ssl_context(self, alpn: tuple[str, ...] = ("h2", "http/1.1")) -> ssl.SSLContext | None:
        """A client SSL context trusting this server's certificate, or None for plain HTTP."""
        return self.tls.client_context(alpn) if self.tls else None

    def tls_ca_file(self) -> Path:
        """The test CA as a PEM file, for clients that read one (curl)."""
        assert self.tls is not None
        path = self.tls.cert.with_name("ca.pem")
        if not path.exists():
            self.tls.ca.cert_pem.write_to_path(str(path))
        return path

    def ws_connect(self, path: str, **options: Any) -> ClientConnection:
        """Open a WebSocket with the `websockets` client (HTTP/1.1 only, so no h2 in ALPN)."""
        options.setdefault("open_timeout", 10)
        options.setdefault("close_timeout", 5)
        url = f"ws://{HOST}:{self.port}{path}"
        if self.tls is None:
            return connect(url, **options)
        # Over TLS, the client speaks plain WebSocket to a relay that owns the TLS socket.
        # websockets' sync client reads its socket in a thread while another thread writes
        # the handshake: two threads in one OpenSSL connection, which now and then loses
        # the request (the server never sees it, and the client hangs in its reader).
        relay = tls_relay(HOST, self.port, self.tls.client_context(("http/1.1",)))
        return connect(url, sock=relay, **options)

    def client(self, *, http2: bool | None = None, timeout: float = 10.0) -> httpx.Client:
        """An httpx client bound to this server; HTTP/2 when the config serves it."""
        use_http2 = self.config.http2 if http2 is None else http2
        client = httpx.Client(
            base_url=self.base_url,
            http1=not use_http2,
            http2=use_http2,
            verify=self.ssl_context() or True,
            timeout=timeout,
        )
        self._clients.append(client)
        return client

    def log(self) -> str:
        """Everything the server printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def lifespan_startups(self, app: str | None = None) -> list[str]:
        """Marks ``APP-PID-N`` left by each lifespan startup (raw_app's and the showcase's)."""
        names = sorted(path.name for path in self.mark_dir.iterdir())
        return [name for name in names if app is None or name.startswith(f"{app}-")]

    def started_pids(self) -> set[str]:
        """The worker processes that ran a lifespan startup."""
        return {name.split("-")[1] for name in self.lifespan_startups()}

    def stop(self) -> None:
        """Close clients, then stop the whole process group, gently first."""
        for client in self._clients:
            client.close()
        stop_process_group(self.process)


def die_with_the_suite() -> None:
    """In a child before exec: SIGTERM it when the test process dies.

    A killed pytest must not leave servers behind. Linux only, like the suite's /proc checks.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def spawn(
    argv: list[str], log_path: Path, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a process group of its own, output to ``log_path``; it dies with us."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_the_suite,
        )


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the group, wait a bounded time, then SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)
    # Workers may outlive their parent: kill the group even when the leader exited.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)


def _tail(text: str) -> str:
    return text[-LOG_TAIL:] if len(text) > LOG_TAIL else text


def _answers(url: str, verify: ssl.SSLContext | bool) -> bool:
    try:
        with httpx.Client(verify=verify, timeout=1.0) as client:
            client.get(url)
    except httpx.HTTPError:
        return False
    return True


def wait_until_answers(
    process: subprocess.Popen[bytes],
    url: str,
    deadline: float,
    verify: ssl.SSLContext | bool = True,
) -> bool:
    """Poll ``url`` until it answers HTTP (any status); False once the process exits or
    the ``deadline`` (of ``time.monotonic``) passes."""
    while time.monotonic() < deadline and process.poll() is None:
        if _answers(url, verify):
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def running(
    config: ServerConfig,
    app: str,
    log_dir: Path,
    *,
    tls: TLSFiles | None = None,
    root_path: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Run ``app`` under ``config`` for the ``with`` block, entered once it answers HTTP."""
    if config.tls and tls is None:
        raise ValueError(f"{config.name} serves TLS: pass tls=")
    log_dir.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for attempt in range(START_ATTEMPTS):
        port = free_port()
        log_path = log_dir / f"{config.name}-{attempt}.log"
        mark_dir = log_dir / f"{config.name}-{attempt}-marks"
        mark_dir.mkdir()
        temp_dir = log_dir / f"{config.name}-{attempt}-tmp"
        temp_dir.mkdir()
        launch = Launch(app=app, port=port, root_path=root_path, tls=tls if config.tls else None)
        child_env = {
            **os.environ,
            **(env or {}),
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(TESTS_DIR)]),
            "PYTHONUNBUFFERED": "1",
            "INTEROP_MARK_DIR": str(mark_dir),
            # Its own temporary directory, so a test can tell whether uploads leave files.
            "TMPDIR": str(temp_dir),
        }
        argv = [sys.executable, *config.command(launch)]
        process = spawn(argv, log_path, cwd=log_dir, env=child_env)
        server = Server(config, port, process, log_path, launch.tls, root_path, mark_dir, temp_dir)
        verify: ssl.SSLContext | bool = server.ssl_context() or True
        deadline = time.monotonic() + READY_TIMEOUT
        if wait_until_answers(process, f"{server.base_url}/__ready__", deadline, verify):
            if config.workers > 1:
                _wait_for_workers(server, deadline)
            break
        stop_process_group(process)
        last_error = f"{config.name} did not answer on port {port}:\n{_tail(server.log())}"
        # A lost race for the port shows as an early exit: try another port.
        if "in use" not in server.log().lower():
            raise ServerFailed(last_error)
    else:
        raise ServerFailed(last_error)
    try:
        yield server
    finally:
        server.stop()


def _wait_for_workers(server: Server, deadline: float) -> None:
    # The socket answers as soon as one worker is up; wait until every worker ran startup.
    while time.monotonic() < deadline:
        if len(server.started_pids()) >= server.config.workers:
            return
        time.sleep(0.1)


@contextlib.contextmanager
def running_command(
    argv: list[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    ready_url: str | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run any command for the ``with`` block; with ``ready_url``, enter once it answers."""
    process = spawn(argv, log_path, cwd=cwd, env=env)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        if ready_url is not None and not wait_until_answers(process, ready_url, deadline):
            log = log_path.read_text(errors="replace")
            raise ServerFailed(f"{argv[0]} did not answer {ready_url}:\n{_tail(log)}")
        yield process
    finally:
        stop_process_group(process)


def server_fixture(
    app: str,
    configs: list[ServerConfig],
    *,
    root_path: str | None = None,
    env: dict[str, str] | None = None,
) -> Callable[..., Iterator[Server]]:
    """A module-scoped fixture running ``app`` once under each of ``configs``.

    It works in any test module; a TLS config needs the ``tls_files`` fixture of
    tests/interop/conftest.py.
    """

    @pytest.fixture(scope="module", params=configs, ids=str)
    def fixture(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Server]:
        config: ServerConfig = request.param
        tls = request.getfixturevalue("tls_files") if config.tls else None
        module = request.module.__name__.rpartition(".")[2]
        log_dir = tmp_path_factory.mktemp(f"{module}-{request.fixturename}-{config.name}")
        with running(config, app, log_dir, tls=tls, root_path=root_path, env=env) as server:
            yield server

    return fixture
