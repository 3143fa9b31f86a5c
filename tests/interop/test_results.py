"""The servers.md table says only what the tests showed."""

from __future__ import annotations

from interop.results import FEATURES, Cell, render_document, render_table


def cell(config: str, column: str, value: str | None, passed: bool | None) -> Cell:
    """A settled cell of the hypercorn row."""
    return Cell("hypercorn", config, column, value, passed, test_id=f"test_x[{config}]")


def test_a_failing_test_shows_as_failing_next_to_what_passed() -> None:
    cells = [
        cell("hypercorn-asyncio", "server push", "no on HTTP/1.1", True),
        cell("hypercorn-asyncio-h2", "server push", "yes on HTTP/2", True),
        cell("hypercorn-trio-h2", "server push", "yes on HTTP/2", False),
    ]
    table = render_table(cells, ("server push",))
    assert table.splitlines()[-1] == (
        "| hypercorn | no on HTTP/1.1; yes on HTTP/2; **fails** (hypercorn-trio-h2) |"
    )


def test_unclaimed_cells_show_a_dash_and_a_passing_claim_defaults_to_yes() -> None:
    table = render_table([cell("hypercorn-asyncio", "HTTP/1.1", None, True)], FEATURES)
    row = table.splitlines()[-1].strip("|").split("|")
    assert [part.strip() for part in row[:3]] == ["hypercorn", "yes", "—"]


def test_the_document_lists_the_failing_tests() -> None:
    document = render_document([cell("hypercorn-trio", "trio", "yes", False)])
    assert "- `test_x[hypercorn-trio]`" in document
    assert "Do not edit" in document
