"""Committed events as the SDK yields them, read from a text/event-stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import msgspec


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    height: int
    data: dict[str, Any]


def parse_sse(lines: Iterator[str]) -> Iterator[Event]:
    """Each event of an event stream (its JSON data decoded); comments and keep-alives are skipped."""
    eid = etype = ""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                payload = msgspec.json.decode("\n".join(data))
                yield Event(eid, etype or payload.get("type", ""), payload.get("height", -1), payload)
            eid = etype = ""
            data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "id":
            eid = value
        elif field == "event":
            etype = value
        elif field == "data":
            data.append(value)

