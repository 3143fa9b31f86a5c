"""Class-based views: ``HTTPEndpoint`` (a method per HTTP verb) and ``WebSocketEndpoint``.

Register the class itself as the handler (``@app.route(path)`` on it, or
``app.add_route(path, ItemView)``; ``@app.websocket(path)`` for a WebSocket one). Each
request or connection gets its own instance, made with the connection and the path's
parameters; awaiting the instance runs it, which is how the dispatcher calls any handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, ClassVar, Literal

from microasgi._concurrency import run_callable
from microasgi.exceptions import HTTPException, WebSocketException
from microasgi.requests import Request
from microasgi.websockets import WebSocket, WebSocketDisconnect, WebSocketState

__all__ = ["HTTPEndpoint", "WebSocketEndpoint"]

# The verbs a view answers by defining a method of that name, lower-case (as Starlette's).
VERBS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
Encoding = Literal["text", "bytes", "json"]


class HTTPEndpoint:
    """A class-based view: ``async def get(self, request, **params)``, ``post`` and so on.

    Its route answers the verbs it has a method for (HEAD with ``get``'s headers when it
    has no ``head``), OPTIONS as the router does, and any other method with a 405 whose
    ``Allow`` lists them. A method may be sync (it runs in a worker thread); what it
    returns is converted as a handler's value is. Each method must take the route's path
    parameters as keyword arguments: that is checked when the route is registered.
    """

    _handlers: ClassVar[Mapping[str, Callable[..., Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found = {verb: getattr(cls, verb.lower(), None) for verb in VERBS}
        cls._handlers = {verb: function for verb, function in found.items() if callable(function)}

    def __init__(self, request: Request, **params: Any) -> None:
        self.request = request
        self.params = params

    @classmethod
    def method_handlers(cls) -> Mapping[str, Callable[..., Any]]:
        """The function answering each verb the view defines (upper-case names)."""
        return cls._handlers

    def __await__(self) -> Generator[Any, None, Any]:
        return self.dispatch().__await__()

    async def dispatch(self) -> Any:
        """Call the method for the request's verb and return what it returns."""
        request = self.request
        verb = request.method
        if verb == "HEAD" and verb not in self._handlers:
            verb = "GET"
        if verb not in self._handlers:  # only when the view is used outside a route
            verbs = {*self._handlers, "OPTIONS"} | ({"HEAD"} if "GET" in self._handlers else set())
            raise HTTPException(405, headers={"allow": ", ".join(sorted(verbs))})
        method: Callable[..., Awaitable[Any] | Any] = getattr(self, verb.lower())
        return await run_callable(method, request, **self.params)


class WebSocketEndpoint:
    """A class-based WebSocket handler: ``on_connect``, ``on_receive``, ``on_disconnect``.

    ``encoding`` decides what ``on_receive`` gets: ``"text"`` (a ``str``; a binary
    message closes with 1003), ``"bytes"`` (a text message closes with 1003), ``"json"``
    (the parsed value; invalid JSON closes with 1007), or None (the raw ASGI message).
    """

    encoding: ClassVar[Encoding | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.encoding not in ("text", "bytes", "json", None):
            raise ValueError(
                f"{cls.__name__}.encoding must be 'text', 'bytes', 'json' or None, "
                f"not {cls.encoding!r}"
            )

    def __init__(self, websocket: WebSocket, **params: Any) -> None:
        self.websocket = websocket
        self.params = params

    def __await__(self) -> Generator[Any, None, None]:
        return self.dispatch().__await__()

    async def dispatch(self) -> None:
        """Connect, hand each message to ``on_receive``, and report the end."""
        websocket = self.websocket
        await self.on_connect(websocket)
        if websocket.connection_state is not WebSocketState.CONNECTED:
            return  # on_connect refused it (or left it: denied, as a handler would be)
        receive = {
            "text": websocket.receive_text,
            "bytes": websocket.receive_bytes,
            "json": websocket.receive_json,
            None: websocket.receive,
        }[self.encoding]
        close_code = 1011  # unless the loop ends as a connection ends
        try:
            while True:
                await self.on_receive(websocket, await receive())
        except WebSocketDisconnect as exc:  # the client left, or the handler closed
            close_code = exc.code
        except WebSocketException as exc:  # the close it asks the error layer for
            close_code = exc.code
            raise
        finally:
            await self.on_disconnect(websocket, close_code)

    async def on_connect(self, websocket: WebSocket) -> None:
        """The client asked to connect: accept (override to choose, or to refuse)."""
        await websocket.accept()

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        """A message arrived, decoded by ``encoding``."""

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        """The connection ended with ``close_code`` (1011 when a method failed)."""
