"""JSON is the same with or without orjson: the bytes a client gets, the values a handler reads.

Every assertion here holds as written in both gate sessions, ``tests`` (with orjson) and
``tests_stdlib_json`` (without): the expected bytes and values are spelled out, so a
difference between the two paths fails one session or the other. The property tests at
the end compare the two paths directly where orjson is installed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import importlib.util
import math
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from asgi_harness import run as run_asgi
from asgi_harness import websocket_scope
from hypothesis import given, settings
from hypothesis import strategies as st

from microasgi import App, JSONResponse, Request, WebSocket
from microasgi._json import dumps, loads, stdlib_dumps, stdlib_loads
from microasgi.responses import json_dumps
from microasgi.testing import TestClient

pytestmark = pytest.mark.anyio

HAS_ORJSON = importlib.util.find_spec("orjson") is not None


class Color(enum.Enum):
    RED = "red"
    TWO = 2


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: int
    y: float
    _cache: int = 0  # a private field: left out, as orjson does
    label: str = dataclasses.field(default="p", init=False)  # a class default, not in __dict__


@dataclasses.dataclass(slots=True)
class Slotted:
    a: int
    _b: int = 1
    c: str = dataclasses.field(default="c", init=False)


LMT = dt.timezone(dt.timedelta(minutes=19, seconds=32))  # Amsterdam's mean time, before 1937

# A value of every kind, and the one JSON text both paths write for it.
ENCODED = [
    (float("nan"), b"null"),
    ([float("inf"), -float("inf"), 1.5], b"[null,null,1.5]"),
    (2**64, b"18446744073709551616"),
    (-(2**63) - 1, b"-9223372036854775809"),
    (2**200, str(2**200).encode()),
    (1e-7, b"1e-7"),  # orjson's layout under 1e-4, not repr's 1e-07
    (-1.5e-5, b"-0.000015"),
    (1.25e-10, b"1.25e-10"),
    ([1e-5, "1e-05"], b'[0.00001,"1e-05"]'),
    (0.0001, b"0.0001"),
    (1e16, b"1e+16"),
    (-0.0, b"-0.0"),
    ({"p": 1e-300}, b'{"p":1e-300}'),
    (dt.datetime(2024, 5, 6, 7, 8, 9, 10), b'"2024-05-06T07:08:09.000010"'),
    (dt.datetime(2024, 5, 6, tzinfo=dt.timezone.utc), b'"2024-05-06T00:00:00+00:00"'),
    (dt.datetime(1900, 1, 1, tzinfo=LMT), b'"1900-01-01T00:00:00+00:19:32"'),
    (dt.date(1, 1, 1), b'"0001-01-01"'),
    (dt.time(1, 2, 3), b'"01:02:03"'),
    (dt.time(0, 0, 0, 10_000), b'"00:00:00.010000"'),  # orjson 3.13 alone: "00:00:00.10000"
    ({dt.time(0, 0, 0, 12_345): 1}, b'{"00:00:00.012345":1}'),
    (uuid.UUID(int=1), b'"00000000-0000-0000-0000-000000000001"'),
    ([Color.RED, Color.TWO, Level.HIGH], b'["red",2,3]'),
    (Point(1, float("nan")), b'{"x":1,"y":null}'),
    (Slotted(1), b'{"a":1,"c":"c"}'),
    ((1, "é", None, True), '[1,"é",null,true]'.encode()),
    ({1: "a", False: "b", None: "c", 1.5: "d"}, b'{"1":"a","false":"b","null":"c","1.5":"d"}'),
    ({float("nan"): 1}, b'{"null":1}'),
    ({uuid.UUID(int=2): 1}, b'{"00000000-0000-0000-0000-000000000002":1}'),
    ({dt.date(2024, 1, 2): 1, Color.RED: 2, Color.TWO: 3}, b'{"2024-01-02":1,"red":2,"2":3}'),
    ({2**70: 1}, b'{"1180591620717411303424":1}'),
    ("\x00\x1f\x7f\u2028😀", '"\\u0000\\u001f\x7f\u2028😀"'.encode()),
]


@pytest.mark.parametrize(("value", "expected"), ENCODED)
def test_every_kind_of_value_is_encoded_the_one_way(value: Any, expected: bytes) -> None:
    assert dumps(value) == expected
    assert stdlib_dumps(value) == expected
    assert json_dumps(value) == expected  # the name user code imports from responses


async def test_a_handler_returning_nan_and_big_integers_gets_valid_json() -> None:
    app = App()

    @app.get("/stats")
    async def stats(request: Request) -> dict[str, Any]:
        return {"mean": float("nan"), "max": float("inf"), "total": 2**64, "tiny": 1e-7}

    @app.get("/response")
    async def response(request: Request) -> JSONResponse:
        return JSONResponse([-(2**63) - 1, Point(1, 2.0)])

    async with TestClient(app) as client:
        stats_response = await client.get("/stats")
        response_response = await client.get("/response")
    assert stats_response.status_code == 200
    assert (
        stats_response.content
        == b'{"mean":null,"max":null,"total":18446744073709551616,"tiny":1e-7}'
    )
    assert stats_response.json()["total"] == 2**64
    assert response_response.content == b'[-9223372036854775809,{"x":1,"y":2.0}]'


@pytest.fixture
def echo() -> App:
    """An app answering with the repr of what request.json() gave (types included)."""
    app = App()

    @app.post("/json")
    async def read(request: Request) -> str:
        return repr(await request.json())

    return app


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b"18446744073709551616", 2**64),
        (b"-9223372036854775809", -(2**63) - 1),
        (b'{"id": 123456789012345678901234567890}', {"id": 123456789012345678901234567890}),
        (b"[18446744073709551615, -9223372036854775808]", [2**64 - 1, -(2**63)]),
        (b"0.0011428193144282783", 0.0011428193144282783),  # a long fraction stays a float
        (b"1e-400", 0.0),
        (b"-0", 0),
        ('"\\ud83d\\ude00 é"'.encode(), "😀 é"),
    ],
)
async def test_request_json_gives_exact_values(echo: App, body: bytes, value: Any) -> None:
    async with TestClient(echo) as client:
        response = await client.post("/json", content=body)
    assert response.status_code == 200
    assert response.text == repr(value)


@pytest.mark.parametrize(
    "body",
    [
        b"NaN",
        b"[Infinity]",
        b'{"a": -Infinity}',
        b"1e400",  # a number no float holds
        b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
        '{"a": 1}'.encode("utf-16"),
        b"1\x00",  # UTF-16 without a mark
        b'"\\ud800"',  # half a surrogate pair
        b'["\\udc00\\ud800"]',
        b'{"\\ud800": 1}',
        b'"\xed\xa0\x80"',  # a surrogate encoded as if it were UTF-8
        b'"\xff"',
    ],
)
async def test_request_json_refuses_what_is_not_json(echo: App, body: bytes) -> None:
    async with TestClient(echo) as client:
        response = await client.post("/json", content=body)
    assert (response.status_code, response.text) == (400, "invalid JSON body")


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", "1e400", '"\\ud800"'])
async def test_websocket_receive_json_closes_1007_on_what_is_not_json(text: str) -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_json()

    script = [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": text}]
    sent = await run_asgi(app, websocket_scope(), script)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1]["code"] == 1007


async def test_websocket_json_has_the_same_rules() -> None:
    app = App()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        number = await websocket.receive_json()
        await websocket.send_json({"got": number, "nan": float("nan")})

    async with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        await ws.send_text("18446744073709551616")
        message = await ws.receive()
    assert message["text"] == '{"got":18446744073709551616,"nan":null}'


def test_a_value_neither_path_encodes_is_a_type_error() -> None:
    for value in ({1, 2}, b"bytes", object(), {(1, 2): "tuple key"}):
        with pytest.raises(TypeError):
            dumps(value)
        with pytest.raises(TypeError):
            stdlib_dumps(value)
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises((ValueError, TypeError)):
        dumps(cycle)


# --- the two paths against each other --------------------------------------------------

keys = st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.none(), st.floats())
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**70).map(lambda n: n * (1 if n % 2 else -1)),
    st.floats(),
    st.text(max_size=10),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.dates(),
    st.times(),
    st.uuids(),
    st.sampled_from([Color.RED, Color.TWO, Level.HIGH]),
    st.builds(Point, st.integers(), st.floats()),
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(keys, children, max_size=4)
        | st.tuples(children, children)
    ),
    max_leaves=20,
)

# The comparison needs both sides: the gate's stdlib session deselects it (-m "not orjson"),
# and a local run without orjson skips it, saying so.
_without_orjson = pytest.mark.skipif(not HAS_ORJSON, reason="orjson is not installed")


def needs_orjson(test: Callable[..., None]) -> Callable[..., None]:
    """Mark a test that compares orjson with the stdlib."""
    return pytest.mark.orjson(_without_orjson(test))


@needs_orjson
@settings(max_examples=300, deadline=None, database=None)
@given(values)
def test_orjson_and_the_stdlib_write_the_same_bytes(value: Any) -> None:
    try:
        expected = stdlib_dumps(value)
    except (TypeError, ValueError) as exc:  # a key both refuse, for instance
        with pytest.raises(type(exc)):
            dumps(value)
        return
    assert dumps(value) == expected


documents = st.one_of(
    values.map(lambda v: stdlib_dumps(v)),
    st.binary(max_size=30),
    st.text(alphabet='0123456789-+.eE[]{},:" \\ud8ac\x00NaIfinty', max_size=30).map(str.encode),
)


@needs_orjson
@settings(max_examples=300, deadline=None, database=None)
@given(documents)
def test_orjson_and_the_stdlib_read_the_same_values(document: bytes) -> None:
    try:
        expected = stdlib_loads(document)
    except (ValueError, RecursionError):
        with pytest.raises((ValueError, RecursionError)):
            loads(document)
        return
    got = loads(document)
    assert repr(got) == repr(expected)  # repr: NaN never appears, -0.0 and 0 differ
    assert not _has_nan(got)


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(map(_has_nan, value.values()))
    if isinstance(value, list):
        return any(map(_has_nan, value))
    return False
