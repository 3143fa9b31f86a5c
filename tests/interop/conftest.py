"""Fixtures and hooks of the interop suite: servers, TLS files, the results table.

Set ``INTEROP_SERVERS_MD=docs/servers.md`` to have a complete run of the suite write
the table of servers x features from its own results (the nox session does).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Generator
from pathlib import Path

import pytest

from interop.results import Cell, Results, render_document
from interop.servers import REPO_ROOT, Server, ServerConfig, TLSFiles, make_tls_files

RESULTS_KEY = pytest.StashKey[Results]()
CELLS_KEY = pytest.StashKey[list[Cell]]()
PARTIAL_KEY = pytest.StashKey[list[str]]()
INTEROP_DIR = Path(__file__).parent


def _is_interop(item: pytest.Item) -> bool:
    return INTEROP_DIR in Path(item.path).parents


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RESULTS_KEY] = Results()
    config.stash[PARTIAL_KEY] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_interop(item):
            item.add_marker(pytest.mark.interop)


def pytest_deselected(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_interop(item):
            item.config.stash[PARTIAL_KEY].append(item.nodeid)


def _missing_modules(session: pytest.Session) -> list[str]:
    collected = {Path(item.path).name for item in session.items if _is_interop(item)}
    return sorted(p.name for p in INTEROP_DIR.glob("test_*.py") if p.name not in collected)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.failed):
        for cell in item.stash.get(CELLS_KEY, []):
            cell.passed = report.passed
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Server):
                report.sections.append((f"{value.config.name} log (tail)", value.log()[-6000:]))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("INTEROP_SERVERS_MD")
    if not target:
        return
    results = session.config.stash[RESULTS_KEY]
    # Only a whole run may rewrite the table: a partial one would drop what it skipped.
    partial = session.config.stash[PARTIAL_KEY] or _missing_modules(session)
    if partial or session.shouldfail or session.shouldstop:
        warnings.warn(f"partial interop run: {target} left as it was", stacklevel=1)
        return
    path = Path(target)
    if not path.is_absolute():
        path = REPO_ROOT / path
    path.write_text(render_document(results.settled()))


@pytest.fixture(scope="session")
def interop_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where servers write their logs, marks and temporary files."""
    return tmp_path_factory.mktemp("interop")


@pytest.fixture(scope="session")
def tls_files(interop_tmp: Path) -> TLSFiles:
    """One test CA and one certificate for 127.0.0.1 for the whole run."""
    directory = interop_tmp / "tls"
    directory.mkdir()
    return make_tls_files(directory)


CellFactory = Callable[[ServerConfig | str, str], Cell]


@pytest.fixture
def cell(request: pytest.FixtureRequest) -> CellFactory:
    """Claim a cell of docs/servers.md; it shows the value set on it if the test passes."""
    results = request.config.stash[RESULTS_KEY]
    claimed = request.node.stash.setdefault(CELLS_KEY, [])

    def claim(config: ServerConfig | str, column: str) -> Cell:
        family, name = (
            (config.family, config.name) if isinstance(config, ServerConfig) else (config, config)
        )
        new = results.claim(family, name, column, request.node.nodeid)
        claimed.append(new)
        return new

    return claim


def protocol_cell(server: Server, cell: CellFactory) -> list[Cell]:
    """The cells a plain HTTP exchange speaks for: the protocol, workers, trio."""
    config = server.config
    claims = [cell(config, "HTTP/2" if config.http2 else "HTTP/1.1")]
    claims[0].value = "yes (TLS + ALPN)" if config.http2 else "yes"
    if config.workers > 1:
        claims.append(cell(config, "workers"))
        claims[-1].value = f"yes ({config.workers}, lifespan once each)"
    if config.trio:
        claims.append(cell(config, "trio"))
        claims[-1].value = "yes (`-k trio`)"
    return claims
