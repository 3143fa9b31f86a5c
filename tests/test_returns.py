"""What a handler returns becomes the response a user expects, and nothing else."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from microasgi import (
    App,
    FileResponse,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    Request,
    Response,
)
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio

SHARED = PlainTextResponse("shared", headers={"x-app": "1"})


async def test_a_module_level_response_returned_in_a_tuple_is_never_changed() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> Any:
        return SHARED, 201, {"x-extra": "yes", "content-type": "text/plain; charset=latin-1"}

    async with TestClient(app) as client:
        for _ in range(3):
            response = await client.get("/")
            assert response.status_code == 201
            assert response.headers.getall("x-extra") == ["yes"]
            # A header given in the tuple replaces the response's own of that name.
            assert response.headers.getall("content-type") == ["text/plain; charset=latin-1"]
            assert response.headers.getall("x-app") == ["1"]
    assert SHARED.status_code == 200
    assert "x-extra" not in SHARED.headers


@pytest.mark.parametrize(
    "handler_returns",
    [
        lambda: (PlainTextResponse("dropped"), 204),
        lambda: Response(b"dropped", 204),
        lambda: Response(headers={"content-length": "0"}, status_code=204),
        lambda: JSONResponse(None, 204),
        lambda: ("", 204),
        lambda: None,
    ],
    ids=["tuple", "body", "explicit-length", "json", "str", "none"],
)
async def test_a_204_has_neither_content_length_nor_body(handler_returns: Any) -> None:
    app = App()
    app.add_route("/", lambda request: handler_returns())
    async with TestClient(app) as client:
        response = await client.get("/")
    assert response.status_code == 204
    assert "content-length" not in response.headers
    assert response.content == b""


async def test_a_204_http_exception_has_no_content_length() -> None:
    app = App()

    @app.delete("/")
    async def gone(request: Request) -> str:
        raise HTTPException(204)

    async with TestClient(app) as client:
        response = await client.delete("/")
    assert (response.status_code, response.content) == (204, b"")
    assert "content-length" not in response.headers


@dataclasses.dataclass
class Article:
    slug: str
    tags: list[str]


async def test_a_returned_dataclass_is_json() -> None:
    app = App()

    @app.get("/article")
    async def article(request: Request) -> Article:
        return Article("hello", ["a", "b"])

    @app.post("/article")
    async def create(request: Request) -> tuple[Article, int]:
        return Article("new", []), 201

    async with TestClient(app) as client:
        got = await client.get("/article")
        made = await client.post("/article")
    assert got.headers["content-type"] == "application/json"
    assert got.json() == {"slug": "hello", "tags": ["a", "b"]}
    assert (made.status_code, made.json()) == (201, {"slug": "new", "tags": []})


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"if-none-match": "*"}, 304),
        ({"if-match": '"not-it"'}, 412),
        ({"range": "bytes=99-"}, 416),
    ],
)
async def test_304_412_416_keep_the_headers_that_are_not_about_the_body(
    tmp_path: Path, headers: dict[str, str], status: int
) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(b"<p>hello</p>")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    policy = "default-src 'self'"
    app = App()

    @app.get("/page")
    async def page(request: Request) -> FileResponse:
        return FileResponse(
            path,
            headers={
                "content-security-policy": policy,
                "cache-control": "max-age=60",
                "vary": "Accept-Language",
                "content-language": "en",
            },
        )

    async with TestClient(app) as client:
        response = await client.get("/page", headers=headers)
    assert response.status_code == status
    assert response.headers["content-security-policy"] == policy
    assert response.headers["cache-control"] == "max-age=60"
    assert response.headers["vary"] == "Accept-Language"
    # Representation metadata goes: it describes a body these answers do not carry.
    assert "content-type" not in response.headers
    assert "content-language" not in response.headers
