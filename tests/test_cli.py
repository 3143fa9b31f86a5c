"""``python -m microasgi``: the command each server gets, and the missing-server message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from microasgi import __main__ as cli


def test_default_server_is_uvicorn_on_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    assert cli.main(["examples.hello:app"]) == 0
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
