"""GZip under real servers: each line of a slow NDJSON stream reaches httpx as it is sent.

The app sends a line only when the test lets it (``gzip_stream_app``), so the test reads
line ``i`` while the app is still waiting to send line ``i + 1``: a middleware (or a
server) that holds small chunks back until more come makes the read time out.
"""

from __future__ import annotations

import uuid

from interop import servers as s
from interop.gzip_stream_app import TICKS, line

served = s.server_fixture("interop.gzip_stream_app:app", s.PLAIN)

# Generous: a line that is sent arrives within milliseconds; a held one never does.
READ_TIMEOUT = 10.0


def test_each_line_arrives_while_the_app_waits_to_send_the_next(served: s.Server) -> None:
    run = uuid.uuid4().hex
    control = served.client()

    def let_go(i: int) -> None:
        control.post(f"/ticks/{run}/{i}").raise_for_status()

    let_go(0)
    reader = served.client(timeout=READ_TIMEOUT)
    with reader.stream("GET", f"/ticks/{run}", headers={"Accept-Encoding": "gzip"}) as r:
        assert r.headers["content-encoding"] == "gzip"
        assert "content-length" not in r.headers
        lines = r.iter_lines()
        for i in range(TICKS):
            # Line i+1 is not let go yet: line i arrived on its own, decompressed.
            assert next(lines) == line(i).rstrip("\n")
            if i + 1 < TICKS:
                let_go(i + 1)
        assert list(lines) == []
