"""The innermost layer of an App: one lookup per request, then the handler, then the
response; WebSocket handlers end with the close code the protocol wants.
"""

from __future__ import annotations

import functools
from urllib.parse import quote

import anyio

from microasgi._errors import ErrorLayer
from microasgi._types import ASGIApp, Receive, Scope, Send
from microasgi.exceptions import HTTPException
from microasgi.requests import BODY_READ_KEY, BODYLESS_METHODS, FORM_KEY, Request, drain_body
from microasgi.responses import RedirectResponse, Response, plain_messages, to_response
from microasgi.routing import Lookup, Route, Router, route_path
from microasgi.websockets import WebSocket, WebSocketDisconnect, WebSocketState


class Dispatcher:
    """The innermost layer: looks the request up once and calls what answers it.

    It also applies the error layer's rules itself (rather than being wrapped by it),
    so a routed request costs no extra frame or send wrapper.
    """

    __slots__ = ("errors", "lifespan", "router")

    def __init__(self, router: Router, lifespan: ASGIApp, errors: ErrorLayer) -> None:
        self.router = router
        self.lifespan = lifespan
        self.errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one scope: http, websocket or lifespan."""
        if scope["type"] != "http":
            await self._other(scope, receive, send)
            return
        # The hot path, kept flat: every await of a coroutine here costs a frame.
        method = scope["method"]
        router = self.router
        match = (router._trees or router._build())["http"].first(route_path(scope), method)
        if match is None or match.route is None:
            await self.errors.guard_http(self._unrouted, scope, receive, send)
            return
        route: Route = match.route  # type: ignore[assignment]  # http trees hold Routes
        params = match.params
        scope["path_params"] = params if params else {}  # a static match's {} is shared
        response: Response | None = None
        try:
            try:
                request = Request(scope, receive, send)
                if route.is_async:
                    endpoint = route.endpoint
                    result = await (endpoint(request, **params) if params else endpoint(request))
                else:
                    call = functools.partial(route.endpoint, request, **params)
                    result = await anyio.to_thread.run_sync(call)
                messages = plain_messages(result, method)
                if messages is None:
                    response = to_response(result)
            except Exception as exc:  # nothing was sent yet
                await self.errors.answer_http(exc, scope, receive, send)
                return
            if messages is not None:
                await send(messages[0])
                if method not in BODYLESS_METHODS and BODY_READ_KEY not in scope:
                    await drain_body(scope, receive)  # before the end: see drain_body
                await send(messages[1])
            else:
                # A Response may fail before or after its start: the guard tells which.
                assert response is not None
                await self.errors.guard_http(response, scope, receive, send)
        finally:
            form = scope.get(FORM_KEY)
            if form is not None and form._has_uploads:
                await form.close()

    async def _unrouted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """No route: a mount, or 404, 405, OPTIONS and slash redirects."""
        path = route_path(scope)
        found = self.router.lookup("http", path, scope["method"])
        match = found.match
        if match is not None and match.mount is not None:
            await match.mount.app(match.mount.child_scope(scope), receive, send)
        else:
            await self._unmatched(found, scope, receive, send)

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(scope, receive, send)
        else:
            raise ValueError(f"unsupported ASGI scope type {kind!r}")

    async def _unmatched(self, found: Lookup, scope: Scope, receive: Receive, send: Send) -> None:
        if found.allow:
            allow = _allow_header(found.allow)
            if scope["method"] == "OPTIONS":
                await Response(None, 204, {"allow": allow})(scope, receive, send)
                return
            raise HTTPException(405, headers={"allow": allow})
        if found.redirect is not None:
            target = quote(scope.get("root_path", "") + found.redirect, safe="/:@!$&'()*+,;=-._~")
            # "//evil.com" would be another host to a browser: keep the redirect on this one.
            target = "/" + target.lstrip("/")
            query = scope.get("query_string", b"")
            if query:
                target += "?" + query.decode("latin-1")
            await RedirectResponse(target, 308)(scope, receive, send)
            return
        raise HTTPException(404)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = self.router.lookup("websocket", route_path(scope)).match
        if match is not None and match.mount is not None:
            child = match.mount.child_scope(scope)
            await self.errors.guard_websocket(match.mount.app, child, receive, send)
            return
        # Our own WebSocket knows its state: no message wrappers needed to end it right.
        websocket = WebSocket(scope, receive, send)
        try:
            if match is None or match.route is None:
                raise HTTPException(404)
            scope["path_params"] = match.params
            await match.route.endpoint(websocket, **match.params)
        except WebSocketDisconnect:
            pass  # the client left (or the handler gave up): a normal end
        except Exception as exc:
            state = websocket.connection_state
            if state in (WebSocketState.CLOSED, WebSocketState.DENIED):
                raise
            await self.errors.end_websocket(state, exc, lambda: websocket, scope, send)
            return
        state = websocket.connection_state
        await self.errors.end_websocket(state, None, lambda: websocket, scope, send)


def _allow_header(methods: frozenset[str]) -> str:
    return ", ".join(sorted(methods | {"OPTIONS"}))
