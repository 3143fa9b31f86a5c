"""The middleware tests' additions to tests/asgi_harness.py: a scope-preserving call,
decoded response headers, a one-shot responder, and a pass-through check."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import anyio
from asgi_harness import DISCONNECT, Recorder, request_body, scripted, start_of

from microasgi._types import ASGIApp, Message, Receive, Scope, Send


async def call(
    app: ASGIApp, scope: Scope, body: bytes = b"", log: list[str] | None = None
) -> list[Message]:
    """Run ``app`` on ``scope``; fail if it changes the scope or its nested values.

    The client sends ``body`` whole, then is gone. ``log``, when given, gets each sent
    message's type as it goes out, so a test can interleave it with what the app logs
    and see what was held back.
    """
    before = copy.deepcopy(scope)
    send = Recorder(log)
    with anyio.fail_after(5):
        await app(scope, scripted(request_body(body), then=DISCONNECT), send)
    assert scope == before, "the middleware changed the server's scope"
    return send.messages


def headers_of(messages: list[Message]) -> list[tuple[str, str]]:
    """The response start's headers, decoded, in order."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start_of(messages)["headers"]]


def header(messages: list[Message], name: str) -> str | None:
    """The single value of a response header (fails if repeated), or None."""
    values = [v for k, v in headers_of(messages) if k == name]
    assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
    return values[0] if values else None


def body_of(messages: list[Message]) -> bytes:
    """The response body: every body message's bytes joined."""
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


def responder(
    body: bytes = b"hello",
    status: int = 200,
    headers: Iterable[tuple[bytes, bytes]] = ((b"content-type", b"text/plain"),),
    **start: Any,
) -> ASGIApp:
    """An app answering every http request with one start and one body message."""
    raw = list(headers)

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": raw, **start})
        await send({"type": "http.response.body", "body": body})

    return app


async def assert_passes_through(wrap: Callable[[ASGIApp], ASGIApp], *scopes: Scope) -> None:
    """Check each scope reaches the wrapped app as it is, with the server's receive and send."""
    seen: list[tuple[Scope, Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))

    async def receive() -> Message:
        raise AssertionError("the middleware should not receive")

    async def send(message: Message) -> None:
        raise AssertionError("the middleware should not send")

    middleware = wrap(app)
    for scope in scopes:
        await middleware(scope, receive, send)
    assert seen == [(scope, receive, send) for scope in scopes]
    assert all(got is scope for (got, _, _), scope in zip(seen, scopes, strict=True))
