"""Scale benchmark: how far one worker goes with many connections, streams and subscribers.

Under uvicorn (httptools, uvloop, its default WebSocket implementation; one worker), each
framework's scale app (``benchmarks.scale_apps``) is started on its own, measured, and
stopped by its PID, so that one framework's leftovers never weigh on another's figures:

- idle WebSockets: the server's resident memory (VmRSS) before and after opening 1,000
  and then 4,000 connections, per connection; then its CPU time (utime + stime) over one
  echo on every connection, a few times, per echoed message;
- streams: 1,000 clients of ``/stream`` (a chunk) or ``/sse`` (an event) every 200 ms:
  memory per stream, CPU per event produced, and once every client has left, the time
  until the app counts no live generator (polled, bounded);
- fan-out: 1,000 WebSocket members of one room; a member publishes, and the time until
  the last member has the message is taken (memory broadcast on one worker; Redis across
  two single-worker servers sharing Debian's redis-server, started on a free port);
- static files: ``wrk`` on 4 KiB and 1 MiB files through ``FileResponse`` and
  ``StaticFiles`` under uvicorn and granian (which offers ``http.response.pathsend``),
  beside raw ASGI doing it by hand: req/s and the server's CPU per request.

    python -m benchmarks.scale [--only idle,streams,fanout,static] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks import e2e, env, loadclient, scale_apps
from benchmarks.loadclient import HOST, Arrivals

SERVER = "uvicorn"
IDLE_COUNTS = (1000, 4000)
# Connections (or streams) already open when the memory before is read: the first ones
# would otherwise fill what the allocator holds free since startup, and look free.
HELD = 200
ECHO_CONNECTIONS = 1000
ECHO_SAMPLES = 7
ECHOES_PER_SAMPLE = 3
STREAM_CLIENTS = 1000
STREAM_PATHS = {"stream": "/stream", "sse": "/sse"}
# Variants measured beside the kinds above: what the watch for the client and the ping cost.
VARIANTS = {
    "raw": {"stream, no watch": "/stream-nowatch"},
    "microasgi": {"sse, no ping": "/sse-noping"},
}
CPU_SAMPLES = 5  # rounds of windows in which each stream server's CPU per event is read
CPU_WINDOW = 0.5  # seconds
STOP_GOAL = 1.0  # seconds: every generator stopped within this of its client leaving
STOP_WAIT = 3.0  # seconds the stop is watched for before it is reported as not happening
POLL = 0.01
SETTLE = 1.0  # seconds for the server to finish what the last opening started
FANOUT_MEMBERS = 1000
FANOUT_PUBLISHES = 10
ROOM = "/room/bench"
STATIC_PATHS = {
    "FileResponse, 4 KiB": "/file/small",
    "FileResponse, 1 MiB": "/file/large",
    "StaticFiles, 4 KiB": "/static/small.bin",
    "StaticFiles, 1 MiB": "/static/large.bin",
}
STATIC_SERVERS = ("uvicorn", "granian")
PARTS = ("idle", "streams", "fanout", "static")


def rss_kib(pid: int) -> int:
    """The resident memory of process ``pid`` (VmRSS, KiB)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """The CPU time process ``pid`` used so far, all its threads (Linux /proc).

    The scheduler's count (schedstat, in ns) is the utime + stime of /proc/PID/stat
    without its 10 ms granularity, which short samples would drown in.
    """
    total = 0
    for thread in os.listdir(f"/proc/{pid}/task"):
        with (
            contextlib.suppress(OSError),  # a thread that ended meanwhile
            open(f"/proc/{pid}/task/{thread}/schedstat") as f,
        ):
            total += int(f.read().split()[0])
    return total / 1e9


async def _stats(port: int) -> tuple[int, int, int]:
    """The app's live generators, events produced, and Python heap (bytes; 0 untraced)."""
    status, body = await loadclient.get(port, "/stats")
    if status != 200:
        raise RuntimeError(f"/stats answered {status}")
    live, events, heap = body.split()
    return int(live), int(events), int(heap)


async def _until_live(
    port: int, done: Callable[[int], bool], wait: float
) -> tuple[float | None, int]:
    """Poll /stats until ``done(live)``: (seconds it took or None, the last live count)."""
    start = time.perf_counter()
    while True:
        live, _, _ = await _stats(port)
        elapsed = time.perf_counter() - start
        if done(live):
            return elapsed, live
        if elapsed > wait:
            return None, live
        await asyncio.sleep(POLL)


async def idle_memory(port: int, pid: int) -> dict[str, float]:
    """Memory per idle WebSocket (KiB) at each of IDLE_COUNTS."""
    held = await loadclient.open_websockets(port, "/ws", HELD)
    await loadclient.echo_all(held, "warm")
    await asyncio.sleep(SETTLE)
    base = rss_kib(pid)
    clients: list[loadclient.WebSocketClient] = []
    memory = {}
    try:
        for count in IDLE_COUNTS:
            clients += await loadclient.open_websockets(port, "/ws", count - len(clients))
            await asyncio.sleep(SETTLE)
            memory[str(count)] = (rss_kib(pid) - base) / count
        lost = sum(client.lost for client in clients)
        if lost:
            raise RuntimeError(f"{lost} idle WebSockets were closed by the server")
    finally:
        for client in [*held, *clients]:
            client.leave()
    return memory


async def echo_cpu(servers: Sequence[e2e.Server]) -> dict[str, list[float]]:
    """CPU per echoed message (µs) of each server, over ECHO_CONNECTIONS connections each:
    ECHO_SAMPLES rounds, the servers in turn within a round, a few echoes on every
    connection per sample."""
    clients = {
        srv.framework: await loadclient.open_websockets(srv.port, "/ws", ECHO_CONNECTIONS)
        for srv in servers
    }
    samples: dict[str, list[float]] = {srv.framework: [] for srv in servers}
    try:
        for srv in servers:  # warm-up, not recorded
            await loadclient.echo_all(clients[srv.framework], "warm")
        for r in range(ECHO_SAMPLES):
            for srv in [*servers[r % len(servers) :], *servers[: r % len(servers)]]:
                start = cpu_seconds(srv.process.pid)
                for i in range(ECHOES_PER_SAMPLE):
                    await loadclient.echo_all(clients[srv.framework], f"echo {r} {i}")
                used = cpu_seconds(srv.process.pid) - start
                samples[srv.framework].append(used * 1e6 / (ECHOES_PER_SAMPLE * ECHO_CONNECTIONS))
    finally:
        for group in clients.values():
            for client in group:
                client.leave()
    return samples


async def streams(port: int, pid: int, path: str) -> dict[str, Any]:
    """Memory per stream and the generators' stop, for STREAM_CLIENTS streams."""
    held = await loadclient.open_streams(port, path, HELD)
    await asyncio.sleep(SETTLE)
    base_live, _, base_heap = await _stats(port)
    base = rss_kib(pid)
    clients = await loadclient.open_streams(port, path, STREAM_CLIENTS)
    target = base_live + STREAM_CLIENTS
    started, live = await _until_live(port, lambda live: live >= target, 10.0)
    if started is None:
        raise RuntimeError(f"only {live - base_live} of {STREAM_CLIENTS} streams started")
    await asyncio.sleep(SETTLE)
    kib = (rss_kib(pid) - base) / STREAM_CLIENTS
    _, _, heap = await _stats(port)
    await asyncio.sleep(2 * scale_apps.TICK)  # every client has had an item since
    silent = sum(not client.received for client in clients)
    if silent or any(client.lost for client in clients):
        raise RuntimeError(f"{silent} streams received nothing, or the server closed some")
    for client in [*held, *clients]:
        client.close()
    stopped, left = await _until_live(port, lambda live: live == 0, STOP_WAIT)
    return {
        "status": "ok",
        "kib_per_stream": kib,
        # Python objects alone, as tracemalloc counts them (when the server traces them)
        "heap_kib_per_stream": (heap - base_heap) / 1024 / STREAM_CLIENTS if base_heap else None,
        "stop_s": stopped,
        "still_live": left,
        "within_goal": stopped is not None and stopped <= STOP_GOAL,
    }


async def stream_cpu(servers: Sequence[e2e.Server], paths: Sequence[str]) -> list[list[float]]:
    """CPU per event (µs) of each server streaming ``paths[i]`` to STREAM_CLIENTS clients,
    all at once: CPU_SAMPLES rounds of a window on each server in turn."""
    clients = [
        await loadclient.open_streams(srv.port, path, STREAM_CLIENTS)
        for srv, path in zip(servers, paths, strict=True)
    ]
    samples: list[list[float]] = [[] for _ in servers]
    try:
        await asyncio.sleep(SETTLE)
        for r in range(CPU_SAMPLES):
            for i in [*range(r % len(servers), len(servers)), *range(r % len(servers))]:
                port, pid = servers[i].port, servers[i].process.pid
                _, events_before, _ = await _stats(port)
                cpu_before = cpu_seconds(pid)
                await asyncio.sleep(CPU_WINDOW)
                used = cpu_seconds(pid) - cpu_before
                _, events_after, _ = await _stats(port)
                samples[i].append(used * 1e6 / max(1, events_after - events_before))
    finally:
        for group in clients:
            for client in group:
                client.close()
    return samples


async def fanout(ports: Sequence[int]) -> dict[str, Any]:
    """Time from a publish until the last of FANOUT_MEMBERS members has it (members spread
    evenly over ``ports``; the publisher is one more member, on the first)."""
    members: list[loadclient.WebSocketClient] = []
    for i, port in enumerate(ports):
        share = FANOUT_MEMBERS // len(ports) + (i < FANOUT_MEMBERS % len(ports))
        members += await loadclient.open_websockets(port, ROOM, share)
    (publisher,) = await loadclient.open_websockets(ports[0], ROOM, 1)
    arrivals = Arrivals(members)
    try:
        # A member subscribes just after its handshake: publish until one reaches all.
        for attempt in range(20):
            with contextlib.suppress(asyncio.TimeoutError):
                await arrivals.publish(publisher, f"ready {attempt}", 1.0)
                break
        else:
            raise RuntimeError("the members never all heard one message")
        times = []
        for i in range(FANOUT_PUBLISHES):
            await asyncio.sleep(0.05)
            times.append(await arrivals.publish(publisher, f"message {i}", 10.0))
    finally:
        for client in [*members, publisher]:
            client.leave()
    return {
        "status": "ok",
        "members": len(members),
        "median_ms": statistics.median(times) * 1e3,
        "max_ms": max(times) * 1e3,
        "runs_ms": [t * 1e3 for t in times],
    }


@contextlib.contextmanager
def _one(framework: str, log_dir: Path, env: dict[str, str] | None = None) -> Iterator[e2e.Server]:
    with e2e.serving(SERVER, [framework], log_dir, scale_apps.target, env) as (server,):
        yield server


def _failure(exc: Exception) -> dict[str, Any]:
    print(f"    failed: {exc}", file=sys.stderr, flush=True)
    return {"status": "failed", "reason": str(exc)[:300]}


async def _serves(port: int, path: str) -> bool:
    """Whether ``path`` streams (False for a 404: the framework lacks it)."""
    try:
        (client,) = await loadclient.open_streams(port, path, 1)
    except ConnectionError as exc:
        if " 404" in str(exc):
            return False
        raise
    client.close()
    return True


def measure_idle(frameworks: Sequence[str], log_dir: Path) -> dict[str, Any]:
    """Idle WebSockets: memory with each framework under its own server, then the CPU per
    echoed message with every framework's server side by side."""
    results: dict[str, Any] = {}
    for framework in frameworks:
        print(f"{SERVER} {framework}: idle WebSockets ...", file=sys.stderr, flush=True)
        with _one(framework, log_dir) as srv:
            try:
                memory = asyncio.run(idle_memory(srv.port, srv.process.pid))
                results[framework] = {"status": "ok", "kib_per_connection": memory}
            except Exception as exc:
                results[framework] = _failure(exc)
    ok = [fw for fw in frameworks if results[fw]["status"] == "ok"]
    print(f"{SERVER}: CPU per echoed message ...", file=sys.stderr, flush=True)
    try:
        with e2e.serving(SERVER, ok, log_dir, scale_apps.target) as running:
            samples = asyncio.run(echo_cpu(running))
    except Exception as exc:
        _failure(exc)
        samples = {}
    for framework, cpu_us in samples.items():
        results[framework]["cpu_us_per_message"] = statistics.median(cpu_us)
        results[framework]["cpu_samples_us"] = cpu_us
    return results


def measure_streams(
    frameworks: Sequence[str], log_dir: Path, env: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Streams and event streams: memory and stop with each framework under its own server
    for each kind, then (untraced) the CPU per event with every framework's server of one
    kind side by side."""
    results: dict[str, dict[str, Any]] = {kind: {} for kind in STREAM_PATHS}
    for framework in frameworks:
        paths = {**STREAM_PATHS, **VARIANTS.get(framework, {})}
        for kind, path in paths.items():
            print(f"{SERVER} {framework}: {path} ...", file=sys.stderr, flush=True)
            with _one(framework, log_dir, env) as srv:
                if not asyncio.run(_serves(srv.port, path)):
                    result = {"status": "not available", "reason": f"no {path}"}
                else:
                    try:
                        result = asyncio.run(streams(srv.port, srv.process.pid, path))
                    except Exception as exc:
                        result = _failure(exc)
            results.setdefault(kind, {})[framework] = result
    if env:  # tracemalloc's CPU is not the framework's
        return results
    for base in STREAM_PATHS:
        # The kind and its variants (a variant's name starts with its kind's).
        measured = [
            (kind, fw)
            for kind, by_framework in results.items()
            if kind.startswith(base)
            for fw, result in by_framework.items()
            if result["status"] == "ok"
        ]
        print(f"{SERVER}: CPU per event, {base} ...", file=sys.stderr, flush=True)
        served = [{**STREAM_PATHS, **VARIANTS.get(fw, {})}[kind] for kind, fw in measured]
        try:
            with e2e.serving(
                SERVER, [fw for _, fw in measured], log_dir, scale_apps.target
            ) as running:
                samples = asyncio.run(stream_cpu(running, served))
        except Exception as exc:
            _failure(exc)
            samples = [[] for _ in measured]
        for (kind, fw), cpu_us in zip(measured, samples, strict=True):
            results[kind][fw]["cpu_us_per_event"] = statistics.median(cpu_us) if cpu_us else None
            results[kind][fw]["cpu_samples_us"] = cpu_us
    return results


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(log_dir: Path) -> Iterator[str]:
    """Debian's redis-server on a free loopback port, nothing on disk; its URL."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
    port = _free_port()
    argv = [executable, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    process = e2e.spawn([*argv, "--dir", str(log_dir)], log_dir / f"redis-{port}.log")
    try:
        deadline = time.monotonic() + 10
        while not _answers_ping(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"redis-server did not answer on {port}")
            time.sleep(0.05)
        yield f"redis://{HOST}:{port}/0"
    finally:
        e2e.stop_process(process)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(7) == b"+PONG\r\n"
    except OSError:
        return False


def measure_fanout(log_dir: Path) -> dict[str, Any]:
    """Fan-out in raw ASGI and microasgi on one worker, and microasgi over Redis on two."""
    results: dict[str, Any] = {}
    for framework in ("raw", "microasgi"):
        print(f"{SERVER} {framework}: fan-out ...", file=sys.stderr, flush=True)
        with _one(framework, log_dir, {"REDIS_URL": "memory://"}) as srv:
            try:
                results[f"{framework}, memory, 1 worker"] = asyncio.run(fanout([srv.port]))
            except Exception as exc:
                results[f"{framework}, memory, 1 worker"] = _failure(exc)
    print(f"{SERVER} microasgi: fan-out over Redis ...", file=sys.stderr, flush=True)
    try:
        with (
            redis_server(log_dir) as url,
            e2e.serving(
                SERVER, ["microasgi"] * 2, log_dir, scale_apps.target, {"REDIS_URL": url}
            ) as running,
        ):
            results["microasgi, Redis, 2 workers"] = asyncio.run(
                fanout([srv.port for srv in running])
            )
    except Exception as exc:
        results["microasgi, Redis, 2 workers"] = _failure(exc)
    return results


def _check_file(server: e2e.Server, path: str) -> dict[str, str] | None:
    status, body = asyncio.run(loadclient.get(server.port, path))
    if status == 404:
        return {"status": "not available", "reason": f"{server.framework} has no {path}"}
    name = path.rsplit("/", 1)[1].removesuffix(".bin")
    expected = (scale_apps.files_dir() / f"{name}.bin").read_bytes()
    if status != 200 or body != expected:
        return {"status": "failed", "reason": f"{path}: {status}, {len(body)} bytes"}
    return None


def measure_static(
    frameworks: Sequence[str], log_dir: Path, rounds: int, duration: float, connections: int
) -> tuple[dict[str, Any], dict[str, bool]]:
    """wrk on each file path, each server kind, every framework side by side; and whether
    each server offers ``http.response.pathsend`` (as raw ASGI's scope says)."""
    results: dict[str, Any] = {}
    pathsend: dict[str, bool] = {}
    for server in e2e.available_servers(STATIC_SERVERS):
        print(f"{server}: static files ...", file=sys.stderr, flush=True)
        files_env = {scale_apps.FILES_DIR_ENV: str(scale_apps.files_dir())}
        with e2e.serving(server, frameworks, log_dir, scale_apps.target, files_env) as running:
            results[server] = e2e.load_paths(
                running, STATIC_PATHS, _check_file, rounds, duration, connections
            )
            pathsend[server] = any(asyncio.run(_offers_pathsend(srv)) for srv in running)
    return results, pathsend


async def _offers_pathsend(server: e2e.Server) -> bool:
    if server.framework != "raw":
        return False
    _, body = await loadclient.get(server.port, "/extensions")
    return "http.response.pathsend" in body.decode().split()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="how far one worker goes")
    parser.add_argument("--only", default=",".join(PARTS), help="of " + ",".join(PARTS))
    parser.add_argument("--frameworks", default=",".join(scale_apps.FRAMEWORKS))
    parser.add_argument("--rounds", type=int, default=2, help="wrk rounds (static files)")
    parser.add_argument("--duration", type=int, default=1, help="whole seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="streams only, with tracemalloc in the servers: the Python heap per stream "
        "(their CPU figures are then tracemalloc's, not theirs)",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp/microasgi-bench-logs"))
    args = parser.parse_args(argv)
    parts = args.only.split(",")
    fd_limit = loadclient.raise_fd_limit()
    if fd_limit < 2 * max(IDLE_COUNTS) + 200:
        print(f"open-file limit {fd_limit} is too low for the scale benchmark", file=sys.stderr)
        return 1
    frameworks = []
    for name in args.frameworks.split(","):
        try:
            __import__(f"benchmarks.scale_apps.{name}")
            frameworks.append(name)
        except ImportError as exc:
            print(f"skipping {name}: not installed ({exc})", file=sys.stderr)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "kind": "scale",
        "server": SERVER,
        "idle_counts": list(IDLE_COUNTS),
        "held": HELD,
        "echo_connections": ECHO_CONNECTIONS,
        "echo_samples": ECHO_SAMPLES,
        "echoes_per_sample": ECHOES_PER_SAMPLE,
        "cpu_samples": CPU_SAMPLES,
        "cpu_window_s": CPU_WINDOW,
        "stream_clients": STREAM_CLIENTS,
        "tick_s": scale_apps.TICK,
        "max_ticks": scale_apps.MAX_TICKS,
        "stop_goal_s": STOP_GOAL,
        "stop_wait_s": STOP_WAIT,
        "fanout_members": FANOUT_MEMBERS,
        "fanout_publishes": FANOUT_PUBLISHES,
    }
    with tempfile.TemporaryDirectory() as files:
        scale_apps.make_files(Path(files))
        # The servers read it from the environment, as does _check_file here.
        os.environ[scale_apps.FILES_DIR_ENV] = files
        if "idle" in parts:
            data["idle"] = measure_idle(frameworks, args.log_dir)
        if "streams" in parts:
            traced = {scale_apps.TRACEMALLOC_ENV: "1"} if args.tracemalloc else None
            data["streams"] = measure_streams(frameworks, args.log_dir, traced)
        if "fanout" in parts:
            data["fanout"] = measure_fanout(args.log_dir)
        if "static" in parts and shutil.which("wrk") is None:
            print("wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        elif "static" in parts:
            data["static"], data["static_pathsend"] = measure_static(
                frameworks, args.log_dir, args.rounds, args.duration, args.connections
            )
            data["static_wrk"] = {
                "rounds": args.rounds,
                "duration_s": args.duration,
                "connections": args.connections,
            }
    data["env"] = env.describe(with_wrk=True)
    print(json.dumps({k: v for k, v in data.items() if k != "env"}, indent=1))
    env.write_results(args.json, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
