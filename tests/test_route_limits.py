"""Limits per route (over the App's) and per call of ``request.form(...)``."""

from __future__ import annotations

import pytest

from microasgi import App, Request, Router
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio

KiB = 1024
MiB = 1024 * KiB


def upload_app() -> App:
    """An App allowing 64 KiB bodies, with one upload route allowing 4 MiB."""
    app = App(max_body_size=64 * KiB, max_file_size=64 * KiB)

    async def size(request: Request) -> str:
        form = await request.form()
        upload = form["file"]
        assert not isinstance(upload, str)
        return str(len(await upload.read()))

    app.post("/upload", max_body_size=4 * MiB, max_file_size=4 * MiB)(size)
    app.post("/avatar")(size)
    return app


async def test_a_big_upload_is_allowed_on_its_route_and_refused_on_another() -> None:
    big = b"x" * (1 * MiB)
    async with TestClient(upload_app()) as client:
        allowed = await client.post("/upload", files={"file": ("big.bin", big)})
        refused = await client.post("/avatar", files={"file": ("big.bin", big)})
        small = await client.post("/avatar", files={"file": ("small.png", b"png")})
    assert (allowed.status_code, allowed.text) == (200, str(len(big)))
    assert refused.status_code == 413
    assert (small.status_code, small.text) == (200, "3")


async def test_a_route_limit_applies_to_the_body_and_the_stream() -> None:
    app = App()

    @app.post("/body", max_body_size=10)
    async def body(request: Request) -> str:
        return str(len(await request.body()))

    @app.put("/stream", max_body_size=10)
    async def stream(request: Request) -> str:
        return str(sum([len(chunk) async for chunk in request.stream()]))

    async with TestClient(app) as client:
        assert (await client.post("/body", content=b"x" * 10)).text == "10"
        assert (await client.post("/body", content=b"x" * 11)).status_code == 413
        assert (await client.put("/stream", content=b"x" * 11)).status_code == 413


async def test_a_routers_limits_hold_wherever_it_is_served() -> None:
    router = Router()

    @router.route("/import", methods=["POST"], max_form_fields=3)
    async def bulk(request: Request) -> str:
        return str(len(await request.form()))

    app = App(max_form_fields=1)

    @app.post("/contact")
    async def contact(request: Request) -> str:
        return str(len(await request.form()))

    app.include_router(router, prefix="/api")
    app.mount("/admin", router)
    three = {"a": "1", "b": "2", "c": "3"}
    async with TestClient(app) as client:
        assert (await client.post("/api/import", data=three)).text == "3"
        assert (await client.post("/admin/import", data=three)).text == "3"
        assert (await client.post("/api/import", data={**three, "d": "4"})).status_code == 400
        assert (await client.post("/contact", data={"a": "1", "b": "2"})).status_code == 400


async def test_form_call_limits_override_the_routes() -> None:
    app = App()

    @app.post("/comment", max_form_fields=100)
    async def comment(request: Request) -> str:
        form = await request.form(max_fields=2, max_files=0, max_part_size=20)
        return ",".join(str(value) for value in form.values())

    async with TestClient(app) as client:
        ok = await client.post("/comment", data={"name": "ada", "text": "hello"})
        too_many = await client.post("/comment", data={"a": "1", "b": "2", "c": "3"})
        with_file = await client.post("/comment", files={"f": ("a.txt", b"a")})
        too_long = await client.post("/comment", data={"text": "x" * 21})
    assert (ok.status_code, ok.text) == (200, "ada,hello")
    assert too_many.status_code == 400
    assert with_file.status_code == 400
    assert too_long.status_code == 413


async def test_the_apps_limits_stay_the_default_and_a_call_may_raise_them() -> None:
    app = App(max_form_fields=1)

    @app.post("/survey")
    async def survey(request: Request) -> str:
        return str(len(await request.form(max_fields=5)))

    @app.post("/login")
    async def login(request: Request) -> str:
        return str(len(await request.form()))

    fields = {"a": "1", "b": "2", "c": "3"}
    async with TestClient(app) as client:
        assert (await client.post("/survey", data=fields)).text == "3"
        assert (await client.post("/login", data=fields)).status_code == 400


def test_an_unknown_limit_or_a_bad_value_is_refused_at_registration() -> None:
    app = App()

    async def handler(request: Request) -> str:
        return ""

    with pytest.raises(TypeError, match=r"route '/a': unknown argument 'max_body'.*max_body_size"):
        app.post("/a", max_body=10)(handler)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="max_body_size must be a number"):
        app.add_route("/b", handler, max_body_size=-1)
    with pytest.raises(TypeError, match="max_file_size must be a number"):
        Router().post("/c", max_file_size="1MB")(handler)  # type: ignore[arg-type]
