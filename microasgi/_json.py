"""JSON in and out: orjson when installed, else the standard library, with identical results.

The rule (API.md, "Details"): ``dumps`` gives the same bytes for every value both can
encode, NaN and the infinities as ``null``, integers of any size exactly, dates and times
as ``isoformat()``, UUIDs, enums and dataclasses as orjson writes them; ``loads`` gives
the same values, integers exact, and refuses the same documents (``NaN``, ``Infinity``,
numbers too large for a float, lone surrogates, a byte order mark, anything but UTF-8).

orjson is the fast path; the stdlib path writes what orjson writes (floats under 1e-4
laid out as orjson lays them out: 1e-7, not repr's 1e-07) and takes what orjson refuses
(integers past 64 bits, keys other than str); a document orjson would read differently
(a run of 19 digits or more, perhaps an integer past 64 bits) is read the stdlib way.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import re
import uuid
from typing import Any

__all__ = ["dumps", "loads"]


# --- the standard library path ---------------------------------------------------------


def _default(value: Any) -> Any:
    """What orjson serialises natively, the way orjson does, and dates as ``isoformat()``."""
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # orjson reads __dict__ where there is one (fields with slots), and leaves out
        # the names that start with "_".
        if hasattr(value, "__dict__"):
            fields: dict[str, Any] = vars(value)
        else:
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {name: item for name, item in fields.items() if not name.startswith("_")}
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _key(key: Any) -> Any:
    """A dict key made one the encoder takes, as orjson's ``OPT_NON_STR_KEYS`` does."""
    if isinstance(key, str | int) or key is None:  # bool is an int
        return key
    if isinstance(key, float):
        return key if math.isfinite(key) else "null"
    if isinstance(key, enum.Enum):
        return _key(key.value)
    if isinstance(key, datetime.date | datetime.time):
        return key.isoformat()
    if isinstance(key, uuid.UUID):
        return str(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _plain(value: Any, parents: set[int]) -> Any:
    """``value`` rebuilt from what the encoder takes as is: no NaN, no key it refuses."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str | int) or value is None:
        return value
    if not isinstance(value, dict | list | tuple):
        return _plain(_default(value), parents)
    if id(value) in parents:
        raise ValueError("Circular reference detected")
    parents.add(id(value))
    try:
        if isinstance(value, dict):
            return {_key(key): _plain(item, parents) for key, item in value.items()}
        return [_plain(item, parents) for item in value]
    finally:
        parents.discard(id(value))


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_default
)

# A float under 1e-4 as repr writes it, exponent 5 to 9 (1e-07, 1.5e-05), past any
# string (keys included) of the JSON text.
_SMALL_FLOAT = re.compile(r'("(?:[^"\\]|\\.)*")|(-?\d)(\.\d+)?e-0(\d)')


def _orjson_layout(match: re.Match[str]) -> str:
    """The float ``match`` found, laid out as orjson does: 1e-7, and 0.00001 for 1e-05."""
    string, first, fraction, exponent = match.groups()
    if string is not None:
        return string
    if exponent == "5":
        sign, digit = first[:-1], first[-1]
        return f"{sign}0.0000{digit}{(fraction or '')[1:]}"
    return f"{first}{fraction or ''}e-{exponent}"


def stdlib_dumps(value: Any) -> bytes:
    """Serialise ``value`` to compact UTF-8 JSON with the standard library."""
    try:
        text = _ENCODER.encode(value)
    except (ValueError, TypeError):
        # A NaN or an infinity (null, as orjson writes it), or a key json refuses (a
        # UUID, a date, an enum): rebuild the value without them, then encode it.
        text = _ENCODER.encode(_plain(value, set()))
    if "e-0" in text:
        text = _SMALL_FLOAT.sub(_orjson_layout, text)
    return text.encode("utf-8")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text} does not fit in a float")
    return number


def _has_lone_surrogate(value: Any) -> bool:
    """Tell whether a string in the parsed ``value`` holds half of a surrogate pair."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def stdlib_loads(data: bytes | str) -> Any:
    """Parse JSON with the standard library, refusing what orjson refuses (``ValueError``)."""
    if isinstance(data, str):
        data.encode("utf-8")  # a lone surrogate raises, as in orjson
        text = data
    else:
        # Strict UTF-8: json.loads would guess UTF-16 or -32, skip a byte order mark and
        # let encoded surrogates through.
        text = bytes(data).decode("utf-8")
    value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    # An escaped surrogate (\ud800) decodes to a lone one unless its pair follows.
    if ("\\ud" in text or "\\uD" in text) and _has_lone_surrogate(value):
        raise ValueError("a lone surrogate in a JSON string")
    return value


# --- orjson, where installed -----------------------------------------------------------

# Every digit becomes NUL: a run of NULs is a run of digits, found at C speed.
_DIGITS_AS_NUL = bytes.maketrans(b"0123456789", b"\0" * 10)
# orjson reads an integer literal of 19 digits or more past 64 bits as a float.
_LONG_NUMBER = b"\0" * 19

try:
    import orjson
except ImportError:  # pragma: no cover - exercised in the no-orjson session
    dumps = stdlib_dumps
    loads = stdlib_loads
else:
    # orjson 3.13 writes time(microsecond=10000) as "00:00:00.10000": dates and times
    # go to _default, as in the stdlib path. Keys other than str are refused (a time
    # key would be written the same wrong way), so a dict holding one goes the stdlib way.
    _OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME

    def dumps(value: Any) -> bytes:
        """Serialise ``value`` to compact UTF-8 JSON."""
        try:
            data = orjson.dumps(value, default=_default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            # What orjson refuses and the stdlib may take: keys other than str, integers
            # past 64 bits, nesting past 254 levels. Else the stdlib raises its own error.
            return stdlib_dumps(value)
        return data

    def loads(data: bytes | str) -> Any:
        """Parse JSON (``ValueError`` when it is not JSON)."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if _LONG_NUMBER in raw.translate(_DIGITS_AS_NUL):
            # Maybe an integer past 64 bits (or just a long fraction): the stdlib's are exact.
            return stdlib_loads(raw)
        return orjson.loads(raw)
