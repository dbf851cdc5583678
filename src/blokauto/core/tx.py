"""Transactions: a body (chain, sender, message, nonce, expiry) plus one signature per signer.

The id is H(TAG_TX_ID || canonical(body)); each signer signs H-domain-tagged id bytes
(TAG_TX_SIG || id). The sender is named inside the body so nobody can reorder signatures to
change who sent a transaction. ``check_stateless`` is everything that can be checked without
the ledger's state; it runs in worker processes before ordering and again before execution.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Generic, TypeVar

import msgspec

from . import crypto
from .encoding import Hex64, Uint, canonical
from .errors import (
    BadSignature,
    DuplicateSigner,
    ExpiryTooFar,
    InvalidKey,
    MalformedTx,
    MissingSignature,
    TxExpired,
    TxTooLarge,
    UnknownMessage,
    WrongChain,
)

M = TypeVar("M")

Nonce = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$", description="16 random bytes, hex")]


# Transactions, messages, receipts and headers are frozen, acyclic data: ``gc=False`` keeps the
# thousands a node decodes every second out of the cycle collector's generations.
class Message(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, frozen=True, kw_only=True, gc=False):
    """Base of every transaction message. Subclasses set ``tag="module.message_name"``."""


class Signature(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    signer: str
    sig: Hex64


class TxBody(msgspec.Struct, Generic[M], forbid_unknown_fields=True, frozen=True, gc=False):
    chain: str
    sender: str
    msg: M
    nonce: Nonce
    expires: Uint


class Tx(msgspec.Struct, Generic[M], forbid_unknown_fields=True, frozen=True, gc=False):
    body: TxBody[M]
    sigs: list[Signature]


class _RawTx(msgspec.Struct, forbid_unknown_fields=True):
    body: "_RawBody"
    sigs: list[Signature]


class _RawBody(msgspec.Struct, forbid_unknown_fields=True):
    chain: str
    sender: str
    msg: msgspec.Raw
    nonce: str
    expires: int


class _MsgType(msgspec.Struct):
    type: str


def tx_id(body: TxBody[Any]) -> bytes:
    return crypto.tagged_hash(crypto.TAG_TX_ID, canonical(body))


def signing_bytes(txid: bytes) -> bytes:
    return crypto.TAG_TX_SIG + txid


class CheckedTx(msgspec.Struct, frozen=True, gc=False):
    """A transaction that passed the stateless checks, with its id and canonical bytes."""

    tx: Tx[Any]
    id: bytes
    raw: bytes


class TxCodec:
    """Decodes transactions for one set of message types (built by the module registry)."""

    def __init__(self, message_types: dict[str, type[Message]],
                 new_keys: dict[str, "Callable[[Any], list[str]]"] | None = None) -> None:
        self.message_types = message_types
        self.new_keys = new_keys or {}  # message type -> the keys it would register
        union: Any = tuple(message_types.values())
        msg_type = union[0] if len(union) == 1 else __import__("typing").Union[union]
        self.tx_type = Tx[msg_type]  # type: ignore[valid-type]
        self._decoder = msgspec.json.Decoder(self.tx_type)
        self._raw_decoder = msgspec.json.Decoder(_RawTx)

    def decode(self, raw: bytes) -> Tx[Any]:
        """Decode and type-check a transaction; raises ``MalformedTx``/``UnknownMessage``."""
        try:
            return self._decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise self._diagnose(raw, exc) from None
        except RecursionError:
            raise MalformedTx(reason="the JSON is nested too deeply") from None

    def _diagnose(self, raw: bytes, exc: Exception) -> Exception:
        try:
            shell = self._raw_decoder.decode(raw)
            kind = msgspec.json.decode(shell.body.msg, type=_MsgType).type
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return MalformedTx(reason=str(exc))
        if kind not in self.message_types:
            return UnknownMessage(type=kind)
        return MalformedTx(reason=str(exc))


def encode_tx(tx: Tx[Any]) -> bytes:
    return canonical(tx)


def check_stateless(
    raw: bytes,
    codec: TxCodec,
    *,
    chain: str,
    max_bytes: int,
    now_ms: int | None = None,
    max_ttl_ms: int | None = None,
) -> CheckedTx:
    """Every check that needs no ledger state. Raises a ``RequestError`` subclass.

    ``now_ms`` is given at ingress (wall clock, node side) and omitted when re-checking a block
    (expiry is then judged against the block time by the state transition).
    """
    if len(raw) > max_bytes:
        raise TxTooLarge(size=len(raw), limit=max_bytes)
    tx = codec.decode(raw)
    body = tx.body
    if body.chain != chain:
        raise WrongChain(got=body.chain, expected=chain)
    if now_ms is not None:
        if body.expires < now_ms:
            raise TxExpired(expires=body.expires, now=now_ms)
        if max_ttl_ms is not None and body.expires - now_ms > max_ttl_ms:
            raise ExpiryTooFar(ttl_ms=body.expires - now_ms, max_ttl_ms=max_ttl_ms)
    body_bytes = canonical(body)
    txid = crypto.tagged_hash(crypto.TAG_TX_ID, body_bytes)
    verify_signatures(tx, txid)
    registers = codec.new_keys.get(body.msg.__struct_config__.tag)
    if registers is not None:
        for did in registers(body.msg):  # keys entering the ledger: canonical, prime order, not small
            crypto.check_did(did)
    canon = b'{"body":' + body_bytes + b',"sigs":' + canonical(tx.sigs) + b"}"
    return CheckedTx(tx, txid, canon)


def verify_signatures(tx: Tx[Any], txid: bytes) -> None:
    """Every signature verifies over the id, no key signs twice, and the sender signed."""
    message = crypto.TAG_TX_SIG + txid

    def bad(signer: str) -> BadSignature:
        return BadSignature(signer=signer, tx_id=txid.hex(), canonical_body=canonical(tx.body).decode()[:4096])

    seen: set[str] = set()
    for s in tx.sigs:
        if s.signer in seen:
            raise DuplicateSigner(signer=s.signer)
        seen.add(s.signer)
        try:
            key = crypto.public_key_from_did(s.signer)
        except InvalidKey:
            raise bad(s.signer[:80]) from None
        if not crypto.verify_signature(key, bytes.fromhex(s.sig), message):
            raise bad(s.signer)
    if tx.body.sender not in seen:
        raise MissingSignature(sender=tx.body.sender)


def make_body(chain: str, sender: str, msg: Message, *, nonce: str, expires: int) -> TxBody[Any]:
    return TxBody(chain=chain, sender=sender, msg=msg, nonce=nonce, expires=expires)


def sign(body: TxBody[Any], *keys: crypto.KeyPair, existing: list[Signature] | None = None) -> Tx[Any]:
    """Return ``body`` signed by ``keys`` (added to ``existing`` signatures, if any)."""
    txid = tx_id(body)
    sigs = list(existing or [])
    have = {s.signer for s in sigs}
    for k in keys:
        if k.did not in have:
            sigs.append(Signature(k.did, k.sign(signing_bytes(txid)).hex()))
            have.add(k.did)
    return Tx(body=body, sigs=sigs)
