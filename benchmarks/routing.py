"""Routing micro-benchmark: microasgi's route lookup with 1,000 dynamic routes vs with 1.

The lookup is timed on its own (``Router.lookup``, no request around it) so the fixed cost of a
request cannot hide a lookup that grows with the table; the target is 1,000 routes within 1.5x
of 1. Several shapes of table are tried, plus a miss (a 404 must not scan the table either).
Then plaintext GET req/s in-process for raw ASGI, microasgi and Starlette, in the same run.

    python -m benchmarks.routing [--rounds N] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import env, inproc, tables
from benchmarks.scenarios import N_EXTRA_ROUTES, USER_ID
from microasgi.routing import Miss

TARGET_RATIO = 1.5
TARGET = "/users/{user_id:int}"

# name -> (the 1,000 other routes, the path looked up, whether it should match)
SHAPES: dict[str, tuple[Callable[[int], str], str, bool]] = {
    "distinct prefixes /r{i}/{x:int}": (lambda i: f"/r{i}/{{x:int}}", f"/users/{USER_ID}", True),
    "under the same param /users/{user_id:int}/p{i}": (
        lambda i: f"/users/{{user_id:int}}/p{i}",
        f"/users/{USER_ID}",
        True,
    ),
    "param first /{name}/r{i}": (lambda i: f"/{{name}}/r{i}", f"/users/{USER_ID}", True),
    "a miss (404) among /r{i}/{x:int}": (lambda i: f"/r{i}/{{x:int}}", "/nowhere/12345", False),
}


async def _endpoint(request: Any, **params: Any) -> str:
    return "ok"


def _router(extra: Callable[[int], str] | None) -> Any:
    from microasgi.routing import Router

    router = Router()
    if extra is not None:
        for i in range(N_EXTRA_ROUTES):
            router.add_route(extra(i), _endpoint, methods=["GET"], name=f"other{i}")
    router.add_route(TARGET, _endpoint, methods=["GET"], name="user")
    router.prepare()
    return router


def _time_lookups(router: Any, path: str, n: int) -> float:
    lookup = router.lookup
    clock = time.process_time_ns  # CPU time: other processes' load does not inflate it
    start = clock()
    for _ in range(n):
        lookup("http", path, "GET")
    return (clock() - start) / n


def measure_lookups(rounds: int, n: int) -> list[dict[str, Any]]:
    """For each table shape: median ns per lookup with 1 route and with 1,001."""
    results = []
    for shape, (extra, path, should_match) in SHAPES.items():
        small, big = _router(None), _router(extra)
        for router in (small, big):
            found = router.lookup("http", path, "GET")
            matched = not isinstance(found, Miss)
            if matched != should_match or (matched and found[1] != {"user_id": USER_ID}):
                raise AssertionError(f"{shape}: wrong lookup result {found!r} for {path}")
        samples: dict[str, list[float]] = {"one": [], "many": []}
        for r in range(rounds):
            pair = [("one", small), ("many", big)]
            for label, router in pair if r % 2 else pair[::-1]:
                samples[label].append(_time_lookups(router, path, n))
        one, many = statistics.median(samples["one"]), statistics.median(samples["many"])
        results.append(
            {
                "shape": shape,
                "path": path,
                "one_route_ns": one,
                "many_routes_ns": many,
                "ratio": many / one,
                "within_target": many / one <= TARGET_RATIO,
            }
        )
    return results


def lookup_rows(results: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Table rows for the lookup results."""
    headers = ["1,000 routes", "1 route (µs)", "1,001 routes (µs)", "ratio", f"≤ {TARGET_RATIO}x"]
    rows = [
        [
            r["shape"],
            f"{r['one_route_ns'] / 1000:.2f}",
            f"{r['many_routes_ns'] / 1000:.2f}",
            f"{r['ratio']:.2f}",
            "yes" if r["within_target"] else "NO",
        ]
        for r in results
    ]
    return headers, rows


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="microasgi routing micro-benchmark")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--lookups", type=int, default=20000, help="lookups per round")
    parser.add_argument("--batch-ms", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    try:
        lookups = measure_lookups(args.rounds, args.lookups)
    except ImportError as exc:
        print(f"microasgi is not importable: {exc}", file=sys.stderr)
        return 1
    headers, rows = lookup_rows(lookups)
    print("\nmicroasgi route lookup (Router.lookup), median of rounds\n")
    print(tables.markdown_table(headers, rows))
    plain = asyncio.run(
        inproc.run(["plaintext"], ["raw", "microasgi", "starlette"], args.rounds, args.batch_ms)
    )
    plain["loop"] = "asyncio"
    headers, rows = tables.inproc_rows(plain, "rps")
    print("\nplaintext GET in-process, req/s per CPU core (same run)\n")
    print(tables.markdown_table(headers, rows))
    data = {"kind": "routing", "lookups": lookups, "plaintext": plain, "env": env.describe()}
    env.write_results(args.json, data)
    return 0 if all(r["within_target"] for r in lookups) else 1


if __name__ == "__main__":
    raise SystemExit(main())
