"""``App``: the ASGI callable. It composes a Router, the error layer, user middleware
and the lifespan, and holds the settings (limits, debug). It does not grow: behaviour
lives in the modules it composes.

The stack (dispatcher, user middleware, the error guard) is built at lifespan startup,
so a configuration error (an unknown converter, a middleware option typo) fails startup
with its message instead of meeting the first request; a server without lifespan builds
it at the first call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar
from urllib.parse import quote

from microasgi._dispatch import Dispatcher
from microasgi._errors import ErrorLayer, ExceptionHandler, HandlerKey
from microasgi._types import ASGIApp, Message, Receive, Scope, Send
from microasgi.datastructures import DEFAULT_LIMITS, Limits, RouteLimits, State
from microasgi.lifespan import Hook, Lifespan, LifespanFunc, report_failure
from microasgi.requests import APP_KEY, ROOT_KEY
from microasgi.routing import Converter, Handler, Mount, Router

if TYPE_CHECKING:
    from typing_extensions import Unpack

F = TypeVar("F", bound=Callable[..., Any])
H = TypeVar("H", bound=Hook)
L = TypeVar("L", bound=LifespanFunc)
E = TypeVar("E", bound=ExceptionHandler)
RH = TypeVar("RH", bound=Callable[..., Any])
P = ParamSpec("P")


class MiddlewareFactory(Protocol[P]):
    """A pure ASGI middleware class: ``cls(app, **options)`` is an ASGI app."""

    def __call__(self, app: ASGIApp, /, *args: P.args, **kwargs: P.kwargs) -> ASGIApp: ...


class App:
    """An ASGI 3 application: ``await app(scope, receive, send)``."""

    def __init__(
        self,
        debug: bool = False,
        *,
        lifespan: LifespanFunc | None = None,
        redirect_slashes: bool = True,
        max_body_size: int = DEFAULT_LIMITS.max_body_size,
        max_form_fields: int = DEFAULT_LIMITS.max_form_fields,
        max_form_files: int = DEFAULT_LIMITS.max_form_files,
        max_part_size: int = DEFAULT_LIMITS.max_part_size,
        max_file_size: int = DEFAULT_LIMITS.max_file_size,
        max_part_header_size: int = DEFAULT_LIMITS.max_part_header_size,
        spool_threshold: int = DEFAULT_LIMITS.spool_threshold,
    ) -> None:
        self.debug = debug
        self.router = Router(redirect_slashes=redirect_slashes)
        self.state = State()
        self.limits = Limits(
            max_body_size=max_body_size,
            max_form_fields=max_form_fields,
            max_form_files=max_form_files,
            max_part_size=max_part_size,
            max_file_size=max_file_size,
            max_part_header_size=max_part_header_size,
            spool_threshold=spool_threshold,
        )
        self._lifespan = Lifespan(self, self._mounted_apps)
        self._lifespan.func = lifespan
        self.exception_handlers: dict[HandlerKey, ExceptionHandler] = {}
        self._middleware: list[tuple[Callable[..., ASGIApp], tuple[Any, ...], dict[str, Any]]] = []
        self._stack: ASGIApp | None = None

    # ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection (http, websocket or lifespan)."""
        if scope.get("root_path") and ROOT_KEY not in scope:
            # Without a root_path there is nothing to fix, and url_for's defaults are right;
            # the dispatcher marks the scope it hands a mounted app.
            scope = self._outermost(scope)
        scope[APP_KEY] = self
        stack = self._stack
        if stack is None:
            if scope["type"] == "lifespan":
                await self._start(scope, receive, send)
                return
            stack = self._build()
        await stack(scope, receive, send)

    async def _start(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The first lifespan call: build the stack once startup is asked for, then speak
        the protocol through it (user middleware see the lifespan too)."""
        first: Message | None = await receive()
        try:
            stack = self._build()
        except Exception as exc:
            await report_failure(send, "startup", exc)
            raise

        async def replayed() -> Message:
            nonlocal first
            if first is None:
                return await receive()
            message, first = first, None
            return message

        await stack(scope, replayed, send)

    def _outermost(self, scope: Scope) -> Scope:
        """Give everything below a spec-style scope: ``path`` includes ``root_path``."""
        root_path: str = scope.get("root_path", "")
        path: str | None = scope.get("path")
        if (
            root_path
            and path is not None
            and not (path == root_path or path.startswith(root_path + "/"))
        ):
            # Some servers (hypercorn, daphne, granian) leave path relative to root_path.
            scope = dict(scope)
            scope["path"] = root_path + path
            raw_path = scope.get("raw_path")
            if raw_path is not None:
                scope["raw_path"] = quote(root_path).encode("ascii") + raw_path
        scope[ROOT_KEY] = (self, root_path)
        return scope

    def _build(self) -> ASGIApp:
        """Compile the routes and stack the layers: raises on a configuration error."""
        self.router.prepare()
        errors = ErrorLayer(self.exception_handlers, self.debug, self.limits)
        app: ASGIApp = Dispatcher(self, errors, self._lifespan)
        for cls, args, options in self._middleware:
            app = cls(app, *args, **options)
        if self._middleware:
            app = errors.guard(app)
        self._stack = app
        return app

    def _mounted_apps(self) -> list[ASGIApp]:
        """The apps mounted here or in a mounted Router: each gets the lifespan too."""
        apps: list[ASGIApp] = []
        mounts: list[Mount] = list(self.router.mounts)
        while mounts:
            mount = mounts.pop(0)
            if isinstance(mount.app, Router):
                mounts.extend(mount.app.mounts)
            else:
                apps.append(mount.app)
        return apps

    # settings and state

    @property
    def lifespan_state(self) -> dict[str, Any]:
        """The state the lifespan yielded (for servers that do not keep ASGI state)."""
        return self._lifespan.state

    # middleware and errors

    def add_middleware(
        self, cls: MiddlewareFactory[P], /, *args: P.args, **options: P.kwargs
    ) -> None:
        """Wrap the app in pure ASGI middleware ``cls(app, **options)`` (last added: outermost).

        The options are checked against ``cls`` by type checkers; at run time, when the
        App starts (lifespan startup): a typo fails startup, not the first request.
        """
        if self._stack is not None:
            raise RuntimeError("cannot add middleware after the application has started")
        self._middleware.append((cls, args, options))

    def add_exception_handler(self, key: HandlerKey, handler: ExceptionHandler) -> None:
        """Answer exceptions of class ``key`` (or HTTPExceptions of status ``key``)."""
        self.exception_handlers[key] = handler

    def exception_handler(self, key: HandlerKey) -> Callable[[E], E]:
        """Decorate ``async def handler(request, exc) -> Response`` for a status or class."""

        def decorator(handler: E) -> E:
            self.add_exception_handler(key, handler)
            return handler

        return decorator

    # lifespan

    def on_startup(self, hook: H) -> H:
        """Run ``hook()`` at startup (after the lifespan generator's code before yield)."""
        self._lifespan.startup_hooks.append(hook)
        return hook

    def on_shutdown(self, hook: H) -> H:
        """Run ``hook()`` at shutdown (before the lifespan generator's code after yield)."""
        self._lifespan.shutdown_hooks.append(hook)
        return hook

    def lifespan(self, func: L) -> L:
        """Decorate ``async def lifespan(app)``: code before ``yield {state}``, then after."""
        self._lifespan.func = func
        return func

    # hooks: kept by the App's Router, so they come first for every route

    def before_request(self, hook: RH) -> RH:
        """Run ``hook(request)`` before every handler of this App (its Routers' too); a
        value it returns (or an ``HTTPException``) answers the request."""
        return self.router.before_request(hook)

    def after_request(self, hook: RH) -> RH:
        """Run ``hook(request, response)`` on every response of this App's handlers; it
        returns the response, changed or replaced."""
        return self.router.after_request(hook)

    def before_websocket(self, hook: RH) -> RH:
        """Run ``hook(websocket)`` before every WebSocket handler of this App; an
        ``HTTPException`` (or a value it returns) denies the connection."""
        return self.router.before_websocket(hook)

    # routing: everything delegates to the Router

    def route(
        self,
        path: str,
        methods: Iterable[str] | None = None,
        name: str | None = None,
        **limits: Unpack[RouteLimits],
    ) -> Callable[[F], F]:
        """Decorate a handler (or an ``HTTPEndpoint`` class) for ``path`` and ``methods``
        (default GET, HEAD implied); ``limits`` override the App's for its requests."""
        return self.router.route(path, methods, name, **limits)

    def get(
        self, path: str, name: str | None = None, **limits: Unpack[RouteLimits]
    ) -> Callable[[F], F]:
        """Decorate a GET (and HEAD) handler."""
        return self.router.get(path, name, **limits)

    def post(
        self, path: str, name: str | None = None, **limits: Unpack[RouteLimits]
    ) -> Callable[[F], F]:
        """Decorate a POST handler."""
        return self.router.post(path, name, **limits)

    def put(
        self, path: str, name: str | None = None, **limits: Unpack[RouteLimits]
    ) -> Callable[[F], F]:
        """Decorate a PUT handler."""
        return self.router.put(path, name, **limits)

    def patch(
        self, path: str, name: str | None = None, **limits: Unpack[RouteLimits]
    ) -> Callable[[F], F]:
        """Decorate a PATCH handler."""
        return self.router.patch(path, name, **limits)

    def delete(
        self, path: str, name: str | None = None, **limits: Unpack[RouteLimits]
    ) -> Callable[[F], F]:
        """Decorate a DELETE handler."""
        return self.router.delete(path, name, **limits)

    def websocket(self, path: str, name: str | None = None) -> Callable[[F], F]:
        """Decorate a WebSocket handler for ``path``."""
        return self.router.websocket(path, name)

    def add_route(
        self,
        path: str,
        endpoint: Handler,
        methods: Iterable[str] | None = None,
        name: str | None = None,
        **limits: Unpack[RouteLimits],
    ) -> None:
        """Register an HTTP handler (or an ``HTTPEndpoint`` class) for ``path``."""
        self.router.add_route(path, endpoint, methods, name, **limits)

    def add_websocket_route(self, path: str, endpoint: Handler, name: str | None = None) -> None:
        """Register a WebSocket handler for ``path``."""
        self.router.add_websocket_route(path, endpoint, name)

    def mount(self, path: str, app: ASGIApp | Router, name: str | None = None) -> None:
        """Serve the ASGI app ``app`` under the prefix ``path`` (lifespan included); a
        mounted Router is served as part of this App (its handlers, limits, debug)."""
        self.router.mount(path, app, name)

    def include_router(self, router: Router, prefix: str = "") -> None:
        """Add ``router``'s routes under ``prefix`` (names are not namespaced)."""
        self.router.include_router(router, prefix)

    def register_converter(self, name: str, converter: Converter) -> None:
        """Make ``{param:name}`` available to every route of this App."""
        self.router.register_converter(name, converter)

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """The path of the route ``name`` (``"mount:route"`` for a mounted App's)."""
        return self.router.url_path_for(name, **params)
