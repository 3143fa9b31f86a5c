"""microasgi: a small, fast, complete ASGI micro-framework."""

from microasgi.app import App
from microasgi.datastructures import FormData, State, UploadFile
from microasgi.exceptions import HTTPException
from microasgi.requests import ClientDisconnect, HTTPConnection, Request
from microasgi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from microasgi.routing import NoMatchFound, Router
from microasgi.websockets import WebSocket, WebSocketDisconnect

__version__ = "0.1.0"

__all__ = [
    "App",
    "ClientDisconnect",
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
    "State",
    "StreamingResponse",
    "UploadFile",
    "WebSocket",
    "WebSocketDisconnect",
]
