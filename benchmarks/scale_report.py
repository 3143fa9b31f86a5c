"""The "One worker under load" section of docs/benchmarks.md, from ``benchmarks.scale``'s
results (scale.json, and scale-tracemalloc.json for the Python heap per stream)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import chart, tables

CHART_FILE = "benchmarks-memory.svg"
TITLES = {
    "stream": "StreamingResponse (raw ASGI: the same by hand)",
    "sse": "Server-sent events (EventSourceResponse; raw ASGI: framed by hand, no ping)",
}
FRAMEWORK_NAMES = {"raw": "raw ASGI"}
# A variant measured on its own (scale.VARIANTS), shown as a row of its kind's table.
VARIANT_ROWS = {
    "stream": ("stream, no watch", "raw", "raw ASGI, no watch"),
    "sse": ("sse, no ping", "microasgi", "microasgi, ping=None"),
}

INTRO = """\
## One worker under load

How far one uvicorn worker (httptools, uvloop, its default WebSocket implementation,
websockets' sans-I/O one) goes with each framework: thousands of idle WebSockets, a thousand
long-lived streams, a broadcast to a thousand subscribers, and files. Produced by
`python -m benchmarks.scale` (in `nox -s bench`); the clients are one asyncio process of
protocol callbacks (`benchmarks/loadclient.py`: no task per connection), on the same
two-core machine as the server.

- **Memory** is the server process's resident set (VmRSS of `/proc/PID/status`) after
  opening the connections minus before, per connection, with {held} connections of the
  same kind already open before (the first ones would otherwise fill the memory the
  allocator keeps free since startup, and look free). It moves by up to 2 KiB between
  runs, with what the allocator happens to hold. The **Python heap** columns come from a
  second run of the streams with `tracemalloc` in the server (for raw ASGI, microasgi and
  Starlette): every Python object the streams hold, exactly, but not the server's C
  buffers; that run's other figures are not used.
- **CPU** is the server process's CPU time (the scheduler's count of all its threads,
  `/proc/PID/task/*/schedstat`: utime + stime at nanosecond resolution) over the work,
  divided by the messages echoed or the events the generators produced. Echoes are
  measured with every framework's server up side by side, in {samples} interleaved
  rounds of {per_sample} echoes on each of {echo_connections} connections; the figure is
  the median round. Likewise a stream's: every framework's server streaming to
  {clients:,} clients at once, {cpu_samples} rounds of a {cpu_window:g} s window on each
  in turn, the median window.
- **Stopping**: once a stream has run a while, every client leaves at once; the app
  counts its live generators (a `finally` in the generator) and is polled until none is
  left, for at most {stop_wait:g} s. The goal is within {stop_goal:g} s. uvicorn speaks
  ASGI 2.3: a client that left is reported only through `receive()`, and a `send` to it
  is silently dropped, so a framework that does not watch `receive()` during a stream
  never stops its generator: it runs to its end (here {max_ticks} items) for nobody.
  Watching costs a task per stream: raw ASGI's streams run a watcher task of their own,
  and "raw ASGI, no watch" shows the same stream without it.
"""


def _ok(result: dict[str, Any] | None) -> bool:
    return result is not None and result.get("status") == "ok"


def _ratio(value: float | None, raw: float | None) -> str:
    return f"{value / raw:.2f}" if value is not None and raw else tables.NA


def _number(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else tables.NA


def _name(framework: str) -> str:
    return FRAMEWORK_NAMES.get(framework, framework)


def idle_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Memory per idle WebSocket at each count, and CPU per echoed message."""
    counts = [str(c) for c in data["idle_counts"]]
    top = counts[-1]
    headers = [
        "framework",
        *[f"KiB per connection, {int(c):,} open" for c in counts],
        f"vs raw ({int(top):,})",
        "CPU µs per echoed message",
        "vs raw",
    ]
    raw = data["idle"].get("raw", {})
    rows = []
    for framework, result in data["idle"].items():
        if not _ok(result):
            rows.append([_name(framework), tables.cell_status(result), *[""] * (len(counts) + 2)])
            continue
        memory = result["kib_per_connection"]
        cpu = result.get("cpu_us_per_message")
        raw_memory = raw.get("kib_per_connection", {}).get(top) if _ok(raw) else None
        rows.append(
            [
                _name(framework),
                *[f"{memory[c]:.1f}" for c in counts],
                _ratio(memory[top], raw_memory),
                _number(cpu),
                _ratio(cpu, raw.get("cpu_us_per_message")),
            ]
        )
    return headers, rows


def _stopped(result: dict[str, Any], wait: float) -> str:
    if result["stop_s"] is None:
        return f"not within {wait:g} s ({result['still_live']:,} still running)"
    return f"{result['stop_s']:.2f} s"


def _with_variant(streams: dict[str, Any], kind: str) -> dict[str, Any]:
    """The results of one kind, with its variant's under the variant's row name."""
    results = dict(streams.get(kind, {}))
    variant, framework, row = VARIANT_ROWS[kind]
    if framework in streams.get(variant, {}):
        results[row] = streams[variant][framework]
    return results


def stream_rows(
    data: dict[str, Any], kind: str, heap: dict[str, Any] | None
) -> tuple[list[str], list[list[str]]]:
    """One row per framework for one kind of stream."""
    headers = [
        "framework",
        "KiB per stream",
        "vs raw",
        "Python heap KiB per stream",
        "vs raw",
        "CPU µs per event",
        "vs raw",
        "generators stopped after",
        f"within {data['stop_goal_s']:g} s",
    ]
    results, heaps = _with_variant(data["streams"], kind), _with_variant(heap or {}, kind)
    raw, raw_heap = results.get("raw", {}), heaps.get("raw", {})
    rows = []
    for framework, result in results.items():
        if not _ok(result):
            rows.append([_name(framework), tables.cell_status(result), *[""] * 7])
            continue
        traced = heaps.get(framework, {})
        kib = traced.get("heap_kib_per_stream") if _ok(traced) else None
        raw_kib = raw_heap.get("heap_kib_per_stream") if _ok(raw_heap) else None
        rows.append(
            [
                _name(framework),
                f"{result['kib_per_stream']:.1f}",
                _ratio(result["kib_per_stream"], raw.get("kib_per_stream")),
                _number(kib),
                _ratio(kib, raw_kib),
                _number(result.get("cpu_us_per_event")),
                _ratio(result.get("cpu_us_per_event"), raw.get("cpu_us_per_event")),
                _stopped(result, data["stop_wait_s"]),
                "yes" if result["within_goal"] else "no",
            ]
        )
    return headers, rows


def fanout_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Time from a publish until the last member has the message."""
    headers = ["setup", "members", "median ms", "slowest ms"]
    rows = []
    for setup, result in data["fanout"].items():
        if not _ok(result):
            rows.append([setup, tables.cell_status(result), "", ""])
            continue
        median, slowest = result["median_ms"], result["max_ms"]
        rows.append([setup, f"{result['members']:,}", f"{median:.1f}", f"{slowest:.1f}"])
    return headers, rows


def memory_chart(data: dict[str, Any]) -> str:
    """SVG bars: KiB per idle WebSocket and per stream, by framework (RSS)."""
    top = str(data["idle_counts"][-1])
    groups: list[tuple[str, dict[str, float | None]]] = []
    if "idle" in data:
        groups.append(
            (
                f"idle WebSocket ({int(top):,} open)",
                {
                    fw: r["kib_per_connection"][top] if _ok(r) else None
                    for fw, r in data["idle"].items()
                },
            )
        )
    for kind, label in (("stream", "StreamingResponse"), ("sse", "server-sent events")):
        results = data.get("streams", {}).get(kind, {})
        if results:
            groups.append(
                (label, {fw: r["kib_per_stream"] if _ok(r) else None for fw, r in results.items()})
            )
    series = list(dict.fromkeys(fw for _, row in groups for fw in row))
    largest = max((v for _, row in groups for v in row.values() if v is not None), default=10.0)
    return chart.grouped_bars(
        "Server memory (RSS) per connection or stream, KiB (shorter is better)",
        groups,
        series,
        "KiB per connection or stream, uvicorn, one worker",
        max_value=math.ceil(largest / 10) * 10,  # grid lines on round numbers
        digits=1,
    )


def _summary(data: dict[str, Any], heap: dict[str, Any] | None) -> str:
    """microasgi's figures as ratios to raw ASGI's, in one list."""
    lines = []
    idle = data.get("idle", {})
    mine, raw = idle.get("microasgi"), idle.get("raw")
    if _ok(mine) and _ok(raw):
        assert mine is not None
        assert raw is not None
        top = str(data["idle_counts"][-1])
        ours, theirs = mine["kib_per_connection"][top], raw["kib_per_connection"][top]
        cpu, raw_cpu = mine.get("cpu_us_per_message"), raw.get("cpu_us_per_message")
        lines.append(
            f"- idle WebSocket: {ours:.1f} KiB against raw's {theirs:.1f} "
            f"({_ratio(ours, theirs)}x); CPU per echoed message {_number(cpu)} µs against "
            f"{_number(raw_cpu)} ({_ratio(cpu, raw_cpu)}x)"
        )
    for kind, label in (("stream", "stream"), ("sse", "event stream")):
        results = data.get("streams", {}).get(kind, {})
        mine, raw = results.get("microasgi"), results.get("raw")
        if not (_ok(mine) and _ok(raw)):
            continue
        assert mine is not None
        assert raw is not None
        line = (
            f"- {label}: {mine['kib_per_stream']:.1f} KiB against raw's "
            f"{raw['kib_per_stream']:.1f} ({mine['kib_per_stream'] / raw['kib_per_stream']:.2f}x)"
        )
        traced = (heap or {}).get(kind, {})
        if _ok(traced.get("microasgi")) and _ok(traced.get("raw")):
            ours = traced["microasgi"]["heap_kib_per_stream"]
            theirs = traced["raw"]["heap_kib_per_stream"]
            line += f", Python heap {ours:.1f} against {theirs:.1f} ({ours / theirs:.2f}x)"
        line += (
            f"; CPU per event {_ratio(mine.get('cpu_us_per_event'), raw.get('cpu_us_per_event'))}"
            f"x raw's; generators stopped after {_stopped(mine, data['stop_wait_s'])}"
        )
        quiet = data["streams"].get("sse, no ping", {}).get("microasgi") if kind == "sse" else None
        if _ok(quiet):
            assert quiet is not None
            line += (
                f" (with `ping=None`, no ping task: {quiet['kib_per_stream']:.1f} KiB, "
                f"{quiet['kib_per_stream'] / raw['kib_per_stream']:.2f}x)"
            )
        lines.append(line)
    return "microasgi against raw ASGI in this run:\n\n" + "\n".join(lines) + "\n" if lines else ""


# Why a peer holds a stream in less memory or CPU, for the peers measured here.
NO_WATCH = (
    "the peer does not watch for the client during a stream (no task beside the generator, no "
    "cancel scope), and so its generators ran on after their clients had left"
)
REASONS = {
    ("sse", "falcon"): (
        "its event stream runs a watcher task like raw ASGI's, but no ping (so no second task, "
        "no timer) and no cancel scope: it notices the client left only when the generator "
        "yields again (here within 200 ms; a quiet generator stays until its next event, and "
        "is never closed, only dropped)"
    ),
}
# A result's figure (given the top count), None when it was not measured.
Figure = Callable[[dict[str, Any], str], "float | None"]
METRICS: tuple[tuple[str, str, Figure, str], ...] = (
    ("idle", "idle WebSocket memory", lambda r, top: r["kib_per_connection"][top], "KiB"),
    ("idle", "CPU per echoed message", lambda r, top: r.get("cpu_us_per_message"), "µs"),
    ("stream", "stream memory", lambda r, top: r["kib_per_stream"], "KiB"),
    ("stream", "CPU per stream event", lambda r, top: r.get("cpu_us_per_event"), "µs"),
    ("sse", "event-stream memory", lambda r, top: r["kib_per_stream"], "KiB"),
    ("sse", "CPU per server-sent event", lambda r, top: r.get("cpu_us_per_event"), "µs"),
)


def _cpu_reason(data: dict[str, Any], part: str) -> str:
    if part == "idle":
        return "within what the shared machine's load moves a CPU figure (10-20 %)"
    unwatched = data.get("streams", {}).get(VARIANT_ROWS["stream"][0], {}).get("raw")
    floor = f" (raw ASGI without one: {unwatched['cpu_us_per_event']:.1f} µs)" if unwatched else ""
    return (
        "the peer's way from the generator to `send` is shorter than microasgi's, which "
        "checks each chunk's type and counts turns for the event loop, and for events also "
        "frames them in a generator of its own and notes when each went out, for the ping; "
        f"the watch for the client costs no CPU per event{floor}"
    )


# What a server's answer for a file costs microasgi where the server does not send the file
# itself (no pathsend), and where it does.
FILE_THREADS = (
    "without pathsend, microasgi's FileResponse does the stat, the open, the reads (four "
    "64 KiB reads per hop) and the close each in an anyio worker thread, and on an ASGI 2.3 "
    "server watches for the client while the file goes (a task and a cancel scope per "
    "response): for a small file these hops cost more CPU than the read itself. BlackSheep "
    "reads through asyncio's executor; Falcon's static route opens the file on the event loop"
)
FILE_PATHSEND = (
    "the server sends the file for microasgi (pathsend); microasgi still stats it in a "
    "worker thread and makes its validators (ETag, Last-Modified)"
)
NOISE = 0.85  # a CPU figure within this share of microasgi's is within the runs' noise


def _static_ahead(static: dict[str, Any], pathsend: dict[str, bool]) -> list[tuple[str, str]]:
    found = []
    for server, scenarios in static.items():
        for scenario, results in scenarios.items():
            mine = results.get("microasgi")
            if not _ok(mine):
                continue
            ours = mine["cpu_us"]
            for peer, result in results.items():
                if peer in ("raw", "microasgi") or not _ok(result) or result["cpu_us"] >= ours:
                    continue
                if result["cpu_us"] > NOISE * ours:
                    why = "within the noise of these runs (10-15 %)"
                else:
                    why = FILE_PATHSEND if pathsend.get(server) else FILE_THREADS
                found.append(
                    (
                        why,
                        f"{scenario} under {server}: {peer} {result['cpu_us']:.0f} µs of server "
                        f"CPU per request against microasgi's {ours:.0f}",
                    )
                )
    return found


def _by_reason(found: list[tuple[str, str]]) -> list[str]:
    """One bullet per reason: the reason once, then its figures (four-space nesting, as
    Python-Markdown wants)."""
    figures: dict[str, list[str]] = {}
    for why, figure in found:
        figures.setdefault(why, []).append(figure)
    lines = []
    for why, texts in figures.items():
        if len(texts) == 1 or not why:
            lines += [f"- {text}" + (f": {why}." if why else ".") for text in texts]
        else:
            lines.append(f"- {why[0].upper()}{why[1:]}:")
            lines += [f"    - {text}" for text in texts]
    return lines


def _peers_ahead(data: dict[str, Any]) -> str:
    """Each figure where a peer does better than microasgi, and why."""
    top = str(data["idle_counts"][-1])
    found: list[tuple[str, str]] = []
    for part, label, figure, unit in METRICS:
        results = data.get("idle", {}) if part == "idle" else data.get("streams", {}).get(part, {})
        mine = results.get("microasgi")
        if not _ok(mine):
            continue
        ours = figure(mine, top)
        for peer, result in results.items():
            if peer in ("raw", "microasgi") or not _ok(result):
                continue
            theirs = figure(result, top)
            if ours is None or theirs is None or theirs >= ours:
                continue
            if unit == "µs":
                why = _cpu_reason(data, part)
            elif part != "idle" and result["stop_s"] is None:
                why = NO_WATCH
            else:
                why = REASONS.get((part, peer), "")
            figure_text = f"{label}: {peer} {theirs:.1f} {unit} against microasgi's {ours:.1f}"
            found.append((why, figure_text))
    found += _static_ahead(data.get("static", {}), data.get("static_pathsend", {}))
    lines = _by_reason(found)
    if not lines:
        return ""
    title = "Where a peer does better than microasgi in this run, and why:"
    return title + "\n\n" + "\n".join(lines) + "\n"


def scale_section(data: dict[str, Any] | None, traced: dict[str, Any] | None = None) -> str:
    """The whole section (tables, summary, the chart's image); ``traced`` is the streams'
    run with tracemalloc."""
    heap = (traced or {}).get("streams")
    if data is None:
        command = "python -m benchmarks.scale --json benchmarks/results/scale.json"
        return f"## One worker under load\n\nNot run yet: `{command}`.\n"
    parts = [
        INTRO.format(
            held=data["held"],
            samples=data["echo_samples"],
            per_sample=data["echoes_per_sample"],
            echo_connections=data["echo_connections"],
            clients=data["stream_clients"],
            cpu_samples=data["cpu_samples"],
            cpu_window=data["cpu_window_s"],
            stop_wait=data["stop_wait_s"],
            stop_goal=data["stop_goal_s"],
            max_ticks=data["max_ticks"],
        ),
        _summary(data, heap),
        _peers_ahead(data),
    ]
    if "idle" in data or "streams" in data:
        parts.append(f"![Server memory per connection and per stream]({CHART_FILE})\n")
    if "idle" in data:
        parts.append("### Idle WebSockets\n")
        parts.append(
            "Each connection is opened (handshake done) and left idle; the echoes are then one "
            "text message at a time on every connection at once.\n"
        )
        parts.append(tables.markdown_table(*idle_rows(data)) + "\n")
    for kind, title in TITLES.items():
        if kind in data.get("streams", {}):
            parts.append(
                f"### {data['stream_clients']:,} streams, one item every "
                f"{data['tick_s'] * 1000:g} ms: {title}\n"
            )
            parts.append(tables.markdown_table(*stream_rows(data, kind, heap)) + "\n")
    if "fanout" in data:
        parts.append("### Broadcast fan-out\n")
        parts.append(
            f"{data['fanout_members']:,} WebSocket members of one room; one more member "
            f"publishes a message (text, through its WebSocket), {data['fanout_publishes']} "
            "times; the time from the publisher's send until the last member has the message, "
            "as the client process sees it (its own reading included). Raw ASGI keeps a set of "
            "queues, one per member; microasgi is the chat example's room: a `Broadcast` "
            "(memory://) and a relay task per member. Over Redis, the members are spread over "
            "two single-worker servers sharing one redis-server, the publisher on the first. "
            "Starlette, BlackSheep and Falcon have no broadcast of their own.\n"
        )
        parts.append(tables.markdown_table(*fanout_rows(data)) + "\n")
    if "static" in data:
        wrk = data["static_wrk"]
        parts.append("### Static files\n")
        parts.append(
            f"`wrk -t1 -c{wrk['connections']}`, {wrk['rounds']} interleaved rounds of "
            f"{wrk['duration_s']:g} s per framework and path; medians. Raw ASGI reads the file "
            "on the event loop in 64 KiB pieces, or hands the server its path "
            "(`http.response.pathsend`) where it offers that ("
            + _offering(data.get("static_pathsend", {}))
            + "). Falcon has no file response (its static route serves files).\n"
        )
        for server in data["static"]:
            parts.append(f"\n#### {server}\n")
            parts.append(
                tables.markdown_table(*tables.e2e_rows({"servers": data["static"]}, server))
            )
            parts.append("\n")
    return "\n".join(parts)


def _offering(pathsend: dict[str, bool]) -> str:
    said = [f"{server} {'does' if offers else 'does not'}" for server, offers in pathsend.items()]
    return ", ".join(said) or "as its scope says"


def write_chart(data: dict[str, Any] | None, docs: Path) -> Path | None:
    """Write the memory chart next to the page (None when there is nothing to draw)."""
    if data is None or not ({"idle", "streams"} & set(data)):
        return None
    path = docs / CHART_FILE
    path.write_text(memory_chart(data) + "\n")
    return path
