"""Limits per route, WebSocketException and background tasks under every real server,
and a middleware option typo failing the server's startup."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from interop import servers as s
from interop.views_app import TASK_ERROR, MiB

served = s.server_fixture("interop.views_app:app", s.PLAIN)

# Servers that log an error an app lets out after its response, as the ASGI spec asks.
LOGS_ERRORS = {"uvicorn", "hypercorn"}


def test_a_big_upload_is_allowed_on_its_route_and_refused_on_another(served: s.Server) -> None:
    big = bytes(range(256)) * (MiB // 256)
    client = served.client()
    allowed = client.post("/upload", files={"file": ("big.bin", big)})
    assert (allowed.status_code, allowed.text) == (200, str(len(big)))
    refused = served.client().post("/avatar", files={"file": ("big.bin", big)})
    assert refused.status_code == 413
    assert served.client().get("/").text == "ok"


def close_after(served: s.Server, message: str) -> tuple[int, str]:
    """The close code and reason the client gets after sending ``message`` to /policy."""
    with served.ws_connect("/policy") as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        ws.send(message)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def test_websocket_exception_closes_with_an_application_code(served: s.Server) -> None:
    code, reason = close_after(served, "quiet")
    assert code == 4010
    # daphne (autobahn) sends the code without the reason: a server fact, in the docs.
    assert reason == ("" if served.config.family == "daphne" else "quiet hours")


def test_websocket_exception_closes_with_a_protocol_code(served: s.Server) -> None:
    if served.config.family == "daphne":
        # autobahn lets an application send only 1000 and 3000-4999: daphne refuses the
        # close and ends the connection as for an error (a server fact, in the docs).
        assert close_after(served, "spam") == (1011, "")
        return
    assert close_after(served, "spam") == (1008, "no spam")


def test_websocket_exception_before_accept_refuses_the_handshake(served: s.Server) -> None:
    with pytest.raises(InvalidStatus) as refused:
        served.ws_connect("/policy?banned=1")
    assert refused.value.response.status_code == 403
    assert served.client().get("/").text == "ok"


def test_a_failing_background_task_leaves_the_response_whole_and_reaches_the_server(
    served: s.Server,
) -> None:
    response = served.client().get("/background")
    assert (response.status_code, response.text) == (200, "sent before the task")
    # A new connection: a server may close the one whose app raised (uvicorn's h11 does).
    assert served.client().get("/").text == "ok"
    if served.config.family in LOGS_ERRORS:
        assert TASK_ERROR in wait_for_log(served, TASK_ERROR)


def wait_for_log(server: s.Server, text: str, seconds: float = 10.0) -> str:
    """The server's log once it holds ``text`` (or after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while text not in (log := server.log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return log


@pytest.mark.parametrize("config", [c for c in s.PLAIN if c.lifespan], ids=str)
def test_a_middleware_option_typo_fails_the_servers_startup(
    config: s.ServerConfig, tmp_path: Path
) -> None:
    app = "interop.views_app:misspelt"
    launch = s.Launch(app=app, port=s.free_port(), root_path=None, tls=None)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(s.REPO_ROOT), str(s.TESTS_DIR)]),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / f"{config.name}.log"
    process = s.spawn([sys.executable, *config.command(launch)], log_path, cwd=tmp_path, env=env)
    try:
        code = process.wait(timeout=s.READY_TIMEOUT)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        s.stop_process_group(process)
    log = log_path.read_text(errors="replace")
    # It stopped on its own, saying why (hypercorn exits with status 0 even so).
    assert code is not None, f"{config.name} kept running:\n{log[-3000:]}"
    assert "allow_orgins" in log
