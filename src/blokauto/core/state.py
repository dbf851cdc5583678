"""State access for handlers: layered overlays and typed, prefixed maps.

State is a map of string keys to canonical JSON values. Modules never build keys by hand:
they declare a ``StateMap`` (prefix + value type) or an ``Item`` (one key) once and use it.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Protocol, TypeVar

import msgspec

from .encoding import canonical
from .errors import InvalidKeyPart, ValueOutOfRange

V = TypeVar("V")
_MISSING = object()


class StateReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


class Overlay:
    """Buffered writes over a reader; ``writes`` maps key -> value, or None for a deletion."""

    __slots__ = ("base", "writes")

    def __init__(self, base: StateReader) -> None:
        self.base = base
        self.writes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        v = self.writes.get(key, _MISSING)
        if v is _MISSING:
            return self.base.get(key)
        return v  # type: ignore[return-value]

    def set(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def delete(self, key: bytes) -> None:
        self.writes[key] = None


KeyPart = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern="^[^/]+$",
                                      description="An identifier: 1-200 characters without '/'.")]
"""A string that may name a state map entry (what ``_key_part`` accepts), for messages and queries."""


def _key_part(part: str | int) -> str:
    if isinstance(part, int):
        if part < 0:
            raise InvalidKeyPart(value=part, reason="numbers used as identifiers are non-negative")
        return f"{part:016d}"  # fixed width, so keys sort numerically
    if not part or "/" in part or len(part) > 200:
        raise InvalidKeyPart(value=str(part)[:80], reason="an identifier is 1-200 characters without '/'")
    return part


class StateMap(Generic[V]):
    """A typed map under a prefix: ``VEHICLES = StateMap("veh/v/", Vehicle)``.

    Keys are one or more parts (str without '/', or non-negative int), joined by '/'.
    """

    def __init__(self, prefix: str, value_type: type[V]) -> None:
        if not prefix.endswith("/"):
            raise ValueError("a state map prefix ends with '/'")
        self.prefix = prefix
        self._prefix_b = prefix.encode()
        self.value_type = value_type
        self._decoder = msgspec.json.Decoder(value_type)

    def key(self, *parts: str | int) -> bytes:
        if len(parts) == 1:
            p = parts[0]
            if type(p) is str and p and "/" not in p and len(p) <= 200:
                return self._prefix_b + p.encode()
        return (self.prefix + "/".join(_key_part(p) for p in parts)).encode()

    def get(self, state: StateReader, *parts: str | int) -> V | None:
        raw = state.get(self.key(*parts))
        return None if raw is None else self.decode(raw)

    def has(self, state: StateReader, *parts: str | int) -> bool:
        return state.get(self.key(*parts)) is not None

    def put(self, state: Overlay, value: V, *parts: str | int) -> None:
        key = self.key(*parts)
        state.set(key, _checked(self._decoder, key, value))

    def delete(self, state: Overlay, *parts: str | int) -> None:
        state.delete(self.key(*parts))

    def decode(self, raw: bytes) -> V:
        return self._decoder.decode(raw)


class Item(Generic[V]):
    """A single typed value at a fixed key."""

    def __init__(self, key: str, value_type: type[V], default: Any = None) -> None:
        self.key = key.encode()
        self.value_type = value_type
        self.default = default
        self._decoder = msgspec.json.Decoder(value_type)

    def get(self, state: StateReader) -> V:
        raw = state.get(self.key)
        if raw is None:
            return self.default() if callable(self.default) else self.default
        return self._decoder.decode(raw)

    def put(self, state: Overlay, value: V) -> None:
        state.set(self.key, _checked(self._decoder, self.key, value))


def _checked(decoder: msgspec.json.Decoder, key: bytes, value: object) -> bytes:
    """Canonical bytes of ``value``, refused unless they read back as the declared type (so an
    integer overflowing its range or a float never enters state)."""
    raw = canonical(value)
    try:
        decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise ValueOutOfRange(key=key.decode(errors="replace"), reason=str(exc)) from None
    return raw
