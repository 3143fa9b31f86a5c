"""Every async test runs once on asyncio and once on trio; a real Redis for those that need one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_server import RedisServer, redis_server_path, running_redis


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Parametrise anyio's plugin over both event loops."""
    return str(request.param)


def _need_redis_server() -> None:
    if redis_server_path() is None:
        pytest.skip("redis-server is not installed (the nox sessions install it)")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis for the whole run; each test uses channels of its own."""
    _need_redis_server()
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis for one test alone, which it may stop and start again."""
    _need_redis_server()
    with running_redis(tmp_path_factory.mktemp("own-redis")) as server:
        yield server
