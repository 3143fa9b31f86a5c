"""``python -m microasgi MODULE:APP --server NAME`` serves the showcase under each server."""

from __future__ import annotations

from collections.abc import Callable

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
