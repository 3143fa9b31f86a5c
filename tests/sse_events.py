"""Read an event stream as a browser's ``EventSource`` does (the HTML standard's parsing).

The tests read what microasgi sends with this, in process and from real servers, so
they assert what a browser would dispatch, not the bytes microasgi happens to choose.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    """One dispatched event, as ``MessageEvent`` shows it to a page."""

    data: str
    type: str = "message"
    last_event_id: str = ""


@dataclass
class EventStreamParser:
    """Feed it the stream's bytes in any pieces; it returns the events each piece ends."""

    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    last_event_id: str = ""
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace")
    )
    _pending: str = ""
    _started: bool = False
    _data: list[str] = field(default_factory=list)
    _type: str = ""
    _id: str | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        """The events dispatched by the complete lines so far."""
        text = self._pending + self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        events: list[Event] = []
        start = 0
        while True:
            ends = [i for i in (text.find("\r", start), text.find("\n", start)) if i >= 0]
            if not ends:
                break
            end = min(ends)
            if text[end] == "\r" and end + 1 == len(text):
                break  # a CR at the end may be the first half of a CRLF: wait for more
            line = text[start:end]
            start = end + (2 if text.startswith("\r\n", end) else 1)
            event = self._line(line)
            if event is not None:
                events.append(event)
        self._pending = text[start:]
        return events

    def _line(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:].removeprefix(" "))
            return None
        name, colon, value = line.partition(":")
        value = value.removeprefix(" ") if colon else ""
        if name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        if self._id is not None:
            self.last_event_id, self._id = self._id, None
        data, kind = self._data, self._type or "message"
        self._data, self._type = [], ""
        if not data:
            return None
        return Event("\n".join(data), kind, self.last_event_id)


def parse(stream: bytes) -> list[Event]:
    """Every event a whole stream dispatches."""
    return EventStreamParser().feed(stream)
