"""``python -m microasgi MODULE:APP``: serve an app under an installed ASGI server.

The command becomes the server (POSIX ``exec``), so the signals a supervisor or a
terminal sends to it reach the server itself; where exec cannot keep the process
(Windows), it runs the server as a child and forwards them.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

SERVERS = ("uvicorn", "hypercorn", "granian", "daphne")
EXTRAS = {
    "uvicorn": "microasgi[server]",
    "hypercorn": "microasgi[hypercorn]",
    "granian": "microasgi[granian]",
    "daphne": "microasgi[daphne]",
}


def server_command(
    server: str, target: str, host: str, port: int, reload: bool, workers: int
) -> list[str]:
    """The command line that runs ``target`` under ``server``."""
    python = sys.executable
    if server == "uvicorn":
        cmd = [python, "-m", "uvicorn", target, "--host", host, "--port", str(port)]
        if reload:
            cmd.append("--reload")
        if workers > 1:
            cmd += ["--workers", str(workers)]
        return cmd
    if server == "hypercorn":
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        cmd = [python, "-m", "hypercorn", target, "--bind", bind]
        if reload:
            cmd.append("--reload")
        if workers > 1:
            cmd += ["--workers", str(workers)]
        return cmd
    if server == "granian":
        cmd = [python, "-m", "granian", "--interface", "asgi", target]
        cmd += ["--host", host, "--port", str(port), "--workers", str(workers)]
        if reload:
            cmd.append("--reload")
        return cmd
    if server == "daphne":
        if reload or workers > 1:
            raise SystemExit("daphne supports neither --reload nor --workers")
        return [python, "-m", "daphne", "-b", host, "-p", str(port), target]
    raise SystemExit(f"unknown server {server!r}: choose one of {', '.join(SERVERS)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, then become the server (or run it, forwarding signals)."""
    parser = argparse.ArgumentParser(
        prog="python -m microasgi", description="Serve a microasgi (or any ASGI) app."
    )
    parser.add_argument("app", help="the app to serve, as MODULE:ATTRIBUTE")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--server", choices=SERVERS, default="uvicorn")
    parser.add_argument("--reload", action="store_true", help="restart on code changes")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    args = parser.parse_args(argv)
    if ":" not in args.app:
        parser.error("the app must be given as MODULE:ATTRIBUTE, e.g. examples.hello:app")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if importlib.util.find_spec(args.server) is None:
        print(
            f"microasgi: the {args.server} server is not installed; "
            f"install it with: pip install '{EXTRAS[args.server]}'",
            file=sys.stderr,
        )
        return 2
    cmd = server_command(args.server, args.app, args.host, args.port, args.reload, args.workers)
    return become_server(cmd)


def exec_server(cmd: list[str]) -> NoReturn:
    """Replace this process with the server: it keeps our PID, so it gets our signals."""
    # A wrapper waiting on a child is what `docker stop`, systemd and the like get wrong:
    # they signal the PID they started, the wrapper dies, the server is orphaned and
    # keeps serving, and the app's shutdown never runs. After exec there is no wrapper:
    # SIGTERM and SIGINT go straight to the server, which stops gracefully.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)


_FORWARDED = (signal.SIGTERM, signal.SIGINT)


def run_forwarding_signals(cmd: list[str]) -> int:
    """Run the server as a child, pass SIGTERM and SIGINT on to it, and wait for it."""
    started: list[subprocess.Popen[bytes]] = []
    early: list[int] = []  # signals that came before the server was started

    def forward(signum: int, frame: FrameType | None) -> None:
        if os.name == "nt" and signum == signal.SIGINT:
            return  # Windows gives Ctrl+C to the whole console, the server included
        if started:
            started[0].send_signal(signum)
        else:
            early.append(signum)

    previous = {signum: signal.signal(signum, forward) for signum in _FORWARDED}
    try:
        started.append(subprocess.Popen(cmd))
        for signum in early:
            started[0].send_signal(signum)
        code = started[0].wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    # A server ended by a signal exits as a shell reports it: 128 + the signal's number.
    return code if code >= 0 else 128 - code


# exec keeps the PID only on POSIX; on Windows it starts a new process and exits this one.
become_server = exec_server if os.name == "posix" else run_forwarding_signals


if __name__ == "__main__":
    sys.exit(main())
