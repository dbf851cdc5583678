"""Issue and verify VC Data Model 1.1 credentials with one ``Ed25519Signature2020`` proof.

The proof (W3C CCG Data Integrity EdDSA 2020 suite, as jsonld-signatures and DIDKit implement it):

1. proof options = the proof without ``proofValue``, with the credential's ``@context``;
2. signed bytes = SHA-256(canonical(proof options)) || SHA-256(canonical(credential without proof)),
   canonical being URDNA2015 N-Quads;
3. ``proofValue`` = ``z`` + base58btc(Ed25519 signature over those 64 bytes);
4. ``verificationMethod`` = ``did:key:z6Mk…#z6Mk…`` of the issuer, ``proofPurpose`` = ``assertionMethod``.

A verifier resolves nothing: the key is the issuer's ``did:key`` itself, and the verification
method must be that key's own fragment, so a proof by any other key is refused before any
canonicalization.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Collection, TypeVar

import base58
import msgspec

from ..core.crypto import KeyPair, check_public_key, public_key_from_did, sha256, verify_signature
from ..core.errors import InvalidKey
from . import _document
from ._errors import CredentialInvalid, CredentialNotAccepted
from ._jsonld import CREDENTIALS_V1, ED25519_2020_V1, canonicalize

PROOF_TYPE = "Ed25519Signature2020"
PROOF_PURPOSE = "assertionMethod"

T = TypeVar("T")

# xsd:dateTime with a time zone (a credential's times are instants; a time without a zone is not one).
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


@dataclass(frozen=True)
class Verified:
    """A credential whose proof holds. ``subject`` is as received: check its shape with ``subject_as``."""

    issuer: str  #: the issuer's did:key, whose key made the proof
    types: tuple[str, ...]  #: the credential's ``type`` (``VerifiableCredential`` first)
    subject: dict[str, Any]  #: ``credentialSubject``
    issued: str  #: ``issuanceDate``
    expires: str | None  #: ``expirationDate``, if any
    created: str  #: the proof's ``created``
    credential: dict[str, Any]  #: the whole document, proof included

    def subject_as(self, model: type[T]) -> T:
        """The subject as ``model`` (a msgspec Struct or any type msgspec converts to), or refused.

        JSON-LD signs a graph, not JSON text: ``"x"`` and ``["x"]`` are the same statement, and an
        array without ``@list`` is a set in any order. Reading the subject through a typed model
        refuses a shape the caller does not expect."""
        try:
            return msgspec.convert(self.subject, model)
        except msgspec.ValidationError as e:
            name = getattr(model, "__name__", model)
            raise CredentialNotAccepted(reason=f"its subject is not a {name}: {e}") from None


def verification_method(did: str) -> str:
    """The verification method of a ``did:key``: the DID with its own key as fragment."""
    return f"{did}#{did.removeprefix('did:key:')}"


def issue(credential: dict[str, Any], key: KeyPair, *, created: str) -> dict[str, Any]:
    """``credential`` signed by ``key``, as a new document (the argument is not changed).

    ``@context`` must start with the VC 1.1 context; the Ed25519Signature2020 context is added
    after it if absent. ``issuer`` is set to the key's did:key if absent (and must be it if
    present); ``issuanceDate`` is set to ``created`` if absent. ``created`` is the caller's
    ISO-8601 UTC time (``2026-03-01T12:00:00Z``): nothing here reads a clock."""
    _document.check(credential)
    if not isinstance(created, str) or not _UTC.match(created) or not _instant(created):
        raise CredentialInvalid(reason=f"created is {created!r}, not an ISO-8601 UTC time such as "
                                       f"2026-03-01T12:00:00Z")
    if "proof" in credential:
        raise CredentialInvalid(reason="it already carries a proof; issue the credential without one")
    document = copy.deepcopy(credential)
    contexts = document.get("@context")
    if isinstance(contexts, list) and contexts[:1] == [CREDENTIALS_V1] and ED25519_2020_V1 not in contexts:
        document["@context"] = [CREDENTIALS_V1, ED25519_2020_V1, *contexts[1:]]
    document.setdefault("issuer", key.did)
    if _issuer_id(document) != key.did:
        raise CredentialInvalid(reason=f"its issuer is {_issuer_id(document)!r} but it is signed by {key.did}; "
                                       f"leave issuer out or set it to the signing key's did:key")
    document.setdefault("issuanceDate", created)
    _check_structure(document)
    proof = {"type": PROOF_TYPE, "created": created, "verificationMethod": verification_method(key.did),
             "proofPurpose": PROOF_PURPOSE}
    signature = key.sign(_signed_bytes(document, proof))
    document["proof"] = {**proof, "proofValue": "z" + base58.b58encode(signature).decode("ascii")}
    _document.check(document)  # what we issue, we must accept: still within the bounds with its proof
    return document


def verify(credential: dict[str, Any] | str | bytes, *, context: dict[str, Any] | None = None,
           issuers: Collection[str] | None = None, type: str | None = None, at: str | None = None) -> Verified:
    """Check the proof of ``credential`` and what the caller expects of it; raise if either fails.

    ``credential`` is a parsed document or JSON text (bounded before it is parsed). The proof is
    checked first (``CredentialInvalid``); then, for each argument given (``CredentialNotAccepted``):

    - ``context``: the domain context the caller reads the subject with. The proof covers the
      RDF graph, not the JSON key names: someone may rename terms in an inline context and the
      proof still holds, so a caller that reads fields by name passes the context it knows;
      ``@context`` must then be exactly ``[CREDENTIALS_V1, ED25519_2020_V1, context]``;
    - ``issuers``: the did:keys whose credentials the caller accepts;
    - ``type``: a type the credential must have (``BatteryPassportCredential``);
    - ``at``: an ISO-8601 time (the caller's clock) within ``issuanceDate`` .. ``expirationDate``.
    """
    if isinstance(credential, (str, bytes)):
        document = _document.parse(credential)
    else:
        document = credential
        _document.check(document)
    proof = document.get("proof")
    if isinstance(proof, list):
        raise CredentialInvalid(reason=f"it carries {len(proof)} proofs; this verifier checks exactly one")
    if not isinstance(proof, dict):
        raise CredentialInvalid(reason="it has no proof object; it was not issued with a Data Integrity proof")
    body = {k: v for k, v in document.items() if k != "proof"}
    _check_structure(body)
    issuer = _issuer_id(body)
    try:
        public_key = public_key_from_did(issuer)
        check_public_key(public_key, issuer)
    except InvalidKey as e:
        raise CredentialInvalid(reason=f"its issuer is not an Ed25519 did:key ({e.detail['reason']})") from None
    signature = _check_proof(proof, issuer)
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    if not verify_signature(public_key, signature, _signed_bytes(body, options)):
        raise CredentialInvalid(reason=f"its proofValue is not {issuer}'s signature over this credential and "
                                       f"proof: it was changed after it was signed, or signed by another key")
    types = body["type"] if isinstance(body["type"], list) else [body["type"]]
    subject = body["credentialSubject"]
    verified = Verified(issuer=issuer, types=tuple(types), subject=subject[0] if isinstance(subject, list) else subject,
                        issued=body["issuanceDate"], expires=body.get("expirationDate"), created=proof["created"],
                        credential=document)
    _check_expected(verified, body, context, issuers, type, at)
    return verified


def _signed_bytes(body: dict[str, Any], proof_options: dict[str, Any]) -> bytes:
    config = {"@context": body["@context"], **proof_options}
    return sha256(canonicalize(config)) + sha256(canonicalize(body))


def _issuer_id(document: dict[str, Any]) -> Any:
    issuer = document.get("issuer")
    return issuer.get("id") if isinstance(issuer, dict) else issuer


def _check_structure(document: dict[str, Any]) -> None:
    """The VC 1.1 shape this library issues and reads; JSON-LD validity is checked by canonicalizing."""
    contexts = document.get("@context")
    if not isinstance(contexts, list) or contexts[:1] != [CREDENTIALS_V1]:
        raise CredentialInvalid(reason=f"its @context is not a list starting with {CREDENTIALS_V1}")
    if ED25519_2020_V1 not in contexts:
        raise CredentialInvalid(reason=f"its @context does not name {ED25519_2020_V1}, which defines the proof")
    for ctx in contexts[1:]:
        if isinstance(ctx, str) and ctx != ED25519_2020_V1:
            raise CredentialInvalid(reason=f"its @context names {ctx[:100]!r}; only {CREDENTIALS_V1} and "
                                           f"{ED25519_2020_V1} may be named by URL (nothing is fetched), put "
                                           f"domain terms in an inline context object")
        if not isinstance(ctx, (str, dict)):
            raise CredentialInvalid(reason="its @context holds an entry that is neither a URL nor an object")
    types = document.get("type")
    if not (types == "VerifiableCredential" or isinstance(types, list) and "VerifiableCredential" in types
            and all(isinstance(t, str) for t in types)):
        raise CredentialInvalid(reason="its type does not include VerifiableCredential")
    issuer = _issuer_id(document)
    if not isinstance(issuer, str) or not issuer.startswith("did:key:"):
        raise CredentialInvalid(reason=f"its issuer is {str(issuer)[:100]!r}, not a did:key")
    subject = document.get("credentialSubject")
    if isinstance(subject, list) and len(subject) == 1:
        subject = subject[0]
    if not isinstance(subject, dict) or not subject:
        raise CredentialInvalid(reason="its credentialSubject is not one non-empty object")
    for name in ("issuanceDate", "expirationDate"):
        value = document.get(name)
        if (name == "issuanceDate" or value is not None) and not _instant(value):
            raise CredentialInvalid(reason=f"its {name} is {str(value)[:60]!r}, not an ISO-8601 time with a zone "
                                           f"such as 2026-03-01T12:00:00Z")


def _check_proof(proof: dict[str, Any], issuer: str) -> bytes:
    """The proof's fixed fields, before anything is canonicalized; returns the signature."""
    if proof.get("type") != PROOF_TYPE:
        raise CredentialInvalid(reason=f"its proof type is {str(proof.get('type'))[:60]!r}; this verifier checks "
                                       f"{PROOF_TYPE} proofs only")
    if proof.get("proofPurpose") != PROOF_PURPOSE:
        raise CredentialInvalid(reason=f"its proofPurpose is {str(proof.get('proofPurpose'))[:60]!r}, not "
                                       f"{PROOF_PURPOSE}")
    method = proof.get("verificationMethod")
    if method != verification_method(issuer):
        raise CredentialInvalid(reason=f"its proof's verificationMethod {str(method)[:120]!r} is not the issuer's "
                                       f"key {verification_method(issuer)}; a credential is signed by its issuer")
    if not _instant(proof.get("created")):
        raise CredentialInvalid(reason=f"its proof's created is {str(proof.get('created'))[:60]!r}, not an "
                                       f"ISO-8601 time with a zone")
    value = proof.get("proofValue")
    try:
        signature = base58.b58decode(value[1:]) if isinstance(value, str) and value.startswith("z") else b""
    except ValueError:
        signature = b""
    if len(signature) != 64 or "z" + base58.b58encode(signature).decode("ascii") != value:
        raise CredentialInvalid(reason="its proofValue is not a multibase base58btc (z...) Ed25519 signature of "
                                       "64 bytes")
    return signature


def _check_expected(verified: Verified, body: dict[str, Any], context: dict[str, Any] | None,
                    issuers: Collection[str] | None, type: str | None, at: str | None) -> None:
    if context is not None and body["@context"] != [CREDENTIALS_V1, ED25519_2020_V1, context]:
        raise CredentialNotAccepted(reason="its @context is not the one this reader expects: the terms of its "
                                           "subject may mean something else than their names say")
    if issuers is not None and verified.issuer not in issuers:
        raise CredentialNotAccepted(reason=f"its issuer {verified.issuer} is not one this reader trusts")
    if type is not None and type not in verified.types:
        raise CredentialNotAccepted(reason=f"it is not a {type} (its types: {', '.join(verified.types)[:200]})")
    if at is not None:
        now = _instant(at)
        if now is None:
            raise ValueError(f"at is {at!r}, not an ISO-8601 time with a zone")
        if now < _instant(verified.issued):
            raise CredentialNotAccepted(reason=f"it becomes valid at {verified.issued}, later than {at}")
        if verified.expires is not None and now >= _instant(verified.expires):
            raise CredentialNotAccepted(reason=f"it expired at {verified.expires}, before {at}")


def _instant(value: Any) -> datetime | None:
    """The aware datetime of an ISO-8601 time with a zone, or None."""
    if not isinstance(value, str) or not _DATETIME.match(value):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:  # month 13, hour 25, ...
        return None
