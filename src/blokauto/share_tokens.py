"""Share a vehicle's report like a link: a token its holder signs, valid for one VIN until it expires.

    token = base64url(canonical JSON of the grant) "." base64url(Ed25519 signature)
    grant = {"v": 1, "chain": CHAIN, "vin": VIN, "holder": DID, "expires": MS, "nonce": HEX}
    signed bytes = tagged_hash("blokauto/share/1", canonical grant)

A node serves ``/reports/VIN?share=TOKEN`` (and the JSON and PDF forms) to anyone holding the token
while it has not expired (the node's clock), names this chain and that VIN, and its signer still
holds the vehicle's title (a key, or a member key of a holding organisation): a sale voids every
token its former holder made. The buyer verifies the report offline as any other.
"""

from __future__ import annotations

import base64
import binascii
import os
import time

import msgspec

from .core.crypto import KeyPair, check_did, tagged_hash, verify_signature
from .core.encoding import canonical
from .core.errors import AuthError

TAG = b"blokauto/share/1\x00"
MAX_TTL_MS = 90 * 86_400_000  # a token lives at most 90 days
MAX_TOKEN_CHARS = 2_048


class ShareGrant(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    v: int
    chain: str
    vin: str
    holder: str
    expires: int
    nonce: str
    claims: bool = False  # the holder lets the report show the vehicle's insurance claims


class ShareRefused(AuthError):
    """A share token that does not open this report (401: the link is not valid)."""

    code = "share_token_invalid"
    template = "This share link does not open the report ({reason}). Ask the vehicle's holder for a new link."


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(holder: KeyPair, chain: str, vin: str, ttl_ms: int, *, now_ms: int | None = None,
               claims: bool = False) -> str:
    """A token for ``vin``'s report signed by ``holder``, valid ``ttl_ms`` from now (at most 90 days);
    with ``claims`` the report it opens also shows the vehicle's insurance claims."""
    if not 0 < ttl_ms <= MAX_TTL_MS:
        raise ValueError(f"a share link lasts from 1 ms to {MAX_TTL_MS // 86_400_000} days")
    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    grant = ShareGrant(1, chain, vin, holder.did, now + ttl_ms, os.urandom(8).hex(), claims)
    body = canonical(grant)
    return _b64(body) + "." + _b64(holder.sign(tagged_hash(TAG, body)))


def read_token(token: str, *, chain: str, vin: str, now_ms: int) -> ShareGrant:
    """The grant in ``token`` if it is well formed, signed by its holder key, for this chain and VIN
    and not expired; else ``ShareRefused`` saying why. Whether the signer still holds the title is
    the caller's check (it needs the ledger)."""
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise ShareRefused(reason="it is not a share token")
    body_b64, sig_b64 = token.split(".")
    try:
        body, sig = _unb64(body_b64), _unb64(sig_b64)
        grant = msgspec.json.decode(body, type=ShareGrant)
        public = check_did(grant.holder)
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError, Exception) as exc:
        raise ShareRefused(reason=f"it is not a share token: {str(exc)[:120]}") from None
    if canonical(grant) != body or len(sig) != 64 or not verify_signature(public, sig, tagged_hash(TAG, body)):
        raise ShareRefused(reason="its signature does not hold")
    if grant.chain != chain:
        raise ShareRefused(reason=f"it was made for chain {grant.chain[:60]!r}, not this one")
    if grant.vin != vin:
        raise ShareRefused(reason=f"it opens the report of {grant.vin[:40]}, not {vin[:40]}")
    if grant.expires <= now_ms:
        raise ShareRefused(reason="it has expired")
    if grant.expires > now_ms + MAX_TTL_MS + 60_000:
        raise ShareRefused(reason="it claims to last longer than a share link may (90 days)")
    return grant
