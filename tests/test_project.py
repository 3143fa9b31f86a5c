"""The project's promises about itself: the README's commands and what CI runs agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from microasgi.testing import TestClient

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.anyio


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text)


def test_readme_opens_with_the_serve_and_test_commands() -> None:
    serve, gate = readme_commands()[:2]
    assert "python -m microasgi examples.showcase:app" in serve
    assert "nox" in gate


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    gate = readme_commands()[1]
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in script if line and not line.startswith(("#", "set ", "cd "))]
    assert commands == [gate]


async def test_hello_example() -> None:
    from examples.hello import app

    async with TestClient(app) as client:
        assert (await client.get("/")).text == "Hello, world!"
        assert (await client.get("/users/3")).json() == {"id": 3}
