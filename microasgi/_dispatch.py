"""The dispatcher: one request's way from the route table to the last ``send``.

For an http request it makes the request's ``Exchange``, decides the route once, calls
the handler with a ``Request``, turns what it returned into a response and sends it; an
error goes to the error layer, and the exchange's end closes what the request opened.
A WebSocket handler gets a ``WebSocket`` and is ended with the close its state calls for.
A mounted Router is served here as part of the App; any other mounted app gets a copy
of the scope for its prefix.

A route's hooks (resolved when its lookup tree was built) run around its handler; a
route without any, the common case, takes the path it would take if hooks did not
exist. A route with limits of its own sets them on the exchange before its handler runs.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from microasgi._concurrency import run_callable
from microasgi._errors import ErrorLayer
from microasgi._hooks import NO_HOOKS, AsyncHook, Hooks
from microasgi._types import ASGIApp, Receive, Scope, Send
from microasgi.datastructures import LimitOverrides, Limits, overridden
from microasgi.exceptions import HTTPException
from microasgi.exchange import Exchange
from microasgi.requests import ROOT_KEY, Request
from microasgi.responses import RedirectResponse, Response
from microasgi.returns import plain_messages, to_response
from microasgi.routing import Miss, Mount, Route, Router, WebSocketRoute, route_path
from microasgi.websockets import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from microasgi.app import App


class Dispatcher:
    """The innermost layer of an App: looks the request up once and calls what answers it."""

    __slots__ = ("app", "errors", "lifespan", "limits", "route_limits", "router")

    def __init__(self, app: App, errors: ErrorLayer, lifespan: ASGIApp) -> None:
        self.app = app
        self.router = app.router
        self.limits: Limits = app.limits
        self.errors = errors
        self.lifespan = lifespan
        # The App's limits with each route's overrides, made once per distinct override.
        self.route_limits: dict[LimitOverrides, Limits] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one http request (in this one pass, the common case), or dispatch a
        websocket or lifespan scope."""
        if scope["type"] != "http":
            await self._not_http(scope, receive, send)
            return
        exchange = Exchange(scope, receive, send, self.limits)
        try:
            # A mounted Router is part of this App (its handlers, errors, limits): the
            # lookup goes on in it, with the hooks of the routers mounting it (outer).
            router, outer = self.router, NO_HOOKS
            # Most servers send an empty root_path: the path is then the one to route on.
            path = route_path(scope) if scope.get("root_path") else scope["path"]
            while True:
                found = router.lookup("http", path, scope["method"])
                if isinstance(found, Miss):
                    await self._answer_miss(found, outer + router.hooks, scope, exchange)
                    return
                route, params = found
                if not isinstance(route, Mount):
                    break
                scope = self._child_scope(route, scope)
                if not isinstance(route.app, Router):  # any other ASGI app answers itself
                    await route.app(scope, exchange.receive, exchange.asgi_send)
                    return
                router, outer = route.app, outer + route.hooks
                path = route_path(scope)
            assert isinstance(route, Route)
            # A static route's match, and its empty dict, are shared: each request gets its own.
            scope["path_params"] = params if params else {}
            if route.limits is not None:
                exchange.limits = self._limits(route.limits)
            hooks = route.hooks if outer is NO_HOOKS else outer + route.hooks
            if hooks is not NO_HOOKS:
                await self._call_hooked(hooks, route, params, scope, exchange)
                return
            # No hook: the handler's value goes out as it is (the common case).
            request = Request.for_exchange(scope, exchange)
            endpoint = route.endpoint
            if route.is_async:
                result = await (endpoint(request, **params) if params else endpoint(request))
            else:
                result = await run_callable(endpoint, request, **params)
            if isinstance(result, Response):
                await result.respond(exchange)
                return
            messages = plain_messages(result, scope["method"])
            if messages is None:
                await to_response(result).respond(exchange)
                return
            await exchange.send_whole(*messages)
        except Exception as exc:
            if await self.errors.answer_http(exc, exchange):
                raise
        finally:
            if exchange.to_close is not None:
                await exchange.close()

    async def _not_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self.websocket(self.router, scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(scope, receive, send)
        else:
            raise ValueError(f"unsupported ASGI scope type {kind!r}")

    # http

    async def _answer_miss(
        self, miss: Miss, hooks: Hooks, scope: Scope, exchange: Exchange
    ) -> None:
        """Answer a request no route takes, through the hooks of the router it reached."""
        if hooks is NO_HOOKS:
            response = await self._unmatched(miss, scope)
            await response.respond(exchange)
            return
        request = Request.for_exchange(scope, exchange)
        await self._hooked(hooks, request, functools.partial(self._unmatched, miss, scope))

    def _limits(self, overrides: LimitOverrides) -> Limits:
        limits = self.route_limits.get(overrides)
        if limits is None:
            limits = self.route_limits[overrides] = overridden(self.limits, overrides)
        return limits

    async def _call_hooked(
        self,
        hooks: Hooks,
        route: Route,
        params: dict[str, object],
        scope: Scope,
        exchange: Exchange,
    ) -> None:
        request = Request.for_exchange(scope, exchange)
        endpoint = route.endpoint
        if route.is_async:
            call = functools.partial(endpoint, request, **params)
        else:
            call = functools.partial(run_callable, endpoint, request, **params)
        await self._hooked(hooks, request, call)

    async def _hooked(
        self, hooks: Hooks, request: Request, call: Callable[[], Awaitable[Any]]
    ) -> None:
        """Answer through hooks: the before ones (the first value one returns answers),
        ``call`` (the handler), then the after ones on the response, whether it came
        from the handler, a before hook or a handled error (never on a 500)."""
        try:
            for hook in hooks.before:
                result = await hook(request)
                if result is not None:
                    break
            else:  # no before hook answered
                result = await call()
            response = to_response(result)
        except Exception as exc:
            handled = await self.errors.handled_response(exc, request)
            if handled is None:
                raise
            response = handled
        for after in hooks.after:
            response = _replacement(after, await after(request, response))
        await response.respond(request.exchange)

    async def _unmatched(self, miss: Miss, scope: Scope) -> Response:
        """404, 405 (OPTIONS: 204) with ``Allow``, or a redirect to the other slash."""
        if miss.allow:
            allow = ", ".join(sorted(miss.allow | {"OPTIONS"}))
            if scope["method"] == "OPTIONS":
                return Response(None, 204, {"allow": allow})
            raise HTTPException(405, headers={"allow": allow})
        if miss.redirect is None:
            raise HTTPException(404)
        target = quote(scope.get("root_path", "") + miss.redirect, safe="/:@!$&'()*+,;=-._~")
        # "//evil.com" would be another host to a browser: keep the redirect on this one.
        target = "/" + target.lstrip("/")
        query = scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")
        return RedirectResponse(target, 308)

    def _child_scope(self, mount: Mount, scope: Scope) -> Scope:
        child = mount.child_scope(scope)
        if ROOT_KEY not in scope:
            # url_for in a mounted App resolves from this, the outermost, App.
            child[ROOT_KEY] = (self.app, scope.get("root_path", ""))
        return child

    # websockets

    async def websocket(
        self,
        router: Router,
        scope: Scope,
        receive: Receive,
        send: Send,
        outer: Hooks = NO_HOOKS,
    ) -> None:
        """Run the WebSocket handler ``router`` has for ``scope``, and end the connection."""
        found = router.lookup("websocket", route_path(scope))
        if not isinstance(found, Miss) and isinstance(found[0], Mount):
            mount = found[0]
            child = self._child_scope(mount, scope)
            if isinstance(mount.app, Router):
                await self.websocket(mount.app, child, receive, send, outer + mount.hooks)
            else:
                await self.errors.guard_websocket(mount.app, child, receive, send)
            return
        websocket = WebSocket(scope, receive, send)
        try:
            if isinstance(found, Miss):
                hooks = (outer + router.hooks).websocket
                if hooks and not await _admitted(hooks, websocket):
                    return
                raise HTTPException(404)
            route, params = found
            assert isinstance(route, WebSocketRoute)
            scope["path_params"] = params if params else {}
            hooks = (route.hooks if outer is NO_HOOKS else outer + route.hooks).websocket
            if hooks and not await _admitted(hooks, websocket):
                return
            await run_callable(route.endpoint, websocket, **params)
        except WebSocketDisconnect:
            pass  # the client left (or the handler gave up): a normal end
        except Exception as exc:
            if await self.errors.answer_websocket(exc, websocket):
                raise
            return
        await self.errors.end_websocket(websocket)


async def _admitted(hooks: tuple[AsyncHook, ...], websocket: WebSocket) -> bool:
    """Run before_websocket hooks; False once one returned a value, which denied the
    connection (one that raises denies it through the error layer)."""
    for hook in hooks:
        result = await hook(websocket)
        if result is not None:
            await websocket.deny(to_response(result))
            return False
    return True


def _replacement(hook: AsyncHook, result: Any) -> Response:
    """What an after_request hook returned, as the response from now on."""
    if result is None:
        if isinstance(hook, functools.partial) and hook.func is run_callable:
            hook = hook.args[0]  # a sync hook, as the dispatcher calls it
        name = getattr(hook, "__qualname__", repr(hook))
        raise TypeError(
            f"after_request hook {name} returned None: return the response, changed or replaced"
        )
    return to_response(result)
