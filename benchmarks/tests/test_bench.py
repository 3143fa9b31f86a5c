"""The benchmark's own machinery: it must drive apps like a server and refuse wrong answers.

Run with ``python -m pytest benchmarks/tests`` (the bench session does, before measuring).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any
from urllib.parse import parse_qsl

import pytest

from benchmarks import report, routing, tables
from benchmarks.apps import raw_app
from benchmarks.apps._urlencoded import parse_urlencoded
from benchmarks.e2e import group_cpu_seconds, parse_wrk
from benchmarks.harness import Answer, Exchange, Lifespan, Message, assemble, call_once, run_batch
from benchmarks.scenarios import Fixtures, all_scenarios, make_fixtures


@pytest.fixture(scope="module")
def fixtures() -> Any:
    made, tmp = make_fixtures()
    yield made
    tmp.cleanup()


def test_receive_waits_for_the_response_before_reporting_a_disconnect() -> None:
    async def scenario() -> list[str]:
        body: Message = {"type": "http.request", "body": b"x", "more_body": False}
        exchange = Exchange((body,), {"type": "http.disconnect"})
        seen: list[str] = []
        assert (await exchange.receive())["type"] == "http.request"
        waiting = asyncio.ensure_future(exchange.receive())
        await asyncio.sleep(0)
        seen.append("done" if waiting.done() else "waiting")
        await exchange.send({"type": "http.response.start", "status": 200, "headers": []})
        await exchange.send({"type": "http.response.body", "body": b"ok"})
        seen.append((await asyncio.wait_for(waiting, 1))["type"])
        return seen

    assert asyncio.run(scenario()) == ["waiting", "http.disconnect"]


def test_assemble_refuses_protocol_misuse() -> None:
    start: Message = {"type": "http.response.start", "status": 200, "headers": []}
    end: Message = {"type": "http.response.body", "body": b"a"}
    with pytest.raises(AssertionError, match=r"two http\.response\.start"):
        assemble([start, start])
    with pytest.raises(AssertionError, match="after the end"):
        assemble([start, end, end])
    with pytest.raises(AssertionError, match="body before"):
        assemble([end])
    assert assemble([start, end]).body == b"a"


@pytest.mark.parametrize("scenario", all_scenarios(), ids=lambda s: s.id)
def test_the_raw_baseline_gives_the_expected_answer(scenario: Any, fixtures: Fixtures) -> None:
    app = raw_app.APPS[scenario.app_id](fixtures)
    assert scenario.check(asyncio.run(call_once(app, scenario.request))) is None


@pytest.mark.parametrize("scenario", all_scenarios(), ids=lambda s: s.id)
def test_every_check_refuses_a_wrong_answer(scenario: Any) -> None:
    assert scenario.check(Answer(500, [], b"Internal Server Error")) is not None
    assert scenario.check(Answer(200, [], b"something else")) is not None


def test_a_length_that_disagrees_with_the_body_is_refused() -> None:
    plaintext = all_scenarios()[0]
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"99")]
    assert "content-length" in (plaintext.check(Answer(200, headers, b"Hello, World!")) or "")


def test_a_batch_runs_n_requests_and_returns_the_last_answer() -> None:
    calls = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope)
        await raw_app.plaintext(scope, receive, send)

    plaintext = all_scenarios()[0]
    batch = asyncio.run(run_batch(app, plaintext.request, 5))
    assert len(calls) == 5
    assert all(scope is not plaintext.request.scope for scope in calls)  # fresh dict each time
    assert plaintext.check(assemble(batch.last)) is None
    assert batch.wall_ns > 0


def test_lifespan_tolerates_an_app_without_lifespan_support() -> None:
    async def scenario() -> None:
        lifespan = Lifespan(raw_app.plaintext)  # sends http messages: raises on lifespan
        await asyncio.wait_for(lifespan.startup(), 5)
        await lifespan.shutdown()

    asyncio.run(scenario())


def test_fast_urlencoded_parser_agrees_with_the_standard_library() -> None:
    rng = random.Random(7)
    alphabet = "ab=&+%0123456789ABCDEFé\x00 z"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert parse_urlencoded(text) == dict(parse_qsl(text, keep_blank_values=True)), text


WRK_OUTPUT = """Running 4s test @ http://127.0.0.1:1/plaintext
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.50ms  200.00us   9.00ms   90.00%
  Latency Distribution
     50%    1.40ms
     75%    1.60ms
     90%    1.80ms
     99%  850.00us
  40000 requests in 4.00s, 5.00MB read
Requests/sec:  10000.50
Transfer/sec:      1.25MB
"""


def test_wrk_output_is_read_and_errors_are_refused() -> None:
    figures = {"rps": 10000.5, "p50_ms": 1.4, "p99_ms": 0.85, "requests": 40000.0}
    assert parse_wrk(WRK_OUTPUT) == figures
    with pytest.raises(RuntimeError, match="non-2xx"):
        parse_wrk(WRK_OUTPUT + "  Non-2xx or 3xx responses: 12\n")
    with pytest.raises(RuntimeError, match="socket errors"):
        parse_wrk(WRK_OUTPUT + "  Socket errors: connect 0, read 3, write 0, timeout 0\n")


def test_server_cpu_is_read_for_a_process_group() -> None:
    import os

    start = group_cpu_seconds(os.getpgid(0))
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert group_cpu_seconds(os.getpgid(0)) - start >= 0.03
    assert group_cpu_seconds(2**22 + 12345) == 0  # no such group


def _fake_inproc() -> dict[str, Any]:
    def ok(ns: float) -> dict[str, Any]:
        times = {"median_ns": ns, "p25_ns": ns, "p75_ns": ns}
        return {"status": "ok", "wall": dict(times, median_ns=ns * 2), "cpu": times}

    return {
        "kind": "inproc",
        "loop": "asyncio",
        "rounds": 3,
        "batch_ms": 20,
        "frameworks": ["raw", "microasgi", "starlette", "falcon"],
        "missing": {"falcon": "not installed (test)"},
        "scenarios": [
            {
                "id": "plaintext",
                "title": "GET plaintext",
                "unit": "req",
                "results": {"raw": ok(1000), "microasgi": ok(3000), "starlette": ok(6000)},
            },
            {
                "id": "file_1mib",
                "title": "FileResponse, 1 MiB",
                "unit": "req",
                "results": {
                    "raw": ok(1000),
                    "microasgi": {"status": "not available", "reason": "no FileResponse"},
                    "starlette": ok(2000),
                },
            },
        ],
        "env": {
            "cpu": "test cpu",
            "cores": 2,
            "os": "Linux",
            "python": "CPython 3.11",
            "python_build": "main",
            "packages": {"starlette": "1.0", "falcon": None},
        },
    }


def test_tables_compute_extra_cost_and_ratios() -> None:
    data = _fake_inproc()
    headers, rows = tables.inproc_rows(data, "extra_us")
    assert headers == ["scenario", "microasgi", "starlette"]  # falcon is missing: no column
    assert rows[0] == ["GET plaintext", "2.0", "5.0"]
    assert rows[1][1] == "not available"
    _, rows = tables.versus_rows(data)
    assert rows[0] == ["GET plaintext", "2.00x"]


def test_report_renders_tables_chart_and_versions(tmp_path: Any) -> None:
    (tmp_path / "inproc.json").write_text(json.dumps(_fake_inproc()))
    page = report.render(tmp_path)
    assert "| GET plaintext | 2.0 | 5.0 |" in page  # CPU time
    assert "| GET plaintext | 4.0 | 10.0 |" in page  # wall-clock
    assert page.count("<svg") == 1
    assert "</svg>" in page
    assert "not available" in page
    assert "no FileResponse" in page
    assert "test cpu" in page
    assert "starlette 1.0" in page
    assert "Not run yet" in page  # routing and e2e sections say how to produce them


def test_the_end_to_end_spread_is_read_from_each_rounds_server_cpu() -> None:
    def result(*cpu_us: float) -> dict[str, Any]:
        runs = [{"cpu_us": cpu} for cpu in cpu_us]
        return {"status": "ok", "cpu_us": sorted(cpu_us)[len(cpu_us) // 2], "runs": runs}

    data = {
        "servers": {
            "uvicorn": {
                "plaintext": {
                    "raw": result(20.0, 20.0, 20.0, 20.0, 20.0),  # no spread
                    "microasgi": result(20.0, 21.0, 22.0, 23.0, 24.0),
                    "falcon": {"status": "failed", "reason": "wrong answer"},
                },
            }
        }
    }
    # microasgi's quartiles (exclusive method) are 20.5 and 23.5: 3 on a median of 22.
    assert tables.e2e_spread_note(data) == (
        "interquartile spread of the rounds' server CPU per request: "
        "14% of the median typically, 14% at worst"
    )


def test_the_routing_benchmark_checks_each_lookup_before_timing_it() -> None:
    # Every table shape's lookup is checked (a match with the right params, or a miss)
    # before it is timed: a router that answered wrongly would raise here.
    results = routing.measure_lookups(rounds=1, n=10)
    assert {result["shape"] for result in results} == set(routing.SHAPES)
