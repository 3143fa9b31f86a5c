"""The project's gate: ``nox`` runs every default session; ``nox -s bench`` benchmarks."""

from __future__ import annotations

import glob
import os
import shutil

import nox

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["tests", "tests_stdlib_json", "interop", "lint", "typecheck", "docs"]

PACKAGE = "microasgi"
# Debian's packages for the tools the suites drive (never a downloaded build): Redis for
# the Broadcast tests, of both suites; Chromium, nginx and curl for the interop suite.
REDIS = [("redis-server", "redis-server")]
SYSTEM_TOOLS = [("chromium", "chromium"), ("nginx", "nginx-light"), ("curl", "curl"), *REDIS]


def interpreter(version: str) -> str:
    """An installed ``python<version>``: pyenv's shims only run the global version."""
    pattern = os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")
    found = sorted(glob.glob(pattern))
    return found[-1] if found else version


def install_system_tools(session: nox.Session, tools: list[tuple[str, str]]) -> None:
    """apt-get the packages of the missing ``tools`` (as root, as in CI)."""
    missing = [pkg for tool, pkg in tools if shutil.which(tool) is None]
    if missing and os.geteuid() == 0:
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", *missing, external=True)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Run the test suite on asyncio and trio (with orjson)."""
    install_system_tools(session, REDIS)
    # The interop extra too: real-server test modules import their clients at the top.
    session.install("-e", ".[test,interop]")
    session.run("pytest", "-m", "not interop", *session.posargs)


@nox.session(python=interpreter("3.10"))
def tests_stdlib_json(session: nox.Session) -> None:
    """Run the suite on the oldest Python, without orjson (the stdlib JSON path)."""
    install_system_tools(session, REDIS)
    session.install("-e", ".[test,interop]")
    session.run("uv", "pip", "uninstall", "orjson", external=True)
    session.run("pytest", "-m", "not interop and not orjson", "-q", *session.posargs)


@nox.session(python="3.11")
def interop(session: nox.Session) -> None:
    """Run the app under real servers with real clients; regenerate docs/servers.md."""
    install_system_tools(session, SYSTEM_TOOLS)
    session.install("-e", ".[test,interop]")
    session.run(
        "pytest", "-m", "interop", *session.posargs, env={"INTEROP_SERVERS_MD": "docs/servers.md"}
    )


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Build the documentation strictly (any warning fails)."""
    session.install("-e", ".[docs]")
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        f"{session.create_tmp()}/site",
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy --strict."""
    session.install("-e", ".[test]", "mypy")
    session.run("mypy", "--strict", PACKAGE)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmark against raw ASGI and the peers; write docs/benchmarks.md (not in the gate)."""
    # wrk loads the servers end to end; Redis carries the fan-out across two workers.
    install_system_tools(session, [("wrk", "wrk"), *REDIS])
    session.install("-e", ".[bench,redis]")
    session.run("python", "-m", "pytest", "benchmarks/tests", "-q", "-p", "no:cacheprovider")
    out = "benchmarks/results"
    session.run("python", "-m", "benchmarks.inproc", "--json", f"{out}/inproc.json")
    session.run(
        "python",
        "-m",
        "benchmarks.inproc",
        "--loop",
        "uvloop",
        "--json",
        f"{out}/inproc-uvloop.json",
    )
    session.run("python", "-m", "benchmarks.routing", "--json", f"{out}/routing.json")
    session.run("python", "-m", "benchmarks.e2e", "--json", f"{out}/e2e.json")
    session.run("python", "-m", "benchmarks.scale", "--json", f"{out}/scale.json")
    # The streams again with tracemalloc in the servers: their Python heap, exactly.
    session.run(
        "python",
        "-m",
        "benchmarks.scale",
        "--only",
        "streams",
        "--frameworks",
        "raw,microasgi,starlette",
        "--tracemalloc",
        "--json",
        f"{out}/scale-tracemalloc.json",
    )
    session.run("python", "-m", "benchmarks.report")
