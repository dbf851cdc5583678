"""A battery passport as a W3C Verifiable Credential, verifiable offline against the ledger.

The credential (``BatteryPassportCredential``, VC Data Model 1.1, ``Ed25519Signature2020``) is
signed by the maker's key that issued the passport on the ledger. Its subject carries the
passport's headline fields as plain terms (what any VC wallet shows), the whole passport exactly
as the ledger holds it (``passport``, a JSON value signed byte for byte), and the ledger evidence
(``ledgerEvidence``: the node's ``GET /v1/state/parts/passport/<pack>`` answer: the raw value, its
state proof and a checkpoint signed by a quorum of node keys, with any consensus changes since
genesis). ``verify_passport_credential`` checks, with no node and no network:

1. the credential's proof (``blokauto.credentials.verify``; DIDKit accepts the same documents);
2. the evidence against the consortium's trust anchor: the checkpoint's quorum and the state
   proof of key ``parts/passport/<pack>`` (``verify_state_evidence``);
3. that the signed passport is the proven value, the headline terms are its fields, the subject is
   the pack's, and the credential's issuer is the key that issued the passport on the ledger.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..credentials import CREDENTIALS_V1, domain_context, verify
from ..modules.parts.keys import PASSPORT
from ._anchor import TrustAnchor, anchor_for, follow_consensus
from ._evidence import verify_state_evidence
from ._proofs import VerificationError

CREDENTIAL_TYPE = "BatteryPassportCredential"
VOCAB = "https://blokauto.dev/vocab/battery#"
#: The headline terms: credentialSubject key -> passport field.
HEADLINE = {"manufacturer": "manufacturer", "category": "category", "chemistry": "chemistry",
            "capacityWh": "capacity_wh", "nominalVoltageMv": "nominal_voltage_mv", "massG": "mass_g",
            "carbonFootprintGPerKwh": "carbon_footprint_g_per_kwh", "partNumber": "part_number", "serial": "serial"}
PASSPORT_CONTEXT = domain_context(VOCAB, list(HEADLINE), types=[CREDENTIAL_TYPE],
                                  json_terms=["passport", "ledgerEvidence"])


def subject_id(chain: str, pack: str) -> str:
    return f"urn:blokauto:{chain}:battery:{pack}"


def passport_credential(evidence: dict[str, Any], changes: list[dict[str, Any]], chain: str) -> dict[str, Any]:
    """The unsigned credential for a proven passport (``evidence``: the state answer; ``changes``:
    the consortium's consensus changes, so a verifier holding only the genesis can follow them)."""
    raw = evidence.get("raw")
    if raw is None or not str(evidence.get("key", "")).startswith(PASSPORT):
        raise VerificationError("the evidence holds no battery passport")
    p = msgspec.json.decode(raw)
    evidence = {k: v for k, v in evidence.items() if k != "value"}  # the raw bytes are what the proof covers
    return {"@context": [CREDENTIALS_V1, PASSPORT_CONTEXT], "type": ["VerifiableCredential", CREDENTIAL_TYPE],
            "issuer": p["issuer"],
            "credentialSubject": {"id": subject_id(chain, p["id"]), **{k: p[f] for k, f in HEADLINE.items()},
                                  "passport": p, "ledgerEvidence": {"state": evidence, "consensusChanges": changes}}}


def verify_passport_credential(credential: dict[str, Any] | str | bytes, anchor: TrustAnchor, *,
                               at: str | None = None) -> dict[str, Any]:
    """The passport a credential proves, or ``VerificationError`` / ``CredentialInvalid`` saying what fails."""
    checked = verify(credential, context=PASSPORT_CONTEXT, type=CREDENTIAL_TYPE, at=at)
    subject = checked.subject
    if not isinstance(subject, dict) or not isinstance(subject.get("ledgerEvidence"), dict):
        raise VerificationError("the credential carries no ledger evidence")
    evidence, changes = subject["ledgerEvidence"].get("state"), subject["ledgerEvidence"].get("consensusChanges", [])
    if not isinstance(evidence, dict) or not isinstance(changes, list):
        raise VerificationError("the credential's ledger evidence is malformed")
    try:
        anchors = [anchor] + follow_consensus(anchor, changes)
        height = int(evidence["checkpoint"]["header"]["height"])
        cp = verify_state_evidence(evidence, anchor_for(anchors, height))
    except (KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
        raise VerificationError(f"the credential's ledger evidence is malformed ({exc})") from None
    raw = evidence.get("raw")
    if raw is None:
        raise VerificationError(f"the ledger proves no passport at {evidence.get('key')!r}")
    proven = msgspec.json.decode(raw)
    if evidence.get("key") != PASSPORT + str(proven.get("id")):
        raise VerificationError(f"the evidence proves {evidence.get('key')!r}, not the passport of {proven.get('id')!r}")
    if subject.get("passport") != proven:
        raise VerificationError("the signed passport differs from the one the ledger holds")
    for term, field in HEADLINE.items():
        if subject.get(term) != proven.get(field):
            raise VerificationError(f"the credential's {term} is {subject.get(term)!r}; the ledger's is {proven.get(field)!r}")
    if subject.get("id") != subject_id(cp.header.chain, proven["id"]):
        raise VerificationError(f"the credential is about {subject.get('id')!r}, not the pack {proven['id']!r} of chain "
                                f"{cp.header.chain!r}")
    if checked.issuer != proven.get("issuer"):
        raise VerificationError(f"the credential is signed by {checked.issuer}, but the passport was issued on the "
                                f"ledger by {proven.get('issuer')}")
    return {**proven, "proven_at": cp.header.height, "checkpoint_time": cp.header.time, "chain": cp.header.chain}
