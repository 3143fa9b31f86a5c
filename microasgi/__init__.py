"""microasgi: a small, fast, complete ASGI micro-framework."""

from microasgi.app import App
from microasgi.background import BackgroundTask, BackgroundTasks
from microasgi.datastructures import FormData, State, UploadFile
from microasgi.exceptions import ClientDisconnect, HTTPException, WebSocketException
from microasgi.fileresponse import FileResponse
from microasgi.requests import HTTPConnection, Request
from microasgi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from microasgi.routing import NoMatchFound, Router
from microasgi.sse import EventSourceResponse, ServerSentEvent
from microasgi.streaming import StreamingResponse
from microasgi.websockets import WebSocket, WebSocketDisconnect

__version__ = "0.1.0"

__all__ = [
    "App",
    "BackgroundTask",
    "BackgroundTasks",
    "ClientDisconnect",
    "EventSourceResponse",
    "FileResponse",
    "FormData",
    "HTMLResponse",
    "HTTPConnection",
    "HTTPException",
    "JSONResponse",
    "NoMatchFound",
    "PlainTextResponse",
    "RedirectResponse",
    "Request",
    "Response",
    "Router",
    "ServerSentEvent",
    "State",
    "StreamingResponse",
    "UploadFile",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketException",
]
