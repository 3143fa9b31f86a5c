"""Request hooks as plain data: what runs before and after the handlers of a router.

A router keeps the hooks registered on it in three lists (``HookLists``). When a lookup
tree is built, each route gets the ``Hooks`` of the routers it is served through, from
the outermost (the App's) to the one it was registered on, resolved once: a request
only reads them. Routing never calls a hook; the dispatcher does.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from microasgi._concurrency import is_async_callable, run_callable

__all__ = ["NO_HOOKS", "AsyncHook", "HookLists", "Hooks", "chain"]

# What the dispatcher calls: every hook, a sync one wrapped to run in a worker thread.
AsyncHook = Callable[..., Awaitable[Any]]


@dataclass(slots=True)
class HookLists:
    """The hooks registered on one router, each list in registration order."""

    before_request: list[Callable[..., Any]] = field(default_factory=list)
    after_request: list[Callable[..., Any]] = field(default_factory=list)
    before_websocket: list[Callable[..., Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Hooks:
    """The hooks of one route, in the order they run."""

    before: tuple[AsyncHook, ...] = ()
    after: tuple[AsyncHook, ...] = ()  # the innermost router's first, last registered first
    websocket: tuple[AsyncHook, ...] = ()

    def __add__(self, inner: Hooks) -> Hooks:
        """These hooks around ``inner``'s: their before hooks first, their after hooks last."""
        if inner is NO_HOOKS:
            return self
        if self is NO_HOOKS:
            return inner
        return Hooks(
            self.before + inner.before, inner.after + self.after, self.websocket + inner.websocket
        )


# The one empty value: "no hooks" is an identity check on the request's path.
NO_HOOKS = Hooks()


def _as_async(hook: Callable[..., Any]) -> AsyncHook:
    if is_async_callable(hook):
        return hook
    return functools.partial(run_callable, hook)


def chain(lists: Iterable[HookLists]) -> Hooks:
    """The hooks of routers nested in this order (outermost first), as one route sees them."""
    before: list[AsyncHook] = []
    after: list[AsyncHook] = []
    websocket: list[AsyncHook] = []
    for hooks in lists:
        before += map(_as_async, hooks.before_request)
        after += map(_as_async, hooks.after_request)
        websocket += map(_as_async, hooks.before_websocket)
    if not (before or after or websocket):
        return NO_HOOKS
    # After hooks unwind: the innermost router's first, the last registered first (Flask).
    return Hooks(tuple(before), tuple(reversed(after)), tuple(websocket))
