"""End-to-end benchmark: the plaintext and JSON apps under real servers, loaded with ``wrk``.

Every framework's app runs under the same server (uvicorn with httptools and uvloop, granian
with uvloop; one worker each) on 127.0.0.1; the servers of one kind run side by side and are
loaded in turn, round by round, so noise hits them alike. Figures are medians over rounds and
are reported as ratios to the raw ASGI app on the same server. Servers are started as
subprocesses and killed by their PID.

    python -m benchmarks.e2e [--duration S] [--rounds N] [--connections C] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import apps, env, tables
from benchmarks.scenarios import HELLO, JSON_DATA

ROOT = Path(__file__).resolve().parent.parent
PATHS = {"plaintext": "/plaintext", "json": "/json"}
READY_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_command(server: str, target: str, port: int) -> list[str]:
    """The command line that serves ``target`` (a ``module:factory``) on ``port``."""
    if server == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", target, "--factory",
            "--host", "127.0.0.1", "--port", str(port),
            "--http", "httptools", "--loop", "uvloop", "--workers", "1",
            "--no-access-log", "--log-level", "warning",
            # Streams a framework never stops must not hold the shutdown up for long.
            "--timeout-graceful-shutdown", "2",
        ]  # fmt: skip
    if server == "granian":
        return [
            sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
            target,
        ]  # fmt: skip
    raise ValueError(f"unknown server {server!r}")


def available_servers(names: Sequence[str]) -> list[str]:
    """The servers of ``names`` that are installed (a message for each missing one)."""
    found = []
    for name in names:
        if importlib.util.find_spec(name) is None:
            print(f"skipping server {name}: not installed", file=sys.stderr)
        else:
            found.append(name)
    return found


@dataclass
class Server:
    """One running server process."""

    framework: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def check_answers(port: int) -> str | None:
    """Check the plaintext and JSON answers over a real socket (None when right)."""
    status, body = _get(port, PATHS["plaintext"])
    if status != 200 or body != HELLO:
        return f"plaintext: {status} {body[:100]!r}"
    status, body = _get(port, PATHS["json"])
    if status != 200 or json.loads(body) != JSON_DATA:
        return f"json: {status} {body[:100]!r}"
    return None


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.framework} server exited; see {server.log}")
        try:
            _get(server.port, "/plaintext")
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{server.framework} server not ready in {READY_TIMEOUT}s; see {server.log}")


def stop(server: Server) -> None:
    """Terminate the server by its PID (its own process group: granian has a worker child)."""
    stop_process(server.process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``process``'s group, then SIGKILL it after a bounded wait."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def pinned_cpus() -> tuple[int, int] | None:
    """Two CPUs, (server's, wrk's), when this machine has them and ``taskset``; else None.

    Sharing cores, the server and wrk take each other's time slices, and the same code's
    ratio to raw ASGI scatters by about 0.1 from run to run; on a core each, it does not.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return None
    return cpus[0], cpus[1]


def on_cpu(argv: list[str], cpu: int | None) -> list[str]:
    """``argv`` run on ``cpu`` alone (``taskset`` execs it: the PID stays the command's)."""
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in the repository, in a process group of its own, output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=None if env is None else {**os.environ, **env},
        )


@contextlib.contextmanager
def serving(
    server: str,
    frameworks: Sequence[str],
    log_dir: Path,
    target: Callable[[str], str] = apps.e2e_target,
    env: dict[str, str] | None = None,
    cpu: int | None = None,
) -> Iterator[list[Server]]:
    """Start one ``server`` per framework, wait until each answers, stop them all at the end.

    ``target`` names each framework's app (``module:factory``); ``env`` is added to theirs;
    ``cpu``, if given, is the one CPU they run on.
    """
    running: list[Server] = []
    try:
        for framework in frameworks:
            port = _free_port()
            log = log_dir / f"{server}-{framework}-{port}.log"
            command = on_cpu(server_command(server, target(framework), port), cpu)
            process = spawn(command, log, env)
            running.append(Server(framework, port, process, log))
        for srv in running:
            _wait_ready(srv)
        yield running
    finally:
        for srv in running:
            stop(srv)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if found is None:
        raise ValueError(f"cannot read a wrk latency from {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def parse_wrk(output: str) -> dict[str, float]:
    """Read req/s and p50/p99 latency (ms) from ``wrk --latency``; refuse errors."""
    if "Non-2xx or 3xx responses" in output:
        raise RuntimeError("wrk saw non-2xx answers:\n" + output)
    errors = re.search(r"Socket errors: (.*)", output)
    if errors and any(int(n) for n in re.findall(r"\d+", errors.group(1))):
        raise RuntimeError("wrk saw socket errors:\n" + output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not (rps and p50 and p99 and total):
        raise RuntimeError("cannot read wrk's output:\n" + output)
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _ms(p50.group(1)),
        "p99_ms": _ms(p99.group(1)),
        "requests": float(total.group(1)),
    }


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) of every live process in process group ``pgid`` (Linux /proc).

    A server's CPU time per request does not depend on what else the shared machine runs,
    unlike its requests per second; granian's worker is a child in the same group.
    """
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # the process ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[2] is pgrp; utime and stime are fields 14 and 15 of stat(5), here 11 and 12
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def run_wrk(
    server: Server, path: str, duration: float, connections: int, cpu: int | None = None
) -> dict[str, float]:
    """Load ``path`` on ``server`` for ``duration`` s with one wrk thread (on ``cpu``, if
    given); add the server's CPU."""
    url = server.url(path)
    cpu_before = group_cpu_seconds(server.process.pid)
    command = on_cpu([
        "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", "5s", "--latency", url,
    ], cpu)  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}) on {url}: {out.stderr}{out.stdout}")
    figures = parse_wrk(out.stdout)
    cpu = group_cpu_seconds(server.process.pid) - cpu_before
    figures["cpu_us"] = cpu * 1e6 / figures["requests"] if figures["requests"] else 0.0
    return figures


# A check of one server's answer on one path: None when right, else the result to report
# instead of figures ({"status": "failed" or "not available", "reason": ...}).
Check = Callable[[Server, str], dict[str, str] | None]


def load_paths(
    running: Sequence[Server],
    paths: Mapping[str, str],
    check: Check,
    rounds: int,
    duration: float,
    connections: int,
    client_cpu: int | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Figures for every server of ``running`` and scenario of ``paths`` (name -> path):
    each answer checked first, then a warm-up, then ``rounds`` interleaved rounds (wrk on
    ``client_cpu``, if given)."""
    results: dict[str, dict[str, dict[str, Any]]] = {s: {} for s in paths}
    live: list[tuple[Server, str, str]] = []
    for srv in running:
        for scenario, path in paths.items():
            refused = check(srv, path)
            if refused is None:
                live.append((srv, scenario, path))
                continue
            results[scenario][srv.framework] = refused
            print(
                f"  {srv.framework} {scenario}: {refused['status']}: {refused['reason']}",
                file=sys.stderr,
            )
    for srv, _, path in live:  # warm-up, not recorded
        run_wrk(srv, path, min(1.0, duration), connections, client_cpu)
    samples: dict[tuple[str, str], list[dict[str, float]]] = {}
    for r in range(rounds):
        order = live[r % len(live) :] + live[: r % len(live)] if live else []
        for srv, scenario, path in order:
            figures = run_wrk(srv, path, duration, connections, client_cpu)
            samples.setdefault((scenario, srv.framework), []).append(figures)
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    for (scenario, framework), runs in samples.items():
        results[scenario][framework] = {
            "status": "ok",
            "rps": statistics.median(run["rps"] for run in runs),
            "p50_ms": statistics.median(run["p50_ms"] for run in runs),
            "p99_ms": statistics.median(run["p99_ms"] for run in runs),
            "cpu_us": statistics.median(run["cpu_us"] for run in runs),
            "runs": runs,
        }
    return results


def _check_greetings(server: Server, path: str) -> dict[str, str] | None:
    error = check_answers(server.port)
    return None if error is None else {"status": "failed", "reason": error}


def measure_server(
    server: str,
    frameworks: Sequence[str],
    rounds: int,
    duration: float,
    connections: int,
    log_dir: Path,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Figures for every framework and scenario under one server kind."""
    print(f"{server}: starting {', '.join(frameworks)} ...", file=sys.stderr, flush=True)
    cpus = pinned_cpus()
    server_cpu, client_cpu = cpus if cpus is not None else (None, None)
    with serving(server, frameworks, log_dir, cpu=server_cpu) as running:
        return load_paths(
            running, PATHS, _check_greetings, rounds, duration, connections, client_cpu
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="end-to-end benchmark under real servers")
    parser.add_argument("--servers", default="uvicorn,granian")
    parser.add_argument("--frameworks", default=",".join(apps.FRAMEWORKS))
    # Many short rounds rather than a few long ones: on a shared machine a slow spell
    # spoils a whole round, and a median of nine outvotes up to four of them.
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp/microasgi-bench-logs"))
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed (Debian: apt-get install -y wrk); skipping e2e", file=sys.stderr
        )
        return 0
    frameworks = []
    for name in args.frameworks.split(","):
        try:
            apps.load(name)
            frameworks.append(name)
        except ImportError as exc:
            print(f"skipping {name}: not installed ({exc})", file=sys.stderr)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "kind": "e2e",
        "duration_s": args.duration,
        "rounds": args.rounds,
        "connections": args.connections,
        "servers": {},
    }
    for server in available_servers(args.servers.split(",")):
        data["servers"][server] = measure_server(
            server, frameworks, args.rounds, args.duration, args.connections, args.log_dir
        )
        headers, rows = tables.e2e_rows(data, server)
        print(f"\n{server}: median of {args.rounds} rounds of {args.duration:g}s\n")
        print(tables.markdown_table(headers, rows))
    print(f"\n{tables.e2e_spread_note(data)}")
    data["env"] = env.describe(with_wrk=True)
    env.write_results(args.json, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
