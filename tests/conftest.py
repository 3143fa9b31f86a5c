"""Every async test runs once on asyncio and once on trio; a real Redis for those that need one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from redis_server import RedisServer


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Parametrise anyio's plugin over both event loops."""
    return str(request.param)


def _running_redis(directory: pytest.TempPathFactory, name: str) -> Iterator[RedisServer]:
    # Imported here: only the tests that use Redis need the launcher's imports.
    from redis_server import redis_server_path, running_redis

    if redis_server_path() is None:
        pytest.skip("redis-server is not installed (the nox sessions install it)")
    with running_redis(directory.mktemp(name)) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis for the whole run; each test uses channels of its own."""
    yield from _running_redis(tmp_path_factory, "redis")


@pytest.fixture
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis for one test alone, which it may stop and start again."""
    yield from _running_redis(tmp_path_factory, "own-redis")
