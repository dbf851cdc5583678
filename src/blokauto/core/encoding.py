"""Canonical JSON: the one byte form of everything that is hashed or signed.

Keys sorted, no whitespace, UTF-8. msgspec Structs encode with their fields sorted, so the
Struct a handler uses is also its canonical form.

The rule that hashed data holds only integers within JavaScript's safe range (so a browser reads
the same numbers) is enforced where values enter, not by ``canonical`` itself (which encodes what
it is given, fast): messages decode into types such as ``Uint``; every state value is read back
with its declared type before it is written (``core.state``), so a value out of range fails the
transaction instead of entering the ledger; and an architecture test bans floats in ``core`` and
``modules``.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec

T = TypeVar("T")

#: Largest integer a JavaScript number holds exactly; every hashed integer stays within it.
MAX_SAFE_INT = 2**53 - 1

Uint = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]
"""A non-negative integer a browser can read exactly (amounts, heights, milliseconds)."""

Hex32 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
"""A 32-byte value (a hash) as 64 lowercase hex digits."""

Hex64 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{128}$")]
"""A 64-byte value (a signature) as 128 lowercase hex digits."""

_encoder = msgspec.json.Encoder(order="sorted")
_decoders: dict[Any, msgspec.json.Decoder] = {}


def canonical(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON bytes."""
    return _encoder.encode(value)


def decoder(type_: type[T]) -> msgspec.json.Decoder[T]:
    """A cached strict JSON decoder for ``type_``."""
    dec = _decoders.get(type_)
    if dec is None:
        dec = _decoders[type_] = msgspec.json.Decoder(type_)
    return dec


def decode(data: bytes | str, type_: type[T]) -> T:
    """Decode JSON into ``type_``; raises ``msgspec.ValidationError``/``DecodeError``."""
    return decoder(type_).decode(data)


def to_builtins(value: Any) -> Any:
    """Plain dicts/lists/ints/strs for ``value`` (for display and the API)."""
    return msgspec.to_builtins(value, order="sorted")


def convert(value: Any, type_: type[T]) -> T:
    """Validate plain data (from a CLI flag or a dict) into ``type_``."""
    return msgspec.convert(value, type_)
