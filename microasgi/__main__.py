"""``python -m microasgi MODULE:APP``: serve an app under an installed ASGI server."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from collections.abc import Sequence

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
    """Parse the command line and run the server until it exits."""
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
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
