"""A small blocking HTTP/2 client over TLS that records server pushes.

httpx refuses server push (it sends ENABLE_PUSH=0), so push is observed with
hyper-h2 directly: PUSH_PROMISE frames are collected with the pushed responses.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Literal

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

DEADLINE = 10.0
LATE_BODY_GRACE = 0.5


@dataclass
class H2Response:
    """One HTTP/2 response, as the client saw it."""

    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # Header lists of 1xx responses (103 Early Hints) received before the final one.
    informational: list[list[tuple[str, str]]] = field(default_factory=list)
    ended: bool = False
    reset: bool = False


@dataclass
class H2Exchange:
    """The response to the request, and every response the server pushed with it."""

    response: H2Response
    # path -> (promised request headers, the pushed response)
    pushes: dict[str, tuple[list[tuple[str, str]], H2Response]]
    connection_error: str | None = None


def _decode(headers: list[tuple[bytes, bytes]] | None) -> list[tuple[str, str]]:
    return [(name.decode(), value.decode()) for name, value in headers or []]


class H2Client:
    """One TLS connection speaking HTTP/2, used for a few requests in a row."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, port), timeout=DEADLINE)
        self.sock = context.wrap_socket(raw, server_hostname=host)
        if self.sock.selected_alpn_protocol() != "h2":
            raise RuntimeError("the server did not negotiate h2")
        self.host = host
        self.port = port
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.ENABLE_PUSH: 1})
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self) -> None:
        """Say goodbye and close the socket."""
        try:
            self.conn.close_connection()
            self._flush()
        except (OSError, h2.exceptions.ProtocolError):
            pass
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        *,
        body_after: Literal["now", "headers", "end"] = "now",
    ) -> H2Exchange:
        """Send one request and read until it and all its pushes ended.

        ``body_after`` sends the body with the request ("now"), once the response
        headers came ("headers": a slow uploader the server answers early), or once
        the response ended ("end").
        """
        stream_id = self.conn.get_next_available_stream_id()
        request_headers = [
            (":method", method),
            (":path", path),
            (":scheme", "https"),
            (":authority", f"{self.host}:{self.port}"),
            *(headers or []),
        ]
        self.conn.send_headers(stream_id, request_headers, end_stream=body is None)
        if body is not None and body_after == "now":
            self.conn.send_data(stream_id, body, end_stream=True)
        exchange = H2Exchange(response=H2Response(), pushes={})
        try:
            self._flush()
        except (ssl.SSLError, ConnectionError):
            exchange.connection_error = "connection closed by the server"
            return exchange
        late_body = body if body is not None and body_after != "now" else None

        streams: dict[int, H2Response] = {stream_id: exchange.response}
        response = exchange.response
        deadline = time.monotonic() + DEADLINE
        # After a body sent once the response ended, watch how the server reacts.
        grace_until: float | None = None
        while (now := time.monotonic()) < deadline:
            if late_body is not None and (
                response.ended or (body_after == "headers" and response.status)
            ):
                self._send_late_body(stream_id, late_body)
                late_body = None
                if response.ended:
                    grace_until = now + LATE_BODY_GRACE
            finished = late_body is None and all(r.ended or r.reset for r in streams.values())
            if finished and (grace_until is None or now >= grace_until):
                break
            self.sock.settimeout(max(0.01, min(deadline, grace_until or deadline) - now))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except (ssl.SSLError, ConnectionError):
                # An abrupt close (no TLS close_notify, or a reset) is still a close.
                data = b""
            if not data:
                exchange.connection_error = "connection closed by the server"
                break
            for event in self.conn.receive_data(data):
                self._handle(event, streams, exchange)
            try:
                self._flush()
            except (ssl.SSLError, ConnectionError):
                exchange.connection_error = "connection closed by the server"
                break
        self.sock.settimeout(DEADLINE)
        return exchange

    def read_until(self, path: str, until: bytes) -> int:
        """GET ``path`` and read its body until ``until`` shows in it; return the stream id
        (the rest of the body is left unread: ``reset`` it)."""
        stream_id = self.conn.get_next_available_stream_id()
        request_headers = [
            (":method", "GET"),
            (":path", path),
            (":scheme", "https"),
            (":authority", f"{self.host}:{self.port}"),
        ]
        self.conn.send_headers(stream_id, request_headers, end_stream=True)
        self._flush()
        streams = {stream_id: H2Response()}
        exchange = H2Exchange(response=streams[stream_id], pushes={})
        deadline = time.monotonic() + DEADLINE
        while until not in exchange.response.body:
            if time.monotonic() > deadline or exchange.response.ended:
                raise AssertionError(f"{until!r} never came: {exchange.response.body!r}")
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed by the server")
            for event in self.conn.receive_data(data):
                self._handle(event, streams, exchange)
            self._flush()
        return stream_id

    def reset(self, stream_id: int) -> None:
        """Cancel a stream (RST_STREAM, CANCEL), as a browser leaving a page does; the
        connection stays open."""
        self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        self._flush()

    def _send_late_body(self, stream_id: int, body: bytes) -> None:
        try:
            self.conn.send_data(stream_id, body, end_stream=True)
            self._flush()
        except (h2.exceptions.StreamClosedError, ssl.SSLError, ConnectionError):
            # The server closed the stream or the connection: the reading loop sees which.
            return

    def _handle(
        self,
        event: h2.events.Event,
        streams: dict[int, H2Response],
        exchange: H2Exchange,
    ) -> None:
        if isinstance(event, h2.events.PushedStreamReceived):
            promised = _decode(event.headers)
            pushed = H2Response()
            assert event.pushed_stream_id is not None
            streams[event.pushed_stream_id] = pushed
            path = dict(promised).get(":path", "")
            exchange.pushes[path] = (promised, pushed)
        elif isinstance(event, h2.events.ResponseReceived):
            response = streams.get(event.stream_id)
            if response is not None:
                response.headers = _decode(event.headers)
                response.status = int(dict(response.headers)[":status"])
        elif isinstance(event, h2.events.InformationalResponseReceived):
            response = streams.get(event.stream_id)
            if response is not None:
                response.informational.append(_decode(event.headers))
        elif isinstance(event, h2.events.DataReceived):
            response = streams.get(event.stream_id)
            if response is not None:
                response.body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            if event.stream_id in streams:
                streams[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            if event.stream_id in streams:
                streams[event.stream_id].reset = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            exchange.connection_error = f"GOAWAY {event.error_code!r}"
            for response in streams.values():
                response.reset = response.reset or not response.ended
