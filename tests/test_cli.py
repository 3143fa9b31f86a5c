"""``python -m microasgi``: the command each server gets, the missing-server message, and
the signals reaching the server (tests/interop/test_cli.py stops each real server so)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import NoReturn

import pytest

from microasgi import __main__ as cli


class Exec(Exception):
    """Raised by the stand-in for ``os.execv``: this process is not replaced in a test."""


def test_default_server_is_uvicorn_on_localhost_and_replaces_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[list[str]] = []

    def execv(path: str, argv: list[str]) -> NoReturn:
        calls.append(argv)
        raise Exec

    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(cli.os, "execv", execv)
    with pytest.raises(Exec):
        cli.main(["examples.hello:app"])
    assert calls == [
        [
            sys.executable,
            "-m",
            "uvicorn",
            "examples.hello:app",
            "--host",
            "127.0.0.1",
            "--port",
            "8000",
        ]
    ]


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("uvicorn", ["-m", "uvicorn", "m:app", "--host", "h", "--port", "1", "--reload"]),
        ("hypercorn", ["-m", "hypercorn", "m:app", "--bind", "h:1", "--workers", "2"]),
        ("granian", ["-m", "granian", "--interface", "asgi", "m:app", "--host", "h"]),
        ("daphne", ["-m", "daphne", "-b", "h", "-p", "1", "m:app"]),
    ],
)
def test_each_server_gets_its_own_flags(server: str, expected: list[str]) -> None:
    reload = server == "uvicorn"
    workers = 2 if server == "hypercorn" else 1
    cmd = cli.server_command(server, "m:app", "h", 1, reload, workers)
    assert cmd[0] == sys.executable
    assert cmd[1 : 1 + len(expected)] == expected


def test_ipv6_bind_for_hypercorn() -> None:
    assert "[::1]:8000" in cli.server_command("hypercorn", "m:app", "::1", 8000, False, 1)


def test_missing_server_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name: None)
    assert cli.main(["m:app", "--server", "granian"]) == 2
    assert "pip install 'microasgi[granian]'" in capsys.readouterr().err


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["no-colon"])
    assert "MODULE:ATTRIBUTE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["m:app", "--workers", "0"])
    with pytest.raises(SystemExit, match="daphne supports neither"):
        cli.server_command("daphne", "m:app", "h", 1, True, 1)


def test_module_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "microasgi", "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert "--server" in result.stdout


# A stand-in server: says it is ready, then waits for a signal (it exits 3 on SIGTERM, or
# dies of the signal when told to keep the default handler).
SERVER = """
import signal, sys, time
if sys.argv[1] == "handles":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(3))
print("ready", flush=True)
for _ in range(600):
    time.sleep(0.1)
sys.exit(4)
"""
WRAPPER = "import sys; from microasgi.__main__ import run_forwarding_signals as run; "
WRAPPER += "sys.exit(run([sys.executable, '-c', sys.argv[1], sys.argv[2]]))"


@pytest.mark.parametrize(("server", "code"), [("handles", 3), ("default", 128 + 15)])
def test_forwarding_passes_sigterm_to_the_server_and_exits_with_its_code(
    server: str, code: int
) -> None:
    wrapper = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, SERVER, server], stdout=subprocess.PIPE, text=True
    )
    try:
        assert wrapper.stdout is not None
        assert wrapper.stdout.readline() == "ready\n"
        os.kill(wrapper.pid, signal.SIGTERM)
        assert wrapper.wait(timeout=30) == code
    finally:
        wrapper.kill()
        wrapper.wait(timeout=30)
