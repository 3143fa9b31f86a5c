"""Profile one framework on one scenario, in-process, with cProfile (or pyinstrument).

python -m benchmarks.profile [--framework microasgi] [--scenario plaintext] [--n 20000]
                             [--pyinstrument] [--top 25]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
from collections.abc import Sequence

from benchmarks import apps
from benchmarks.harness import Lifespan, call_once, run_batch
from benchmarks.scenarios import all_scenarios, make_fixtures


async def _run(framework: str, scenario_id: str, n: int, use_pyinstrument: bool, top: int) -> None:
    (scenario,) = [s for s in all_scenarios() if s.id == scenario_id]
    fixtures, tmp = make_fixtures()
    try:
        app = apps.load(framework).APPS[scenario.app_id](fixtures)
        lifespan = Lifespan(app)
        await lifespan.startup()
        error = scenario.check(await call_once(app, scenario.request))
        if error:
            raise SystemExit(f"{framework} answers {scenario.id} wrongly: {error}")
        await run_batch(app, scenario.request, max(1, n // 10))  # warm up
        if use_pyinstrument:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0001, async_mode="disabled")
            profiler.start()
            elapsed = (await run_batch(app, scenario.request, n)).wall_ns
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False, show_all=False))
        else:
            prof = cProfile.Profile()
            prof.enable()
            elapsed = (await run_batch(app, scenario.request, n)).wall_ns
            prof.disable()
            stats = pstats.Stats(prof, stream=sys.stdout)
            stats.sort_stats("tottime").print_stats(top)
        print(f"{framework} {scenario.id}: {elapsed / n / 1000:.2f} µs per request (profiled)")
        await lifespan.shutdown()
    finally:
        tmp.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="profile one framework on one scenario")
    parser.add_argument("--framework", default="microasgi", choices=apps.FRAMEWORKS)
    parser.add_argument("--scenario", default="plaintext")
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--pyinstrument", action="store_true")
    args = parser.parse_args(argv)
    asyncio.run(_run(args.framework, args.scenario, args.n, args.pyinstrument, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
