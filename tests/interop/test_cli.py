"""``python -m microasgi MODULE:APP --server NAME`` under each server: it serves, and stops.

A supervisor (``docker stop``, systemd, Kubernetes) sends SIGTERM, a terminal SIGINT, to
the process it started, and only to it: the server must get the signal, run the app's
shutdown and leave nothing serving. The signal tests check that by PID, through /proc.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from interop import servers as s


def _cli(server: str, *options: str) -> Callable[[s.Launch], list[str]]:
    def command(launch: s.Launch) -> list[str]:
        argv = ["-m", "microasgi", launch.app, "--host", s.HOST, "--port", str(launch.port)]
        return [*argv, "--server", server, *options]

    return command


CONFIGS = [
    s.ServerConfig("cli-uvicorn", "uvicorn", _cli("uvicorn", "--workers", "2"), workers=2),
    s.ServerConfig("cli-hypercorn", "hypercorn", _cli("hypercorn")),
    s.ServerConfig("cli-granian", "granian", _cli("granian")),
    s.ServerConfig("cli-daphne", "daphne", _cli("daphne"), lifespan=False),
]

served = s.server_fixture("interop.app:app", CONFIGS)


def test_the_command_line_serves_http_websocket_and_lifespan(served: s.Server) -> None:
    client = served.client()
    assert client.get("/").text == "Hello, world!"
    assert client.get("/users/5").json() == {"id": 5, "is_int": True}
    greeting = client.get("/lifespan").json()["greeting"]
    assert greeting == ("hello from lifespan" if served.config.lifespan else None)
    assert len(served.started_pids()) == (served.config.workers if served.config.lifespan else 0)
    with served.ws_connect("/ws/text") as ws:
        ws.send("via python -m microasgi")
        assert ws.recv(timeout=5) == "via python -m microasgi"


# --- signals ---

# Generous: a graceful stop with no request in flight takes a second or two.
EXIT_TIMEOUT = 20.0
# Helpers of the server (multiprocessing's resource tracker) leave once it has exited.
SETTLE_TIMEOUT = 5.0
MAX_PROCESSES = 64

# Where exec is not available (Windows) the command runs the server as a child and
# forwards the signals to it; this runs that path here, on POSIX, the same way.
FORWARDING = (
    "import sys; from microasgi import __main__ as cli; "
    "cli.become_server = cli.run_forwarding_signals; sys.exit(cli.main(sys.argv[1:]))"
)


def _forwarding(server: str, *options: str) -> Callable[[s.Launch], list[str]]:
    exec_argv = _cli(server, *options)

    def command(launch: s.Launch) -> list[str]:
        return ["-c", FORWARDING, *exec_argv(launch)[2:]]

    return command


SIGNAL_CONFIGS = [
    s.ServerConfig("cli-uvicorn", "uvicorn", _cli("uvicorn")),
    s.ServerConfig("cli-uvicorn-workers", "uvicorn", _cli("uvicorn", "--workers", "2"), workers=2),
    s.ServerConfig("cli-hypercorn", "hypercorn", _cli("hypercorn")),
    s.ServerConfig("cli-granian", "granian", _cli("granian")),
    s.ServerConfig("cli-daphne", "daphne", _cli("daphne"), lifespan=False),
    s.ServerConfig(
        "forwarding-uvicorn-workers",
        "uvicorn",
        _forwarding("uvicorn", "--workers", "2"),
        workers=2,
    ),
    s.ServerConfig("forwarding-hypercorn", "hypercorn", _forwarding("hypercorn")),
    s.ServerConfig("forwarding-granian", "granian", _forwarding("granian")),
]


@pytest.fixture
def cli_server(request: pytest.FixtureRequest, interop_tmp: Path) -> Iterator[s.Server]:
    """The signals app under ``python -m microasgi``, of its own for one test."""
    config: s.ServerConfig = request.param
    log_dir = interop_tmp / "cli-signals" / request.node.name
    with s.running(config, "interop.cli_signals_app:app", log_dir) as server:
        yield server


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def process_tree(pid: int) -> dict[int, str]:
    """``pid`` and every process under it, each with its start time (PIDs get reused)."""
    tree: dict[int, str] = {}
    todo = [pid]
    while todo and len(tree) < MAX_PROCESSES:
        parent = todo.pop()
        fields = _stat(parent)
        if fields is None:
            continue
        tree[parent] = fields[19]
        for entry in Path("/proc").iterdir():
            child = _stat(int(entry.name)) if entry.name.isdigit() else None
            if child is not None and int(child[1]) == parent:
                todo.append(int(entry.name))
    return tree


def still_running(tree: dict[int, str]) -> list[int]:
    """The processes of ``tree`` still running after a bounded wait (a zombie runs nothing)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        running = [
            pid
            for pid, started in tree.items()
            if (fields := _stat(pid)) is not None and fields[19] == started and fields[0] != "Z"
        ]
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.05)


def answers(port: int) -> bool:
    """Whether something accepts connections on the port."""
    try:
        with socket.create_connection((s.HOST, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda n: n.name)
@pytest.mark.parametrize("cli_server", SIGNAL_CONFIGS, indirect=True, ids=str)
def test_a_signal_to_the_command_stops_the_server_after_the_apps_shutdown(
    cli_server: s.Server, signum: signal.Signals
) -> None:
    with cli_server.client() as client:
        assert client.get("/").text == "serving"
    started = cli_server.started_pids()
    tree = process_tree(cli_server.process.pid)

    # As docker stop and a supervisor do: to the PID they started, not its group.
    os.kill(cli_server.process.pid, signum)
    try:
        cli_server.process.wait(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {EXIT_TIMEOUT}s after {signum.name}")

    assert still_running(tree) == [], "processes left behind"
    assert not answers(cli_server.port), "something still serves the port"
    if cli_server.config.lifespan:
        stopped = {
            name.split("-")[1]
            for name in os.listdir(cli_server.mark_dir)
            if name.endswith("-stopped")
        }
        assert len(started) == cli_server.config.workers
        assert stopped == started, "the app's shutdown did not run in every process"
