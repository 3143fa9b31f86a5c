"""The scale benchmark's machinery: its clients speak the protocols right, its apps stop
what they must, its figures are read from /proc, and its report says what was measured.

The last test serves the raw and microasgi scale apps under uvicorn, as the benchmark does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks import e2e, loadclient, scale, scale_apps, scale_report
from benchmarks.harness import Message
from benchmarks.scale_apps import raw


class FakeTransport(asyncio.Transport):
    """Keeps what a protocol writes."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def _accept(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())


def _opened_client() -> tuple[loadclient.WebSocketClient, FakeTransport]:
    client = loadclient.WebSocketClient("/ws", 1)
    transport = FakeTransport()
    client.connection_made(transport)
    assert transport.written.startswith(b"GET /ws HTTP/1.1\r\n")
    head = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: " + _accept(client.key)
    client.data_received(head + b"\r\n\r\n")
    assert client.opened.done()
    assert client.opened.exception() is None
    transport.written.clear()
    return client, transport


def _unmask(frame: bytes) -> tuple[int, bytes]:
    assert frame[1] & 0x80  # a client masks what it sends
    length, mask = frame[1] & 0x7F, frame[2:6]
    return frame[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(frame[6 : 6 + length]))


def test_the_websocket_client_reads_frames_however_they_are_cut() -> None:
    async def scenario() -> list[str]:
        client, transport = _opened_client()
        seen: list[str] = []
        client.on_text = lambda _, text: seen.append(text)
        long_text = "x" * 300  # a 16-bit length
        stream = b"\x81\x05hello" + b"\x81\x7e\x01\x2c" + long_text.encode() + b"\x89\x02hi"
        for i in range(len(stream)):  # one byte at a time
            client.data_received(stream[i : i + 1])
        assert _unmask(bytes(transport.written)) == (loadclient.PONG, b"hi")
        return seen

    assert asyncio.run(scenario()) == ["hello", "x" * 300]


def test_the_websocket_client_refuses_a_wrong_handshake() -> None:
    async def scenario() -> None:
        client = loadclient.WebSocketClient("/ws", 1)
        client.connection_made(FakeTransport())
        head = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: bm9wZQ=="
        client.data_received(head + b"\r\n\r\n")
        with pytest.raises(ConnectionError, match="Sec-WebSocket-Accept"):
            await client.opened

    asyncio.run(scenario())


def test_the_websocket_client_sends_masked_text_and_a_close() -> None:
    async def scenario() -> None:
        client, transport = _opened_client()
        client.send_text("héllo")
        assert _unmask(bytes(transport.written)) == (loadclient.TEXT, "héllo".encode())
        transport.written.clear()
        client.leave()
        assert _unmask(bytes(transport.written)) == (loadclient.CLOSE, b"\x03\xe8")
        assert transport.closed

    asyncio.run(scenario())


def test_a_stream_client_counts_what_follows_a_200_and_refuses_a_404() -> None:
    async def scenario() -> None:
        ok = loadclient.StreamClient("/stream", 1)
        ok.connection_made(FakeTransport())
        ok.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\ntick 0\n")
        ok.data_received(b"\r\n")
        assert ok.opened.done()
        assert ok.received == len(b"7\r\ntick 0\n\r\n")
        missing = loadclient.StreamClient("/nowhere", 1)
        missing.connection_made(FakeTransport())
        missing.data_received(b"HTTP/1.1 404 Not Found\r\n\r\n")
        with pytest.raises(ConnectionError, match="404"):
            await missing.opened

    asyncio.run(scenario())


def test_the_raw_stream_stops_its_generator_when_the_client_leaves() -> None:
    async def scenario() -> tuple[int, list[Message]]:
        gone = asyncio.Event()
        sent: list[Message] = []
        first = True

        async def receive() -> Message:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": b"", "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        scope: dict[str, Any] = {"type": "http", "path": "/stream", "method": "GET"}
        request = asyncio.ensure_future(raw.app()(scope, receive, send))
        await asyncio.sleep(scale_apps.TICK * 1.5)
        live_while_streaming = scale_apps.Counts.live
        gone.set()
        await asyncio.wait_for(request, 5)  # ends, as a request does, without an error
        assert scale_apps.Counts.live == 0
        return live_while_streaming, sent

    live, sent = asyncio.run(scenario())
    assert live == 1
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"tick 0\n"


def test_memory_and_cpu_are_read_for_a_process() -> None:
    pid = os.getpid()
    assert scale.rss_kib(pid) > 1000
    start = scale.cpu_seconds(pid)
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert scale.cpu_seconds(pid) - start >= 0.03


def _fake_scale() -> dict[str, Any]:
    def stream(kib: float, cpu: float, stop: float | None) -> dict[str, Any]:
        return {
            "status": "ok",
            "kib_per_stream": kib,
            "heap_kib_per_stream": None,
            "cpu_us_per_event": cpu,
            "stop_s": stop,
            "still_live": 0 if stop is not None else 1200,
            "within_goal": stop is not None and stop <= 1.0,
        }

    return {
        "kind": "scale",
        "idle_counts": [1000, 4000],
        "held": 200,
        "echo_connections": 1000,
        "echo_samples": 7,
        "echoes_per_sample": 3,
        "cpu_samples": 5,
        "cpu_window_s": 0.5,
        "stream_clients": 1000,
        "tick_s": 0.2,
        "max_ticks": 300,
        "stop_goal_s": 1.0,
        "stop_wait_s": 3.0,
        "fanout_members": 1000,
        "fanout_publishes": 10,
        "idle": {
            "raw": {
                "status": "ok",
                "kib_per_connection": {"1000": 18.0, "4000": 20.0},
                "cpu_us_per_message": 40.0,
            },
            "microasgi": {
                "status": "ok",
                "kib_per_connection": {"1000": 19.0, "4000": 22.0},
                "cpu_us_per_message": 44.0,
            },
            "falcon": {"status": "failed", "reason": "test failure"},
        },
        "streams": {
            "stream": {
                "raw": stream(10.0, 30.0, 0.1),
                "microasgi": stream(12.0, 33.0, 0.2),
                "blacksheep": stream(11.0, 25.0, None),
            },
            "sse": {"raw": stream(10.0, 30.0, 0.1), "microasgi": stream(14.0, 31.0, 0.2)},
        },
        "fanout": {
            "raw, memory, 1 worker": {
                "status": "ok",
                "members": 1000,
                "median_ms": 8.0,
                "max_ms": 9.5,
            },
            "microasgi, Redis, 2 workers": {"status": "failed", "reason": "no redis"},
        },
        "static": {
            "uvicorn": {
                "FileResponse, 4 KiB": {
                    "raw": {"status": "ok", "rps": 10000.0, "p99_ms": 1.0, "cpu_us": 70.0},
                    "microasgi": {"status": "ok", "rps": 2000.0, "p99_ms": 5.0, "cpu_us": 700.0},
                    "blacksheep": {"status": "ok", "rps": 3000.0, "p99_ms": 4.0, "cpu_us": 350.0},
                    "falcon": {"status": "not available", "reason": "no /file/small"},
                }
            }
        },
        "static_pathsend": {"uvicorn": False},
        "static_wrk": {"rounds": 2, "duration_s": 1, "connections": 32},
    }


def test_the_scale_section_gives_ratios_stops_and_where_a_peer_does_better(
    tmp_path: Path,
) -> None:
    data = _fake_scale()
    traced = {"streams": {"stream": {"raw": {"status": "ok", "heap_kib_per_stream": 12.0}}}}
    traced["streams"]["stream"]["microasgi"] = {"status": "ok", "heap_kib_per_stream": 15.0}
    page = scale_report.scale_section(data, traced)
    assert "| microasgi | 19.0 | 22.0 | 1.10 | 44.0 | 1.10 |" in page
    assert "| falcon | failed |" in page
    assert "| microasgi | 12.0 | 1.20 | 15.0 | 1.25 | 33.0 | 1.10 | 0.20 s | yes |" in page
    assert "not within 3 s (1,200 still running) | no |" in page
    assert "stream memory: blacksheep 11.0 KiB against microasgi's 12.0" in page
    assert "| raw, memory, 1 worker | 1,000 | 8.0 | 9.5 |" in page
    assert "| microasgi, Redis, 2 workers | failed |" in page
    assert "| FileResponse, 4 KiB | microasgi | 700.0 | 0.10 | 2,000 | 0.20 |" in page
    assert "| FileResponse, 4 KiB | falcon | not available |" in page
    assert "(uvicorn does not)" in page
    assert "FileResponse, 4 KiB under uvicorn: blacksheep 350 µs" in page
    assert scale_report.write_chart(data, tmp_path) == tmp_path / scale_report.CHART_FILE
    svg = (tmp_path / scale_report.CHART_FILE).read_text()
    assert svg.startswith("<svg")
    assert "microasgi: 22" in svg
    assert "Not run yet" in scale_report.scale_section(None)


@pytest.mark.timeout(60)
def test_the_scale_apps_stream_echo_and_stop_under_uvicorn(tmp_path: Path) -> None:
    async def scenario(port: int) -> tuple[int, int]:
        clients = await loadclient.open_websockets(port, "/ws", 20)
        await loadclient.echo_all(clients, "ping")
        for client in clients:
            client.leave()
        streams = await loadclient.open_streams(port, "/stream", 5)
        await asyncio.sleep(scale_apps.TICK * 2)
        live, _, _ = await scale._stats(port)
        for stream in streams:
            stream.close()
        stopped, _ = await scale._until_live(port, lambda live: live == 0, 5.0)
        assert stopped is not None
        return live, min(stream.received for stream in streams)

    for framework in ("raw", "microasgi"):
        with e2e.serving("uvicorn", [framework], tmp_path, scale_apps.target) as (server,):
            live, least = asyncio.run(scenario(server.port))
        assert live == 5, framework
        assert least > 0, framework
