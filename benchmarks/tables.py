"""Turn result dicts into table rows; shared by the command-line output and docs/benchmarks.md."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

NA = "n/a"
# "cpu": process CPU time per request, which other processes' load cannot inflate (thread
# hand-off waits are not in it); "wall": wall-clock time per request.
CLOCKS = ("cpu", "wall")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Render a GitHub-flavoured Markdown table with right-aligned number columns."""
    align = ["---"] + ["---:"] * (len(headers) - 1)
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _ok(result: dict[str, Any] | None) -> bool:
    return result is not None and result.get("status") == "ok"


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def cell_status(result: dict[str, Any] | None) -> str:
    """What a table shows for a framework that has no figure for a scenario."""
    if result is None:
        return "not installed"
    status = str(result.get("status"))
    return "not available" if status == "not available" else status


def inproc_frameworks(data: dict[str, Any]) -> list[str]:
    """The frameworks that took part (installed), in report order."""
    return [fw for fw in data["frameworks"] if fw not in data.get("missing", {})]


def _ns(result: dict[str, Any], clock: str) -> float:
    return float(result[clock]["median_ns"])


def inproc_rows(
    data: dict[str, Any], metric: str, clock: str = "cpu"
) -> tuple[list[str], list[list[str]]]:
    """One row per scenario; ``metric`` is ``extra_us``, ``rps``, ``vs_raw`` or ``us``."""
    frameworks = inproc_frameworks(data)
    if metric == "extra_us":
        frameworks = [fw for fw in frameworks if fw != "raw"]
    headers = ["scenario", *frameworks]
    rows = []
    for scenario in data["scenarios"]:
        results = scenario["results"]
        raw = results.get("raw")
        row = [scenario["title"]]
        for fw in frameworks:
            result = results.get(fw)
            if not _ok(result):
                row.append(cell_status(result))
                continue
            assert result is not None
            ns = _ns(result, clock)
            if metric == "us":
                row.append(_fmt(ns / 1000, 2))
            elif metric == "rps":
                row.append(_fmt(1e9 / ns, 0))
            elif not _ok(raw):
                row.append(NA)
            else:
                assert raw is not None
                raw_ns = _ns(raw, clock)
                if metric == "extra_us":
                    row.append(_fmt((ns - raw_ns) / 1000, 1))
                else:
                    row.append(f"{raw_ns / ns:.2f}")
        rows.append(row)
    return headers, rows


def versus_rows(
    data: dict[str, Any], subject: str = "microasgi", clock: str = "cpu"
) -> tuple[list[str], list[list[str]]]:
    """``subject``'s req/s divided by each peer's (above 1: ``subject`` is faster)."""
    peers = [fw for fw in inproc_frameworks(data) if fw not in ("raw", subject)]
    headers = ["scenario", *[f"vs {peer}" for peer in peers]]
    rows = []
    for scenario in data["scenarios"]:
        results = scenario["results"]
        mine = results.get(subject)
        row = [scenario["title"]]
        for peer in peers:
            theirs = results.get(peer)
            if _ok(mine) and _ok(theirs):
                assert mine is not None
                assert theirs is not None
                row.append(f"{_ns(theirs, clock) / _ns(mine, clock):.2f}x")
            else:
                row.append(NA)
        rows.append(row)
    return headers, rows


def spread_note(data: dict[str, Any], clock: str = "cpu") -> str:
    """How noisy the run was: the interquartile spread of the rounds, as a share of the median."""
    return _spread_text(
        "the rounds",
        [
            (result[clock]["p75_ns"] - result[clock]["p25_ns"]) / result[clock]["median_ns"]
            for scenario in data["scenarios"]
            for result in scenario["results"].values()
            if _ok(result) and result[clock]["median_ns"]
        ],
    )


def e2e_spread_note(data: dict[str, Any]) -> str:
    """How noisy an end-to-end run was: the interquartile spread of the server's CPU per
    request over the rounds, as a share of its median."""
    spreads = []
    for by_scenario in data["servers"].values():
        for results in by_scenario.values():
            for result in results.values():
                cpu = [run["cpu_us"] for run in result.get("runs", ()) if run["cpu_us"]]
                if _ok(result) and len(cpu) > 1:
                    quartiles = statistics.quantiles(cpu, n=4)
                    spreads.append((quartiles[2] - quartiles[0]) / statistics.median(cpu))
    return _spread_text("the rounds' server CPU per request", spreads)


def _spread_text(of: str, spreads: list[float]) -> str:
    """The middle and the largest of ``spreads`` (interquartile spreads, each as a share of
    its median), in words."""
    if not spreads:
        return "no timed results"
    spreads = sorted(spreads)
    return (
        f"interquartile spread of {of}: {spreads[len(spreads) // 2]:.0%} of the median "
        f"typically, {spreads[-1]:.0%} at worst"
    )


def e2e_rows(data: dict[str, Any], server: str) -> tuple[list[str], list[list[str]]]:
    """One row per framework and scenario under one server: req/s, p99 and ratios to raw."""
    headers = [
        "scenario",
        "framework",
        "server CPU µs/req",
        "capacity vs raw",
        "req/s",
        "req/s vs raw",
        "p99 ms",
        "p99 vs raw",
    ]
    rows = []
    by_scenario = data["servers"].get(server, {})
    for scenario, results in by_scenario.items():
        raw = results.get("raw")
        for fw, result in results.items():
            if not _ok(result):
                rows.append([scenario, fw, cell_status(result), "", "", "", "", ""])
                continue
            rps, p99, cpu = float(result["rps"]), float(result["p99_ms"]), float(result["cpu_us"])
            if _ok(raw):
                assert raw is not None
                # capacity: requests one core could serve, from the server's CPU per request
                vs_cpu = f"{float(raw['cpu_us']) / cpu:.2f}" if cpu else NA
                vs_rps = f"{rps / float(raw['rps']):.2f}"
                vs_p99 = f"{p99 / float(raw['p99_ms']):.2f}"
            else:
                vs_cpu = vs_rps = vs_p99 = NA
            rows.append(
                [scenario, fw, f"{cpu:.1f}", vs_cpu, _fmt(rps, 0), vs_rps, f"{p99:.2f}", vs_p99]
            )
    return headers, rows
