"""Render docs/benchmarks.md from the result documents the benchmarks wrote.

    python -m benchmarks.report [--results benchmarks/results] [--out docs/benchmarks.md]

Each of inproc.json, routing.json, e2e.json and scale.json (with scale-tracemalloc.json) is
optional; a missing one leaves its section saying how to produce it. The scale section's
memory chart is written beside the page.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import chart, scale_report, tables

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "docs" / "benchmarks.md"

INTRO = """\
# Benchmarks

What a framework costs on top of the server, measured against the physical limit: a raw ASGI
callable doing the same work by hand. Produced by `nox -s bench` (the code is in `benchmarks/`);
every figure below comes from the run described at the end of this page.

How to read it:

- **In-process** drives each framework's ASGI app directly, without sockets: prebuilt scopes
  (a fresh top-level dict per request), a `receive` that hands out prebuilt messages and then,
  like uvicorn, waits for the response before reporting a disconnect, and a `send` that keeps
  the messages. Frameworks run interleaved round by round on one event loop; each figure is the
  median of the rounds. Every app's answer (status, body, Content-Length) is checked before it
  is timed and again after every batch, so nobody wins by doing less.
- **Extra µs** is a framework's median time per request minus raw ASGI's in the same run: the
  framework's own cost. For WebSocket, per session (accept, 100 echoes, close). The main tables
  use the process's CPU time (all its threads), which other work on the shared machine cannot
  inflate; the wall-clock table is there too, and is the one that counts thread hand-offs
  (the file scenarios) but also counts time stolen by other processes.
- **Raw ASGI** does each scenario's work by hand, minimally: the same JSON library, the same
  multipart parser (python-multipart), a one-call pure-Python urlencoded parser, files read on
  the event loop. A compiled parser (Falcon's Cython) can beat it: that shows as a negative
  extra cost.
- The scopes say ASGI spec 2.3, as uvicorn's do. There a client that leaves is reported only
  through `receive()`, so microasgi's streaming and file responses (like Starlette's) watch
  for it, and stop the body when the client goes; BlackSheep and Falcon do not watch, and keep
  producing for a client that has gone. Starlette runs an anyio task group for every
  stream; microasgi runs its watcher in an asyncio task of its own (a nursery on trio),
  which anyio's task group costs several times over there. On a 2.4 server (where `send`
  raises instead) microasgi runs no watcher.
- **Server-sent events**: 16 events (a small JSON document with an id each) from an async
  generator. Raw ASGI frames them by hand; microasgi's `EventSourceResponse` and Starlette
  with sse-starlette's run with their default ping of 15 s, so each stream also runs a ping
  task (it never fires here) beside the disconnect watch every stream has.
- The hooks scenario runs one before and one after hook around the plaintext handler
  (the before hook sets request state the handler answers with, the after hook adds a
  header). Starlette has no request hooks: it does the same work in a pure ASGI
  middleware, the fastest way it offers (a `BaseHTTPMiddleware` costs several times
  more). The plaintext row is the same app without hooks: hooks cost nothing there.
- The 1 MiB scenarios (multipart, FileResponse) move by up to 2x between runs with the memory
  allocator's state: touching fresh memory costs about 300 µs per MiB in page faults on this
  virtual machine, and whether a 1 MiB buffer is fresh depends on what ran before. Compare
  frameworks within one table there too.
- **End to end** serves the same plaintext and JSON apps under uvicorn (httptools, uvloop) and
  granian (uvloop), one worker each, on 127.0.0.1, loaded by `wrk`; figures are ratios to raw
  ASGI on the same server in the same run. On a machine of two cores or more the server runs
  on one core and wrk on another (`taskset`): sharing cores, each took the other's time slices
  and the same code's ratios scattered by about 0.1 from run to run. Client and server still
  share the machine, so besides req/s and p99 the tables give the server's CPU time per
  request (its processes' user + system time over the run, divided by the requests served):
  "capacity vs raw" is raw's CPU per request divided by the framework's, the share of raw's
  throughput the framework would reach on a core of its own.
- The machine is shared and small (see the end): compare columns within one table, not with
  figures from another machine. "not available" means the framework lacks that feature in the
  measured version; "failed" means its answer was wrong and it was not timed.
"""


def _load(results: Path, name: str) -> dict[str, Any] | None:
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _not_run(title: str, name: str) -> str:
    command = f"python -m benchmarks.{name} --json benchmarks/results/{name}.json"
    return f"## {title}\n\nNot run yet: `{command}`.\n"


def _axis_top(groups: Groups) -> float:
    """1.0, or the next quarter above the largest ratio (noise can put one above raw)."""
    largest = max((v for _, row in groups for v in row.values() if v is not None), default=1.0)
    return max(1.0, math.ceil(largest * 4) / 4)


def _figure(svg: str) -> str:
    # A raw HTML block for Markdown (a div, no blank line inside): the SVG passes untouched.
    return f'<div class="benchmark-chart">\n{svg}\n</div>\n'


def _table(headers: list[str], rows: list[list[str]]) -> str:
    return tables.markdown_table(headers, rows) + "\n"


Groups = list[tuple[str, dict[str, float | None]]]


def _share_of_raw(data: dict[str, Any]) -> tuple[Groups, list[str]]:
    series = [fw for fw in tables.inproc_frameworks(data) if fw != "raw"]
    groups = []
    for scenario in data["scenarios"]:
        results = scenario["results"]
        raw = results.get("raw", {})
        row: dict[str, float | None] = {}
        for fw in series:
            result = results.get(fw)
            ok = result is not None and result.get("status") == "ok" and raw.get("status") == "ok"
            row[fw] = (
                raw["cpu"]["median_ns"] / result["cpu"]["median_ns"] if ok and result else None
            )
        groups.append((scenario["title"], row))
    return groups, series


def inproc_section(data: dict[str, Any] | None) -> str:
    """The in-process tables and chart."""
    if data is None:
        return _not_run("In-process", "inproc")
    parts = [
        "## In-process\n",
        f"Event loop: {data['loop']}; {data['rounds']} interleaved rounds of about "
        f"{data['batch_ms']:g} ms per framework and scenario. CPU time: "
        f"{tables.spread_note(data, 'cpu')}; wall-clock: {tables.spread_note(data, 'wall')}.\n",
    ]
    for name, reason in data.get("missing", {}).items():
        parts.append(f"- {name}: {reason}\n")
    sections = [
        ("Extra µs per request over raw ASGI, CPU time (lower is better)", "extra_us", "cpu"),
        ("Requests per second per CPU core (WebSocket: sessions per second)", "rps", "cpu"),
        ("Share of raw ASGI's requests per second (1.00 = no cost at all)", "vs_raw", "cpu"),
        ("Extra µs per request over raw ASGI, wall-clock", "extra_us", "wall"),
    ]
    for title, metric, clock in sections:
        parts.append(f"\n### {title}\n")
        parts.append(_table(*tables.inproc_rows(data, metric, clock)))
    if "microasgi" in tables.inproc_frameworks(data):
        parts.append(
            "\n### microasgi's requests per second divided by each peer's"
            " (CPU time; above 1: microasgi is faster)\n"
        )
        parts.append(_table(*tables.versus_rows(data)))
    groups, series = _share_of_raw(data)
    parts.append("\n### Chart: share of raw ASGI's throughput, in-process (CPU time)\n\n")
    parts.append(
        _figure(
            chart.grouped_bars(
                "In-process throughput as a share of raw ASGI (longer is better)",
                groups,
                series,
                "req/s divided by raw ASGI's req/s",
                max_value=1.0,
            )
        )
    )
    notes = [
        f"- {scenario['title']} / {fw}: {result['status']}: {result['reason']}"
        for scenario in data["scenarios"]
        for fw, result in scenario["results"].items()
        if result["status"] != "ok"
    ]
    if notes:
        parts.append("\nNot timed:\n\n" + "\n".join(notes) + "\n")
    return "\n".join(parts)


def uvloop_section(data: dict[str, Any] | None) -> str:
    """The extra-cost table again, measured on uvloop (optional)."""
    if data is None:
        return ""
    return "\n".join(
        [
            "### The same on uvloop: extra µs per request over raw ASGI\n",
            f"{data['rounds']} rounds; CPU time, {tables.spread_note(data)}.\n",
            _table(*tables.inproc_rows(data, "extra_us")),
            "\nmicroasgi's requests per second divided by each peer's, on uvloop:\n",
            _table(*tables.versus_rows(data)),
        ]
    )


def routing_section(data: dict[str, Any] | None) -> str:
    """The routing micro-benchmark tables."""
    if data is None:
        return _not_run("Routing", "routing")
    from benchmarks.routing import TARGET_RATIO, lookup_rows

    parts = [
        "## Routing\n",
        "microasgi's `Router.lookup` timed on its own for `/users/{user_id:int}`, with that one "
        f"route and with 1,000 other dynamic routes registered before it (target: within "
        f"{TARGET_RATIO}x).\n",
        _table(*lookup_rows(data["lookups"])),
        "\nPlaintext GET in-process in the same run, requests per second per CPU core:\n",
        _table(*tables.inproc_rows(data["plaintext"], "rps")),
    ]
    return "\n".join(parts)


def e2e_section(data: dict[str, Any] | None) -> str:
    """The end-to-end tables and chart."""
    if data is None or not data.get("servers"):
        return _not_run("End to end", "e2e")
    parts = [
        "## End to end\n",
        f"`wrk -t1 -c{data['connections']} --latency`, {data['rounds']} interleaved rounds of "
        f"{data['duration_s']:g} s per framework and scenario; medians of the rounds "
        f"({tables.e2e_spread_note(data)}).\n",
    ]
    groups: Groups = []
    series: list[str] = []
    for server in data["servers"]:
        parts.append(f"\n### {server}\n")
        parts.append(_table(*tables.e2e_rows(data, server)))
        for scenario, results in data["servers"][server].items():
            raw = results.get("raw", {})
            row: dict[str, float | None] = {}
            for fw, result in results.items():
                if fw == "raw":
                    continue
                if fw not in series:
                    series.append(fw)
                ok = result.get("status") == "ok" and raw.get("status") == "ok"
                row[fw] = raw["cpu_us"] / result["cpu_us"] if ok and result["cpu_us"] else None
            groups.append((f"{server}: {scenario}", row))
    parts.append("\n### Chart: capacity as a share of raw ASGI's, end to end\n\n")
    parts.append(
        _figure(
            chart.grouped_bars(
                "End to end: capacity (1 / server CPU per request) as a share of raw ASGI's",
                groups,
                series,
                "raw ASGI's server CPU per request divided by the framework's",
                max_value=_axis_top(groups),
            )
        )
    )
    return "\n".join(parts)


def env_section(docs: Sequence[dict[str, Any] | None]) -> str:
    """Machine, Python and package versions (from the first result that has them)."""
    described = [d["env"] for d in docs if d is not None and "env" in d]
    if not described:
        return ""
    info = dict(described[0])
    for other in described[1:]:
        if other.get("wrk"):
            info["wrk"] = other["wrk"]
    revisions = ", ".join(
        f"{d['kind']}{' (' + d['loop'] + ')' if d.get('loop') else ''}: "
        f"{d['env'].get('revision') or 'unknown'}"
        for d in docs
        if d is not None and "env" in d
    )
    lines = [
        "## Machine and versions\n",
        f"- microasgi revision measured: {revisions}",
        f"- CPU: {info['cpu']}, {info['cores']} cores (shared with other work while measuring)",
        f"- OS: {info['os']}",
        f"- Python: {info['python']} ({info['python_build']})",
    ]
    if info.get("wrk"):
        lines.append(f"- wrk: {info['wrk']}")
    packages = ", ".join(
        f"{name} {version}" for name, version in info["packages"].items() if version
    )
    lines.append(f"- Packages: {packages}")
    return "\n".join(lines) + "\n"


def render(results: Path) -> str:
    """The whole page."""
    inproc, routing, e2e = (_load(results, name) for name in ("inproc", "routing", "e2e"))
    on_uvloop = _load(results, "inproc-uvloop")
    scale = _load(results, "scale")
    sections = [
        INTRO,
        inproc_section(inproc),
        uvloop_section(on_uvloop),
        routing_section(routing),
        e2e_section(e2e),
        scale_report.scale_section(scale, _load(results, "scale-tracemalloc")),
        env_section([inproc, on_uvloop, routing, e2e, scale]),
    ]
    return "\n".join(s for s in sections if s)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="write docs/benchmarks.md from the results")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(args.results))
    print(f"wrote {args.out}")
    svg = scale_report.write_chart(_load(args.results, "scale"), args.out.parent)
    if svg is not None:
        print(f"wrote {svg}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
