"""The lifespan protocol: startup and shutdown hooks, the lifespan generator, and the
mounted apps, which start after the parent's own startup and stop before its shutdown.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from microasgi._types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("microasgi")

Hook = Callable[[], Awaitable[None] | None]
# A function of the app returning an async generator (or async context manager)
# that yields the lifespan state.
LifespanFunc = Callable[[Any], Any]


class LifespanFailure(Exception):
    """A mounted app reported that its startup or shutdown failed."""


class _Child:
    """Drives one mounted app's lifespan from inside the parent's."""

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self.app = app
        # A shallow copy: the state dict stays shared, so what the child yields reaches
        # the requests too.
        self.scope = dict(scope)
        self.supported = True
        self._to_child: MemoryObjectSendStream[Message]
        self._child_in: MemoryObjectReceiveStream[Message]
        self._to_child, self._child_in = anyio.create_memory_object_stream[Message](1)
        self._child_out: MemoryObjectSendStream[Message]
        self._from_child: MemoryObjectReceiveStream[Message]
        self._child_out, self._from_child = anyio.create_memory_object_stream[Message](1)

    async def run(self) -> None:
        """Run the mounted app's lifespan call, until it returns or is cancelled."""
        async with self._child_in, self._child_out:
            try:
                await self.app(self.scope, self._child_in.receive, self._child_out.send)
            except Exception:
                # An app that raises on a lifespan scope it does not support, or after
                # reporting its failure (which reaches the parent as that report): the
                # spec says to carry on without it in the first case.
                logger.debug("mounted app %r ended its lifespan with an error", self.app)

    async def _exchange(self, event: str) -> None:
        if not self.supported:
            return
        try:
            await self._to_child.send({"type": f"lifespan.{event}"})
            reply = await self._from_child.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            self.supported = False  # it returned (or raised) without answering
            return
        if reply["type"] == f"lifespan.{event}.failed":
            raise LifespanFailure(reply.get("message", "") or f"mounted app {event} failed")
        if reply["type"] != f"lifespan.{event}.complete":
            raise LifespanFailure(f"mounted app sent {reply['type']!r} during {event}")

    async def startup(self) -> None:
        """Start the mounted app (LifespanFailure if it reports a failure)."""
        await self._exchange("startup")

    async def shutdown(self) -> None:
        """Stop the mounted app (LifespanFailure if it reports a failure)."""
        await self._exchange("shutdown")

    async def aclose(self) -> None:
        """Close the parent's ends of the channels."""
        await self._to_child.aclose()
        await self._from_child.aclose()


class Lifespan:
    """Startup and shutdown for one App (or Router): hooks, generator, mounted apps."""

    def __init__(self, owner: Any, mounts: Callable[[], list[ASGIApp]]) -> None:
        self.owner = owner
        self.mounts = mounts
        self.startup_hooks: list[Hook] = []
        self.shutdown_hooks: list[Hook] = []
        self.func: LifespanFunc | None = None
        self.state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def _own(self) -> AsyncIterator[dict[str, Any]]:
        """The user's generator (or context manager) around the hooks."""
        if self.func is None:
            yield {}
            return
        made = self.func(self.owner)
        if isinstance(made, AsyncGenerator):
            value = await made.__anext__()
            try:
                yield value or {}
            finally:
                # Run the code after ``yield``; a generator that yields again is a bug.
                try:
                    await made.__anext__()
                except StopAsyncIteration:
                    pass
                else:
                    await made.aclose()
                    raise RuntimeError("the lifespan generator yielded more than once")
        elif hasattr(made, "__aenter__"):
            async with made as value:
                yield value or {}
        else:
            raise TypeError("a lifespan function must be an async generator or context manager")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Speak the lifespan protocol with the server.

        A failure is reported (``lifespan.startup.failed`` or ``.shutdown.failed``) once
        the mounted apps are stopped, and then raised at once: hypercorn looks whether the
        call has ended right after the report, and asgi-lifespan waits for it to end.
        """
        # What started gets stopped, in reverse order, whether startup completes or not.
        cleanups: list[Callable[[], Awaitable[Any]]] = []
        children = [_Child(app, scope) for app in self.mounts()]
        failed: tuple[str, Exception] | None = None
        async with anyio.create_task_group() as group:
            for child in children:
                group.start_soon(child.run)
            try:
                failed = await self._run(scope, receive, send, children, cleanups)
            finally:
                for child in children:
                    await child.aclose()
                group.cancel_scope.cancel()
        if failed is not None:
            phase, error = failed
            await report_failure(send, phase, error)
            raise error

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        children: list[_Child],
        cleanups: list[Callable[[], Awaitable[Any]]],
    ) -> tuple[str, Exception] | None:
        """Startup, then shutdown when the server asks; what failed, if anything."""
        try:
            message = await receive()
            if message["type"] != "lifespan.startup":
                raise RuntimeError(f"expected lifespan.startup, got {message['type']!r}")
            own = self._own()
            value = await own.__aenter__()
            cleanups.append(lambda: own.__aexit__(None, None, None))
            if not isinstance(value, Mapping):
                raise TypeError("the lifespan generator must yield a dict (or None)")
            self.state.update(value)
            if "state" in scope:
                scope["state"].update(value)
            for hook in self.startup_hooks:
                await _call_hook(hook)
            cleanups.append(self._shutdown_hooks)
            for child in children:
                await child.startup()
                cleanups.append(child.shutdown)
        except Exception as exc:
            await _unwind(cleanups)
            return "startup", exc
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        error = await _unwind(cleanups)
        if error is not None:
            return "shutdown", error
        await send({"type": "lifespan.shutdown.complete"})
        return None

    async def _shutdown_hooks(self) -> None:
        """Run every shutdown hook; then raise the first failure, if any."""
        hooks = [functools.partial(_call_hook, hook) for hook in self.shutdown_hooks]
        error = await _unwind([*reversed(hooks)])
        if error is not None:
            raise error


async def _unwind(cleanups: list[Callable[[], Awaitable[Any]]]) -> Exception | None:
    """Run ``cleanups`` last first, all of them; return the first failure."""
    first: Exception | None = None
    for cleanup in reversed(cleanups):
        try:
            await cleanup()
        except Exception as exc:
            first = first or exc
    return first


async def _call_hook(hook: Hook) -> None:
    """Run a startup or shutdown hook, sync (called as it is) or async."""
    result = hook()
    if inspect.isawaitable(result):
        await result


async def report_failure(send: Send, phase: str, exc: Exception) -> None:
    """Log a startup or shutdown failure, and report it to the server."""
    if not isinstance(exc, LifespanFailure):  # a mounted app reported (and logged) its own
        logger.error("Lifespan %s failed", phase, exc_info=exc)
    await send({"type": f"lifespan.{phase}.failed", "message": str(exc) or repr(exc)})
