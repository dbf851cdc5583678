"""Our credentials against an independent implementation, DIDKit (SpruceID, Rust): each verifies
the other's, and both sign the very same bytes (Ed25519 is deterministic, so equal proofValues
mean equal canonical forms). The last tests pin the disagreements between canonicalizers that made
the value rules in ``_document.py``."""

from __future__ import annotations

import copy
import re

import base58
import pytest

from blokauto.core.crypto import verify_signature
from blokauto.credentials import (CREDENTIALS_V1, ED25519_2020_V1, CredentialInvalid, domain_context, issue,
                                  verification_method, verify)
from blokauto.credentials._ed25519_2020 import _signed_bytes

from didkit_peer import didkit  # noqa: F401  (fixture)
from vc_world import BATTERY, CREATED, MAKER, for_didkit, passport

SAMPLES = {
    "battery_passport": passport(),
    "minimal_subject": {"@context": [CREDENTIALS_V1], "type": ["VerifiableCredential"],
                        "credentialSubject": {"id": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"}},
    "unicode_everywhere": passport(chemistry="Li-ion NMC 811 ‖ 電池 ☃ 🚗 \u00e9 e\u0301", note="a\nb\r\nc \"quoted\" \\"),
    "json_ledger_proof_nested": passport(ledgerProof={"z": [1, {"b": None, "a": [True, False]}], "é": "x", "a": ""},
                                         history=[{"km": 10}, {"km": 10}, {"km": 5}]),
    "integers_at_the_safe_bounds": passport(capacityWh=2**53 - 1, count=-(2**53 - 1)),
    "issuer_object_with_name": {**passport(), "issuer": {"id": MAKER.did}},
    "expiration_date": {**passport(), "expirationDate": "2036-03-01T12:00:00Z"},
    "subject_as_one_element_array": {**passport(), "credentialSubject": [passport()["credentialSubject"]]},
    "credential_id": {**passport(), "id": "urn:uuid:5c1bd3f6-3a61-4b0b-9d3a-1f3e0d7c2a10"},
    "inline_context_with_version": {**passport(), "@context": [CREDENTIALS_V1, {"@version": 1.1, **BATTERY}]},
}


@pytest.mark.parametrize("name", SAMPLES)
def test_our_credential_verifies_in_didkit(didkit, name):
    vc = issue(SAMPLES[name], MAKER, created=CREATED)
    assert didkit.verify(vc) == []
    verify(vc)


@pytest.mark.parametrize("name", SAMPLES)
def test_didkit_credential_verifies_in_ours(didkit, name):
    vc = didkit.issue(for_didkit(SAMPLES[name]), MAKER, created=CREATED)
    assert vc["proof"]["type"] == "Ed25519Signature2020"
    verified = verify(vc)
    assert verified.issuer == MAKER.did and verified.created == CREATED


@pytest.mark.parametrize("name", SAMPLES)
def test_both_implementations_sign_the_same_bytes(didkit, name):
    ours = issue(SAMPLES[name], MAKER, created=CREATED)
    theirs = didkit.issue(for_didkit(SAMPLES[name]), MAKER, created=CREATED)
    assert ours["proof"]["proofValue"] == theirs["proof"]["proofValue"]


def test_a_keypair_is_the_same_did_key_and_verification_method_in_didkit(didkit):
    assert didkit.did(MAKER) == MAKER.did
    assert didkit.verification_method(MAKER) == verification_method(MAKER.did)


def test_didkit_accepts_json_typed_terms_in_an_inline_context(didkit):
    context = domain_context("https://blokauto.dev/vocab/x#", ["name"], json_terms=["blob"])
    credential = {"@context": [CREDENTIALS_V1, ED25519_2020_V1, context], "type": ["VerifiableCredential"],
                  "issuer": MAKER.did, "issuanceDate": CREATED,
                  "credentialSubject": {"id": "urn:x:1", "name": "n", "blob": {"b": [3, 1, 2], "a": {"k": None}}}}
    theirs = didkit.issue(credential, MAKER, created=CREATED)
    verify(theirs)
    changed = copy.deepcopy(theirs)
    changed["credentialSubject"]["blob"]["b"] = [1, 2, 3]  # order inside @json is signed
    assert didkit.verify(changed)
    with pytest.raises(CredentialInvalid, match="signature"):
        verify(changed)


# ---------------------------------------------------------------- where canonicalizers disagree

def _proof_holds_in_pyld(vc: dict) -> bool:
    """The signature check alone, past our value rules: does pyld agree with DIDKit's canonical form?"""
    body = {k: v for k, v in vc.items() if k != "proof"}
    options = {k: v for k, v in vc["proof"].items() if k != "proofValue"}
    return verify_signature(MAKER.public_key, base58.b58decode(vc["proof"]["proofValue"][1:]),
                            _signed_bytes(body, options))


DISAGREEMENTS = {
    # pyld 3.3.0 escapes a tab in N-Quads ("\t"); DIDKit 0.3.3 and jsonld.js' rdf-canonize 3 do not
    # (rdf-canonize 5, RDFC-1.0, escapes every control character): one tab, three canonical forms.
    "tab_in_a_string": (passport(note="a\tb"), "control character U+0009"),
    # RFC 8785 sorts @json keys by UTF-16 code units (pyld): U+1F697 (D83D DE97) before U+FF61;
    # DIDKit sorts by code point.
    "astral_key_inside_json": (passport(blob={"\U0001F697": 1, "\uff61": 2}), "beyond U+FFFF"),
    # beyond 2**63 DIDKit reads an integer as a double ("9.2E18"); pyld writes its digits.
    "integer_beyond_2_63": (passport(count=2**63), "beyond ±(2**53 - 1)"),
}


@pytest.mark.parametrize("name", DISAGREEMENTS)
def test_canonicalizers_disagree_on_the_values_we_refuse(didkit, name):
    credential, reason = DISAGREEMENTS[name]
    theirs = didkit.issue(for_didkit(credential), MAKER, created=CREATED)
    assert didkit.verify(theirs) == []
    assert not _proof_holds_in_pyld(theirs)  # the disagreement itself: if this fails, an implementation changed
    with pytest.raises(CredentialInvalid, match=re.escape(reason)):
        verify(theirs)
    with pytest.raises(CredentialInvalid):
        issue(credential, MAKER, created=CREATED)
