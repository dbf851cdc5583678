"""The salted commitment to one personal value, shared by the vault (which makes it), the ledger
(which records only it) and whoever checks a disclosure (which recomputes it).

    commitment(subject, field, value, salt) =
        SHA-256(b"blokauto/privacy/commitment/v1\\x00" || canonical JSON of
                {"field": field, "salt": <salt as 64 lowercase hex>, "subject": subject, "value": value})

The value is hashed as given (UTF-8, no normalisation): a disclosure reveals the very string the
vault holds. The salt is 32 random bytes the vault draws per value, so a guessable value (a
postcode, a VIN, a birth date) cannot be found by hashing candidates. The subject and field are
inside the hash, so a commitment cannot be passed off as another person's or another field's.
Deterministic: no clock, no randomness (the vault draws the salt).
"""

from __future__ import annotations

from ...core.crypto import tagged_hash
from ...core.encoding import canonical

TAG_COMMITMENT = b"blokauto/privacy/commitment/v1\x00"
SALT_BYTES = 32


def commitment(subject: str, field: str, value: str, salt: bytes | str) -> str:
    """The commitment (64 lowercase hex) to ``value`` of ``field`` of ``subject`` under ``salt``
    (32 bytes, or their 64 hex digits)."""
    salt_hex = salt.hex() if isinstance(salt, (bytes, bytearray)) else salt
    if len(salt_hex) != 2 * SALT_BYTES or any(c not in "0123456789abcdef" for c in salt_hex):
        raise ValueError(f"a commitment's salt is {SALT_BYTES} bytes (64 lowercase hex digits), not {salt_hex[:80]!r}")
    body = {"field": field, "salt": salt_hex, "subject": subject, "value": value}
    return tagged_hash(TAG_COMMITMENT, canonical(body)).hex()


def opens(digest: str, subject: str, field: str, value: str, salt: bytes | str) -> bool:
    """Whether ``value`` and ``salt`` open the commitment ``digest`` of ``field`` of ``subject``."""
    try:
        return commitment(subject, field, value, salt) == digest
    except ValueError:
        return False
