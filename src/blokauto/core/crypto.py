"""Hashing with domain tags, Ed25519 keys (libsodium through PyNaCl) and ``did:key`` identities.

One verification rule everywhere: libsodium's ``crypto_sign_open``, which rejects
non-canonical S, small-order R and keys, and the identity key that OpenSSL and WebCrypto
would accept. Keys are also checked when they are registered (``check_public_key``), so a
weak key can never enter the ledger in the first place.
"""

from __future__ import annotations

import hashlib
import base58
import nacl.bindings
import nacl.exceptions
import nacl.signing

from .errors import InvalidKey

_DID_PREFIX = "did:key:z"
_ED25519_MULTICODEC = b"\xed\x01"

# Domain separation: a hash made for one purpose can never be presented as another.
TAG_TX_ID = b"blokauto/tx/v1\x00"
TAG_TX_SIG = b"blokauto/tx-sig/v1\x00"
TAG_HEADER = b"blokauto/header/v1\x00"
TAG_ATTEST = b"blokauto/attest/v1\x00"
TAG_GENESIS = b"blokauto/genesis/v1\x00"
TAG_STATE_KEY = b"blokauto/state-key/v1\x00"
TAG_STATE_VALUE = b"blokauto/state-value/v1\x00"
TAG_SMT_LEAF = b"blokauto/smt-leaf/v1\x00"
TAG_SMT_NODE = b"blokauto/smt-node/v1\x00"
TAG_HISTORY = b"blokauto/history/v1\x00"

_sha256 = hashlib.sha256
_sign_open = nacl.bindings.crypto_sign_open
_BadSignature = nacl.exceptions.BadSignatureError


def sha256(data: bytes) -> bytes:
    return _sha256(data).digest()


def tagged_hash(tag: bytes, data: bytes) -> bytes:
    """SHA-256 of ``tag || data``; tags end in NUL so no tag is a prefix of another."""
    return _sha256(tag + data).digest()


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature by ``public_key`` over ``message``."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        _sign_open(signature + message, public_key)
    except _BadSignature:
        return False
    return True


def check_public_key(public_key: bytes, did: str = "") -> None:
    """Refuse keys that must never be registered: wrong length, non-canonical, small order.

    libsodium's ``crypto_core_ed25519_is_valid_point`` checks canonical encoding, that the
    point is on the curve and in the main subgroup, and that it is not of small order.
    """
    label = did or public_key.hex()
    if len(public_key) != 32:
        raise InvalidKey(key=label, reason=f"an Ed25519 public key has 32 bytes, not {len(public_key)}")
    if not nacl.bindings.crypto_core_ed25519_is_valid_point(public_key):
        raise InvalidKey(key=label, reason="the key is non-canonical, of small order or not on the curve")


def did_from_public_key(public_key: bytes) -> str:
    return _DID_PREFIX + base58.b58encode(_ED25519_MULTICODEC + public_key).decode("ascii")


_did_cache: dict[str, bytes] = {}


def public_key_from_did(did: str) -> bytes:
    """The 32-byte Ed25519 key of a ``did:key``; raises ``InvalidKey``. Results are cached."""
    key = _did_cache.get(did)
    if key is not None:
        return key
    if not isinstance(did, str) or not did.startswith(_DID_PREFIX):
        raise InvalidKey(key=str(did)[:80], reason="it does not start with did:key:z")
    try:
        raw = base58.b58decode(did[len(_DID_PREFIX):])
    except ValueError:
        raise InvalidKey(key=did[:80], reason="it is not base58btc") from None
    if len(raw) != 34 or raw[:2] != _ED25519_MULTICODEC:
        raise InvalidKey(key=did[:80], reason="it is not an Ed25519 did:key (multicodec 0xed01, 32 bytes)")
    key = raw[2:]
    if did_from_public_key(key) != did:  # base58 has no leading-zero ambiguity, but be exact
        raise InvalidKey(key=did[:80], reason="it is not in canonical base58btc form")
    if len(_did_cache) > 200_000:
        _did_cache.clear()
    _did_cache[did] = key
    return key


def check_did(did: str) -> bytes:
    """Decode ``did`` and apply the registration checks; returns the public key."""
    key = public_key_from_did(did)
    check_public_key(key, did)
    return key


class KeyPair:
    """An Ed25519 signing key and its ``did:key``. The 32-byte seed is the only secret."""

    __slots__ = ("seed", "public_key", "did", "_signing")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed has 32 bytes")
        self._signing = nacl.signing.SigningKey(seed)
        self.seed = seed
        self.public_key = bytes(self._signing.verify_key)
        self.did = did_from_public_key(self.public_key)

    @classmethod
    def generate(cls) -> "KeyPair":
        return cls(nacl.signing.SigningKey.generate().encode())

    @classmethod
    def from_label(cls, label: str) -> "KeyPair":
        """A deterministic key for tests and demos (never for real use)."""
        return cls(sha256(b"blokauto/test-key/" + label.encode()))

    def sign(self, message: bytes) -> bytes:
        return self._signing.sign(message).signature

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyPair) and other.seed == self.seed

    def __hash__(self) -> int:
        return hash(self.did)

    def __repr__(self) -> str:
        return f"KeyPair({self.did})"
