"""Path converters: how a ``{name:conv}`` parameter matches, converts and prints.

A converter has a ``regex`` (matched against one path segment, or the rest of the path
for ``path``), ``convert(text) -> value`` (raise ``ValueError`` to refuse the text: the
route then does not match) and ``to_string(value) -> text`` for ``url_path_for``.
Register your own with ``app.register_converter(name, converter)``.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Protocol


class Converter(Protocol):
    """Turns one path parameter from text to a value and back."""

    regex: str

    def convert(self, value: str) -> Any:
        """Return the value for the matched text (raise ValueError to refuse it)."""

    def to_string(self, value: Any) -> str:
        """Return the path text for ``value``."""


class StringConverter:
    """One segment of any text (no ``/``)."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        """Return the text as it is."""
        return value

    def to_string(self, value: Any) -> str:
        """Refuse values that would not fit in one segment."""
        text = str(value)
        if not text or "/" in text:
            raise ValueError(f"{text!r} is not a valid path segment")
        return text


class PathConverter:
    """The rest of the path, ``/`` included."""

    regex = ".*"

    def convert(self, value: str) -> str:
        """Return the text as it is."""
        return value

    def to_string(self, value: Any) -> str:
        """Return the value as text."""
        return str(value)


class IntConverter:
    """A non-negative decimal integer."""

    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        """Parse the digits (Python refuses more than 4,300: a 404, not a 500)."""
        return int(value)

    def to_string(self, value: Any) -> str:
        """Format a non-negative integer."""
        number = int(value)
        if number < 0:
            raise ValueError("negative integers cannot be used in a path")
        return str(number)


class FloatConverter:
    """A non-negative decimal number."""

    regex = r"[0-9]+(?:\.[0-9]+)?"

    def convert(self, value: str) -> float:
        """Parse the number."""
        return float(value)

    def to_string(self, value: Any) -> str:
        """Format a finite non-negative number."""
        number = float(value)
        if number < 0 or not math.isfinite(number):
            raise ValueError("only finite non-negative numbers can be used in a path")
        return f"{number:0.20f}".rstrip("0").rstrip(".")


class UUIDConverter:
    """A UUID in its canonical hyphenated form."""

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def convert(self, value: str) -> uuid.UUID:
        """Parse the UUID."""
        return uuid.UUID(value)

    def to_string(self, value: Any) -> str:
        """Format the UUID."""
        return str(uuid.UUID(str(value)))


BUILTIN_CONVERTERS: dict[str, Converter] = {
    "str": StringConverter(),
    "path": PathConverter(),
    "int": IntConverter(),
    "float": FloatConverter(),
    "uuid": UUIDConverter(),
}
