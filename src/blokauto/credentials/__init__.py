"""W3C Verifiable Credentials (VC Data Model 1.1) signed with ``Ed25519Signature2020``: the way a
blokauto fact leaves the ledger as a document any VC wallet or verifier can check (a battery
passport today; the vehicle history report and identity documents next).

    from blokauto.credentials import CREDENTIALS_V1, domain_context, issue, verify

    BATTERY = domain_context("https://blokauto.dev/vocab/battery#", ["chemistry", "capacityWh"],
                             types=["BatteryPassportCredential"], json_terms=["ledgerProof"])
    vc = issue({"@context": [CREDENTIALS_V1, BATTERY],
                "type": ["VerifiableCredential", "BatteryPassportCredential"],
                "credentialSubject": {"id": "urn:blokauto:battery:B-1", "chemistry": "NMC811", ...}},
               maker_key, created="2026-03-01T12:00:00Z")
    ok = verify(vc, context=BATTERY, issuers={maker_key.did}, type="BatteryPassportCredential",
                at="2026-03-02T00:00:00Z")
    passport = ok.subject_as(BatteryPassport)            # a msgspec Struct: the shape is checked too

API:

- ``issue(credential, key, *, created) -> dict`` signs with a ``core.crypto.KeyPair``; ``created``
  is the caller's ISO-8601 UTC time (no clock here). Fills ``issuer`` and ``issuanceDate`` if
  absent and adds the Ed25519Signature2020 context after the VC context.
- ``verify(credential, *, context=None, issuers=None, type=None, at=None) -> Verified`` takes a
  dict or JSON text. Raises ``CredentialInvalid`` (code ``credential_invalid``) when the document
  or proof is unsound, ``CredentialNotAccepted`` (``credential_not_accepted``) when it is sound
  but not what the caller asked for. Each carries a ``reason`` naming the field at fault.
- ``Verified``: ``issuer``, ``types``, ``subject``, ``issued``, ``expires``, ``created``,
  ``credential``; ``subject_as(Model)`` reads the subject through a typed model.
- ``domain_context(vocab, terms, *, types, json_terms) -> dict``: the inline context
  object for a domain's terms, so a verifier downloads nothing.
- ``canonicalize(document) -> bytes``, ``verification_method(did)``, ``load_document`` (the pyld
  loader), the two context URLs and the bounds ``MAX_BYTES``, ``MAX_DEPTH`` and ``MAX_VALUES``.

Decisions (each one a measured fact; tests/credentials names the scenario that checks it):

- The proof is checked against DIDKit (SpruceID, Rust), an independent implementation, both
  ways; the only key a proof may use is the issuer's own did:key (``did:key:z6Mk…#z6Mk…``).
- Canonicalization is URDNA2015 through pyld with a document loader that serves the two shipped
  contexts (byte-identical to the published ones, SHA-256 pinned) and refuses any other URL:
  nothing is ever fetched. Domain terms travel inline in ``@context``.
- Strict JSON-LD: a key the context does not define, a relative ``type`` or ``id`` would be
  dropped from the signed graph, so they are refused, as are JSON-LD keywords outside ``@context``.
- Bounded work. pyld's URDNA2015 has no work limit, and small documents can take it minutes:
  blank node ids (a 7-node clique: 5 s), ``@list`` of repeated values (400 zeros: 111 s), alike
  unnamed objects nested in alike ones (factorial), large sets (12,000 values: 55 s). So:
  ``MAX_BYTES`` (128 KiB of JSON) and ``MAX_DEPTH`` (32) before anything is parsed further; no
  blank node ids and no ``@list``; ``MAX_VALUES`` (1,000) per property of one object; and each
  blank node hashed "n-degree" at most once (rdf-canonize's ``maxDeepIterations`` = 1).
- Values every implementation writes alike: integers within ±(2**53-1), no fractions (house
  rule, and doubles canonicalize differently); no control characters but LF and CR (pyld,
  DIDKit and rdf-canonize 5 escape them three different ways in N-Quads: a tab made a DIDKit
  credential fail in pyld); no object key beyond U+FFFF (DIDKit does not sort such keys as RFC
  8785 says inside ``@json`` values).
- The proof signs the RDF graph, not the JSON: pass ``context`` to ``verify`` to pin the term
  names, and read the subject with ``subject_as`` to pin its shape. Arrays are sets (order and
  duplicates unsigned); ``json_terms`` are signed as RFC 8785 text, shape and order included.
"""

from ._document import MAX_BYTES, MAX_DEPTH
from ._ed25519_2020 import PROOF_PURPOSE, PROOF_TYPE, Verified, issue, verification_method, verify
from ._errors import CredentialInvalid, CredentialNotAccepted
from ._jsonld import CREDENTIALS_V1, ED25519_2020_V1, MAX_VALUES, canonicalize, domain_context, load_document

__all__ = [
    "CREDENTIALS_V1", "ED25519_2020_V1", "MAX_BYTES", "MAX_DEPTH", "MAX_VALUES", "PROOF_PURPOSE", "PROOF_TYPE",
    "CredentialInvalid", "CredentialNotAccepted", "Verified",
    "canonicalize", "domain_context", "issue", "load_document", "verification_method", "verify",
]
