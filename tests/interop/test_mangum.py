"""The showcase on AWS Lambda through Mangum, called as the Lambda runtime would.

Mangum turns API Gateway REST (v1), HTTP API (v2) and ALB events into one ASGI HTTP
request each and the response back into the event answer. What it puts in the scope
differs from the socket servers: ``raw_path`` is None, no extensions, a stripped base
path, and the whole lifespan (startup and shutdown) runs around every invocation.
"""

from __future__ import annotations

import base64
import hashlib
import json
from types import SimpleNamespace
from typing import Any

import pytest
from mangum import Mangum

from interop import raw_app
from interop.app import DOWNLOAD_FILE
from interop.app import app as showcase
from interop.conftest import CellFactory

HOST = "abc123.execute-api.eu-west-1.amazonaws.com"
CONTEXT = SimpleNamespace(function_name="showcase", aws_request_id="req-1")


def rest_event(
    method: str,
    path: str,
    *,
    query: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    stage: str = "prod",
) -> dict[str, Any]:
    """An API Gateway REST API (v1) proxy event, as Lambda receives it."""
    all_headers = {"Host": HOST, "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443"}
    all_headers.update(headers or {})
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "multiValueQueryStringParameters": query,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "pytest"},
        },
        "body": base64.b64encode(body).decode() if body is not None else None,
        "isBase64Encoded": body is not None,
    }


def http_api_event(
    method: str,
    path: str,
    *,
    raw_query: str = "",
    headers: dict[str, str] | None = None,
    cookies: list[str] | None = None,
    body: bytes | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {"host": HOST, "x-forwarded-proto": "https", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": HOST,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "pytest",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 1583348638390,
        },
        "isBase64Encoded": body is not None,
    }
    if cookies:
        event["cookies"] = cookies
    if body is not None:
        event["body"] = base64.b64encode(body).decode()
    return event


def alb_event(
    method: str, path: str, *, query: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """An Application Load Balancer event with multi-value headers enabled."""
    return {
        "requestContext": {
            "elb": {
                "targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:"
                "targetgroup/showcase/73e2d6bc24d8a067"
            }
        },
        "httpMethod": method,
        "path": path,
        "multiValueQueryStringParameters": query or {},
        "multiValueHeaders": {
            "host": ["showcase.example.com"],
            "x-forwarded-for": ["203.0.113.7"],
            "x-forwarded-proto": ["https"],
        },
        "body": "",
        "isBase64Encoded": False,
    }


def body_of(answer: dict[str, Any]) -> bytes:
    """The response body as bytes, whatever Mangum chose to encode."""
    body: str = answer.get("body", "")
    return base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()


def call(handler: Mangum, event: dict[str, Any]) -> tuple[int, Any]:
    """Invoke like the Lambda runtime and return the status and the JSON body."""
    answer = handler(event, CONTEXT)
    return answer["statusCode"], json.loads(body_of(answer))


def test_rest_api_events(cell: CellFactory) -> None:
    http = cell("mangum", "HTTP/1.1")
    handler = Mangum(showcase, api_gateway_base_path="/prod")
    # API Gateway gives the stage prefix in the path when the custom domain maps it.
    assert call(handler, rest_event("GET", "/prod/users/3")) == (200, {"id": 3, "is_int": True})
    status, found = call(handler, rest_event("GET", "/search", query={"q": ["a", "b"]}))
    assert (status, found) == (200, {"q": ["a", "b"], "page": None})
    echoed = call(
        handler,
        rest_event(
            "POST",
            "/echo/json",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"é": [1]}).encode(),
        ),
    )
    assert echoed == (200, {"received": {"é": [1]}})
    text = handler(rest_event("GET", "/"), CONTEXT)
    assert (text["statusCode"], text["body"]) == (200, "Hello, world!")
    assert text["isBase64Encoded"] is False
    http.value = "yes (REST, HTTP API, ALB events)"


def test_http_api_events_with_forms_and_files(cell: CellFactory) -> None:
    http = cell("mangum", "HTTP/1.1")
    handler = Mangum(showcase)
    assert call(handler, http_api_event("GET", "/search", raw_query="q=x&q=y&page=2")) == (
        200,
        {"q": ["x", "y"], "page": "2"},
    )
    form = call(
        handler,
        http_api_event(
            "POST",
            "/echo/form",
            headers={"content-type": "application/x-www-form-urlencoded"},
            body=b"name=Zo%C3%AB&tags=x&tags=y",
        ),
    )
    assert form == (200, {"name": ["Zoë"], "tags": ["x", "y"]})
    blob = bytes(range(256)) * 64
    multipart = (
        b'--b\r\nContent-Disposition: form-data; name="doc"; filename="a.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + blob + b"\r\n--b--\r\n"
    )
    status, uploaded = call(
        handler,
        http_api_event(
            "POST",
            "/upload",
            headers={"content-type": "multipart/form-data; boundary=b"},
            body=multipart,
        ),
    )
    assert status == 200
    assert uploaded["files"]["doc"]["sha256"] == hashlib.sha256(blob).hexdigest()
    http.value = "yes (REST, HTTP API, ALB events)"


def test_alb_events_and_mounted_apps(cell: CellFactory) -> None:
    http = cell("mangum", "HTTP/1.1")
    handler = Mangum(showcase)
    status, ping = call(handler, alb_event("GET", "/sub/ping"))
    assert status == 200
    assert ping == {
        "pong": True,
        "path": "/sub/ping",
        "root_path": "/sub",
        "url": "https://showcase.example.com/sub/ping",
    }
    status, raw = call(handler, alb_event("GET", "/raw/facts", query={"x": ["1"]}))
    assert status == 200
    # Mangum gives no raw_path: everything below must work from path alone.
    assert (raw["path"], raw["raw_path"], raw["root_path"]) == ("/raw/facts", None, "/raw")
    assert raw["query_string"] == "x=1"
    http.value = "yes (REST, HTTP API, ALB events)"


def test_binary_ranged_and_streamed_bodies() -> None:
    handler = Mangum(showcase)
    data = DOWNLOAD_FILE.read_bytes()
    full = handler(http_api_event("GET", "/download"), CONTEXT)
    assert full["statusCode"] == 200
    assert body_of(full) == data
    ranged = handler(http_api_event("GET", "/download", headers={"range": "bytes=5-14"}), CONTEXT)
    assert (ranged["statusCode"], body_of(ranged)) == (206, data[5:15])
    # Mangum buffers a streaming response whole: the chunks arrive as one body.
    streamed = handler(http_api_event("GET", "/stream", raw_query="n=4"), CONTEXT)
    assert body_of(streamed) == b"line 0\nline 1\nline 2\nline 3\n"


def test_no_extensions_so_push_and_hints_degrade(cell: CellFactory) -> None:
    push, hints, pathsend = (cell("mangum", c) for c in ("server push", "early hints", "pathsend"))
    handler = Mangum(showcase)
    status, advertised = call(handler, http_api_event("GET", "/advertised"))
    assert status == 200
    assert not any(advertised.values())
    assert call(handler, http_api_event("GET", "/push")) == (200, {"pushed": False})
    assert call(handler, http_api_event("GET", "/hints")) == (200, {"sent": False})
    push.value = "no"
    hints.value = "no"
    pathsend.value = "no"


def test_lifespan_runs_around_every_invocation(cell: CellFactory) -> None:
    """Mangum starts and stops the app for each event: the same App must take that."""
    lifespan = cell("mangum", "lifespan")
    handler = Mangum(showcase)
    for _ in range(3):
        status, state = call(handler, http_api_event("GET", "/lifespan"))
        assert status == 200
        assert state["greeting"] == "hello from lifespan"
    lifespan.value = "yes, around every invocation"


def test_scope_mangum_gives(cell: CellFactory) -> None:
    """raw_path None, no extensions, spec 2.0, state copied per invocation."""
    claims = {
        c: cell("mangum", c) for c in ("path with root_path", "http extensions", "spec_version")
    }
    state = cell("mangum", "lifespan state")
    handler = Mangum(raw_app.app, api_gateway_base_path="/prod")
    status, seen = call(handler, rest_event("GET", "/prod/facts"))
    assert status == 200
    assert (seen["path"], seen["raw_path"], seen["root_path"]) == ("/facts", None, "")
    assert seen["asgi"] == {"version": "3.0", "spec_version": "2.0"}
    assert (seen["has_extensions_key"], seen["has_state"]) == (False, True)
    # The state raw_app's startup filled, copied into the request's scope.
    assert seen["state"] == {"started_by": seen["pid"]}
    claims["path with root_path"].value = "base path stripped (`/facts`), `root_path` empty"
    claims["http extensions"].value = "none (no `extensions` key), `raw_path` None"
    claims["spec_version"].value = "http 2.0"
    state.value = "yes, a copy per invocation"


def test_websocket_events_are_not_handled(cell: CellFactory) -> None:
    websocket = cell("mangum", "WebSocket")
    connect_event = {
        "requestContext": {"eventType": "CONNECT", "connectionId": "abc=", "routeKey": "$connect"},
        "headers": {"Host": HOST},
        "isBase64Encoded": False,
    }
    handler = Mangum(showcase)
    with pytest.raises(RuntimeError, match="unable to infer a handler"):
        handler(connect_event, CONTEXT)
    websocket.value = "no (API Gateway WebSocket events unsupported)"
