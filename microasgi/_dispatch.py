"""The dispatcher: one request's way from the route table to the last ``send``.

For an http request it makes the request's ``Exchange``, decides the route once, calls
the handler with a ``Request``, turns what it returned into a response and sends it; an
error goes to the error layer, and the exchange's end closes what the request opened.
A WebSocket handler gets a ``WebSocket`` and is ended with the close its state calls for.
A mounted Router is served here as part of the App; any other mounted app gets a copy
of the scope for its prefix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from microasgi._concurrency import run_callable
from microasgi._errors import ErrorLayer
from microasgi._types import ASGIApp, Receive, Scope, Send
from microasgi.datastructures import Limits
from microasgi.exceptions import HTTPException
from microasgi.exchange import Exchange
from microasgi.requests import ROOT_KEY, Request
from microasgi.responses import RedirectResponse, Response
from microasgi.returns import plain_messages, to_response
from microasgi.routing import Lookup, Mount, Route, Router, route_path
from microasgi.websockets import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from microasgi.app import App


class Dispatcher:
    """The innermost layer of an App: looks the request up once and calls what answers it."""

    __slots__ = ("app", "errors", "lifespan", "limits", "router")

    def __init__(self, app: App, errors: ErrorLayer, lifespan: ASGIApp) -> None:
        self.app = app
        self.router = app.router
        self.limits: Limits = app.limits
        self.errors = errors
        self.lifespan = lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one scope: http, websocket or lifespan."""
        kind = scope["type"]
        if kind == "http":
            await self.http(self.router, scope, receive, send)
        elif kind == "websocket":
            await self.websocket(self.router, scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(scope, receive, send)
        else:
            raise ValueError(f"unsupported ASGI scope type {kind!r}")

    # http

    async def http(self, router: Router, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one http request with ``router``'s routes."""
        exchange = Exchange(scope, receive, send, self.limits)
        try:
            await self._answer(router, scope, exchange)
        except Exception as exc:
            if await self.errors.answer_http(exc, exchange):
                raise
        finally:
            if exchange.to_close is not None:
                await exchange.close()

    async def _answer(self, router: Router, scope: Scope, exchange: Exchange) -> None:
        found = router.lookup("http", route_path(scope), scope["method"])
        match = found.match
        if match is None:
            await self._unmatched(found, scope, exchange)
        elif match.mount is not None:
            await self._http_mount(match.mount, scope, exchange)
        else:
            assert isinstance(match.route, Route)
            params = match.params
            # A static route's match, and its empty dict, are shared: each request gets its own.
            scope["path_params"] = params if params else {}
            await self._call(match.route, params, scope, exchange)

    async def _call(
        self, route: Route, params: dict[str, object], scope: Scope, exchange: Exchange
    ) -> None:
        request = Request(scope, exchange=exchange)
        endpoint = route.endpoint
        if route.is_async:
            result = await (endpoint(request, **params) if params else endpoint(request))
        else:
            result = await run_callable(endpoint, request, **params)
        messages = plain_messages(result, scope["method"])
        if messages is None:
            await to_response(result).respond(exchange)
            return
        await exchange.send(messages[0])
        if exchange.body_unread():
            await exchange.finish_body()
        await exchange.send(messages[1])

    async def _http_mount(self, mount: Mount, scope: Scope, exchange: Exchange) -> None:
        child = self._child_scope(mount, scope)
        if isinstance(mount.app, Router):  # part of this App: its handlers, errors, limits
            await self._answer(mount.app, child, exchange)
        else:
            await mount.app(child, exchange.receive, exchange.send)

    async def _unmatched(self, found: Lookup, scope: Scope, exchange: Exchange) -> None:
        """404, 405 (OPTIONS: 204) with ``Allow``, or a redirect to the other slash."""
        if found.allow:
            allow = ", ".join(sorted(found.allow | {"OPTIONS"}))
            if scope["method"] == "OPTIONS":
                await Response(None, 204, {"allow": allow}).respond(exchange)
                return
            raise HTTPException(405, headers={"allow": allow})
        if found.redirect is None:
            raise HTTPException(404)
        target = quote(scope.get("root_path", "") + found.redirect, safe="/:@!$&'()*+,;=-._~")
        # "//evil.com" would be another host to a browser: keep the redirect on this one.
        target = "/" + target.lstrip("/")
        query = scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")
        await RedirectResponse(target, 308).respond(exchange)

    def _child_scope(self, mount: Mount, scope: Scope) -> Scope:
        child = mount.child_scope(scope)
        if ROOT_KEY not in scope:
            # url_for in a mounted App resolves from this, the outermost, App.
            child[ROOT_KEY] = (self.app, scope.get("root_path", ""))
        return child

    # websockets

    async def websocket(self, router: Router, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the WebSocket handler ``router`` has for ``scope``, and end the connection."""
        match = router.lookup("websocket", route_path(scope)).match
        if match is not None and match.mount is not None:
            child = self._child_scope(match.mount, scope)
            if isinstance(match.mount.app, Router):
                await self.websocket(match.mount.app, child, receive, send)
            else:
                await self.errors.guard_websocket(match.mount.app, child, receive, send)
            return
        websocket = WebSocket(scope, receive, send)
        try:
            if match is None or match.route is None:
                raise HTTPException(404)
            scope["path_params"] = match.params
            await run_callable(match.route.endpoint, websocket, **match.params)
        except WebSocketDisconnect:
            pass  # the client left (or the handler gave up): a normal end
        except Exception as exc:
            if await self.errors.answer_websocket(exc, websocket):
                raise
            return
        await self.errors.end_websocket(websocket)
