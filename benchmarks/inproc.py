"""In-process benchmark: each framework's ASGI app driven directly, no sockets.

Frameworks are interleaved round by round on one event loop so that noise from the (shared)
machine hits them alike; each round runs one calibrated batch per framework, and the figure is
the median of the rounds. Every app's answer is checked before it is timed, and the last answer
of every batch is checked again.

    python -m benchmarks.inproc [--rounds N] [--batch-ms MS] [--loop asyncio|uvloop]
                                [--scenarios a,b] [--frameworks a,b] [--json PATH] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import apps, env, tables
from benchmarks.harness import (
    ASGIApp,
    Lifespan,
    Unavailable,
    assemble,
    calibrate,
    call_once,
    run_batch,
    settle,
)
from benchmarks.scenarios import Fixtures, Scenario, all_scenarios, make_fixtures


def load_frameworks(names: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Import each framework's app module; the missing ones are returned with the reason."""
    loaded: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for name in names:
        try:
            loaded[name] = apps.load(name)
        except ImportError as exc:
            missing[name] = f"not installed ({exc})"
            print(f"skipping {name}: {missing[name]}", file=sys.stderr)
    if "raw" not in loaded:
        raise SystemExit("the raw ASGI baseline could not be loaded")
    return loaded, missing


async def _prepare(
    scenario: Scenario, modules: dict[str, Any], fixtures: Fixtures
) -> tuple[dict[str, ASGIApp], dict[str, dict[str, Any]], list[Lifespan]]:
    """Build, start and check each framework's app for one scenario."""
    ready: dict[str, ASGIApp] = {}
    results: dict[str, dict[str, Any]] = {}
    lifespans: list[Lifespan] = []
    for name, module in modules.items():
        builder = module.APPS.get(scenario.app_id)
        try:
            if builder is None:
                raise Unavailable(f"{name} has no app for {scenario.id}")
            app = builder(fixtures)
            lifespan = Lifespan(app)
            await lifespan.startup()
            lifespans.append(lifespan)
            for _ in range(3):  # more than once: a cache filled by the first call must not break
                error = scenario.check(await call_once(app, scenario.request))
                if error:
                    break
        except Unavailable as exc:
            results[name] = {"status": "not available", "reason": str(exc)}
            continue
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error:
            results[name] = {"status": "failed", "reason": error}
            print(f"  {name}: FAILED the answer check: {error}", file=sys.stderr)
            continue
        ready[name] = app
    return ready, results, lifespans


def _summary(values: list[float]) -> dict[str, float]:
    """Median and quartiles of per-request nanoseconds over the rounds."""
    quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return {"median_ns": statistics.median(values), "p25_ns": quartiles[0], "p75_ns": quartiles[2]}


async def run_scenario(
    scenario: Scenario,
    modules: dict[str, Any],
    fixtures: Fixtures,
    rounds: int,
    batch_ns: int,
) -> dict[str, Any]:
    """Measure one scenario across frameworks; returns its result entry."""
    print(f"{scenario.title} ...", file=sys.stderr, flush=True)
    ready, results, lifespans = await _prepare(scenario, modules, fixtures)
    try:
        sizes = {
            name: await calibrate(app, scenario.request, batch_ns) for name, app in ready.items()
        }
        samples: dict[str, list[float]] = {name: [] for name in ready}
        cpu_samples: dict[str, list[float]] = {name: [] for name in ready}
        order = list(ready)
        for r in range(rounds):
            shift = r % len(order) if order else 0
            for name in order[shift:] + order[:shift]:
                await settle(ready[name], scenario.request)
                n = sizes[name]
                batch = await run_batch(ready[name], scenario.request, n)
                error = scenario.check(assemble(batch.last))
                if error:
                    raise AssertionError(f"{name} answered wrongly while timed: {error}")
                samples[name].append(batch.wall_ns / n)
                cpu_samples[name].append(batch.cpu_ns / n)
    finally:
        for lifespan in lifespans:
            await lifespan.shutdown()
    for name, values in samples.items():
        results[name] = {
            "status": "ok",
            "wall": _summary(values),
            "cpu": _summary(cpu_samples[name]),
            "batch": sizes[name],
            "rounds": len(values),
        }
    return {
        "id": scenario.id,
        "title": scenario.title,
        "unit": scenario.unit,
        "results": results,
    }


async def run(
    scenario_ids: Sequence[str] | None,
    framework_names: Sequence[str],
    rounds: int,
    batch_ms: float,
) -> dict[str, Any]:
    """Run the chosen scenarios; returns the whole result document."""
    modules, missing = load_frameworks(framework_names)
    chosen = [s for s in all_scenarios() if scenario_ids is None or s.id in scenario_ids]
    fixtures, tmp = make_fixtures()
    try:
        entries = [
            await run_scenario(s, modules, fixtures, rounds, int(batch_ms * 1e6)) for s in chosen
        ]
    finally:
        tmp.cleanup()
    return {
        "kind": "inproc",
        "rounds": rounds,
        "batch_ms": batch_ms,
        "frameworks": list(framework_names),
        "missing": missing,
        "scenarios": entries,
    }


def print_report(data: dict[str, Any]) -> None:
    """Print the tables to stdout."""
    for title, metric, clock in (
        ("Extra CPU µs per request over raw ASGI (lower is better)", "extra_us", "cpu"),
        ("Requests per second per CPU core (WebSocket: sessions)", "rps", "cpu"),
        ("req/s as a share of raw ASGI's (CPU time)", "vs_raw", "cpu"),
        ("Extra wall-clock µs per request over raw ASGI", "extra_us", "wall"),
    ):
        headers, rows = tables.inproc_rows(data, metric, clock)
        print(f"\n{title} [loop: {data['loop']}]\n")
        print(tables.markdown_table(headers, rows))
    if "microasgi" in tables.inproc_frameworks(data):
        headers, rows = tables.versus_rows(data)
        print("\nmicroasgi req/s divided by each peer's (CPU time; above 1: microasgi is faster)\n")
        print(tables.markdown_table(headers, rows))
    for clock in tables.CLOCKS:
        print(f"\n{clock}: {tables.spread_note(data, clock)}")
    for scenario in data["scenarios"]:
        for fw, result in scenario["results"].items():
            if result["status"] != "ok":
                print(f"  {scenario['title']} / {fw}: {result['status']}: {result['reason']}")


def install_loop(loop: str) -> None:
    """Use uvloop's event loop policy when asked (and installed)."""
    if loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--batch-ms", type=float, default=10.0)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--scenarios", help="comma-separated scenario ids (default: all)")
    parser.add_argument("--frameworks", default=",".join(apps.FRAMEWORKS))
    parser.add_argument("--json", type=Path, help="write the results document here")
    parser.add_argument(
        "--check", action="store_true", help="only build and check every app once (no timing)"
    )
    args = parser.parse_args(argv)
    frameworks = args.frameworks.split(",")
    if "raw" not in frameworks:
        frameworks.insert(0, "raw")
    scenario_ids = args.scenarios.split(",") if args.scenarios else None
    install_loop(args.loop)
    rounds, batch_ms = (1, 0.001) if args.check else (args.rounds, args.batch_ms)
    data = asyncio.run(run(scenario_ids, frameworks, rounds, batch_ms))
    data["loop"] = args.loop
    data["env"] = env.describe()
    failed = [
        f"{s['id']}/{fw}"
        for s in data["scenarios"]
        for fw, r in s["results"].items()
        if r["status"] == "failed"
    ]
    if args.check:
        for scenario in data["scenarios"]:
            states = ", ".join(f"{fw}: {r['status']}" for fw, r in scenario["results"].items())
            print(f"{scenario['id']}: {states}")
    else:
        print_report(data)
    env.write_results(args.json, data)
    if failed:
        print(f"answer check failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
