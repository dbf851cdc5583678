"""Attacks on an issued credential: every change below is refused by our verifier and by DIDKit.

One row per attack: the change, and the words our refusal must use (so a refusal for the wrong
reason, say a malformed document instead of a failed signature, does not pass for a caught attack).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import base58
import pytest

from blokauto.core.crypto import did_from_public_key
from blokauto.credentials import (ED25519_2020_V1, CredentialInvalid, CredentialNotAccepted, issue,
                                  verification_method, verify)

from didkit_peer import didkit  # noqa: F401  (fixture)
from vc_world import BATTERY, CREATED, MAKER, OTHER, VOCAB, passport

SIGNATURE = "proofValue is not"


def _subject(**changes: Any) -> Callable[[dict], None]:
    def change(vc: dict) -> None:
        for key, value in changes.items():
            if value is None:
                del vc["credentialSubject"][key]
            else:
                vc["credentialSubject"][key] = value
    return change


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def change(vc: dict) -> None:
        *parents, last = path.split(".")
        node = vc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is None:
            del node[last]
        else:
            node[last] = value
    return change


def _flip_proof_value(vc: dict) -> None:
    value = vc["proof"]["proofValue"]
    vc["proof"]["proofValue"] = value[:20] + ("2" if value[20] != "2" else "3") + value[21:]


def _other_key_signs_as_issuer(vc: dict) -> None:
    """The other key signs the credential but leaves the maker as issuer: the proof's key is not the issuer's."""
    forged = issue({k: v for k, v in vc.items() if k not in ("proof", "issuer")}, OTHER, created=CREATED)
    vc["proof"] = forged["proof"]


def _swap_verification_method(vc: dict) -> None:
    vc["proof"]["verificationMethod"] = verification_method(OTHER.did)


def _issuer_and_method_to_other_key(vc: dict) -> None:
    """Claim the credential for another issuer, proof method included; the signature is still the maker's."""
    vc["issuer"] = OTHER.did
    vc["proof"]["verificationMethod"] = verification_method(OTHER.did)


def _remap_term(vc: dict) -> None:
    context = copy.deepcopy(BATTERY)
    context["chemistry"] = {"@id": VOCAB + "formerChemistry"}
    vc["@context"][2] = context


ATTACKS: dict[str, tuple[Callable[[dict], None], str]] = {
    "subject_string_changed": (_subject(chemistry="LFP"), SIGNATURE),
    "subject_integer_changed": (_subject(capacityWh=75_001), SIGNATURE),
    "subject_boolean_flipped": (_subject(recycled=True), SIGNATURE),
    "subject_unicode_normalised": (_subject(manufacturer="Akku Werke GmbH - Zwickau"), SIGNATURE),
    "subject_nested_cell_serial_changed": (_set("credentialSubject.cells.1.serial", "C-9999"), SIGNATURE),
    "subject_nested_cell_removed": (_set("credentialSubject.cells", [{"serial": "C-0001", "voltageMv": 3_700}]),
                                    SIGNATURE),
    "subject_id_changed_to_another_battery": (_subject(id="urn:blokauto:battery:B-0002"), SIGNATURE),
    "subject_field_removed": (_subject(recycled=None), SIGNATURE),
    "subject_defined_field_added": (_subject(note="refurbished"), SIGNATURE),
    "subject_undefined_field_added": (_subject(recalled=False), "context does not define"),
    "json_ledger_proof_changed": (_set("credentialSubject.ledgerProof.height", 1205), SIGNATURE),
    "json_ledger_proof_path_reordered": (_set("credentialSubject.ledgerProof.path", ["ef" * 32, "cd" * 32]),
                                         SIGNATURE),
    "issuer_changed_to_another_did": (_set("issuer", OTHER.did), "verificationMethod"),
    "issuer_and_verification_method_moved_to_another_key": (_issuer_and_method_to_other_key, SIGNATURE),
    "verification_method_swapped_to_another_key": (_swap_verification_method, "verificationMethod"),
    "proof_signed_by_another_key_for_this_issuer": (_other_key_signs_as_issuer, "verificationMethod"),
    "proof_value_one_character_changed": (_flip_proof_value, SIGNATURE),
    "proof_value_truncated": (lambda vc: vc["proof"].update(proofValue=vc["proof"]["proofValue"][:-4]),
                              "64 bytes"),
    "proof_created_changed": (_set("proof.created", "2026-03-01T12:00:01Z"), SIGNATURE),
    "proof_created_moved_back_a_year": (_set("proof.created", "2025-03-01T12:00:00Z"), SIGNATURE),
    "proof_type_changed": (_set("proof.type", "Ed25519Signature2018"), "Ed25519Signature2020 proofs only"),
    "proof_purpose_changed": (_set("proof.proofPurpose", "authentication"), "proofPurpose"),
    "proof_removed": (_set("proof", None), "no proof"),
    "issuance_date_changed": (_set("issuanceDate", "2020-01-01T00:00:00Z"), SIGNATURE),
    "expiration_date_added": (_set("expirationDate", "2099-01-01T00:00:00Z"), SIGNATURE),
    "type_added": (_set("type", ["VerifiableCredential", "BatteryPassportCredential", "VerifiablePresentation"]),
                   SIGNATURE),
    "type_removed": (_set("type", ["VerifiableCredential"]), SIGNATURE),
    "context_term_remapped": (_remap_term, SIGNATURE),
    "context_unknown_url_added": (lambda vc: vc["@context"].append("https://blokauto.invalid/context/v1"),
                                  "only https://www.w3.org/2018/credentials/v1"),
    "context_proof_suite_removed": (lambda vc: vc["@context"].remove(ED25519_2020_V1), ED25519_2020_V1),
    "context_domain_terms_removed": (lambda vc: vc["@context"].pop(), "context does not define"),
}


@pytest.fixture(scope="module")
def issued() -> dict:
    return issue(passport(), MAKER, created=CREATED)


@pytest.mark.parametrize("attack", ATTACKS)
def test_tampered_credential_is_refused_by_both(didkit, issued, attack):
    change, reason = ATTACKS[attack]
    vc = copy.deepcopy(issued)
    change(vc)
    assert vc != issued
    with pytest.raises(CredentialInvalid) as refused:
        verify(vc)
    assert reason in refused.value.message, refused.value.message
    assert didkit.verify(vc), "didkit accepted it"


def test_the_untampered_credential_verifies_in_both(didkit, issued):
    assert didkit.verify(issued) == []
    assert verify(issued).subject == issued["credentialSubject"]


def test_a_credential_signed_by_another_issuer_is_genuine_but_not_trusted(didkit):
    """Not tampering: a real credential by someone else. The proof holds; ``issuers`` refuses it."""
    vc = issue(passport(), OTHER, created=CREATED)
    assert didkit.verify(vc) == []
    assert verify(vc).issuer == OTHER.did
    with pytest.raises(CredentialNotAccepted, match="not one this reader trusts"):
        verify(vc, issuers={MAKER.did})


RENAMES = {
    # swap two term names in the inline context and swap the JSON keys to match: the RDF graph, so
    # the proof, is unchanged, while a reader going by names sees the values exchanged
    "chemistry_and_manufacturer_swapped": ("chemistry", "manufacturer"),
    "capacity_read_as_a_count": ("capacityWh", "count"),
}


@pytest.mark.parametrize("rename", RENAMES)
def test_renamed_terms_keep_the_proof_but_not_a_pinned_context(didkit, issued, rename):
    a, b = RENAMES[rename]
    vc = copy.deepcopy(issued)
    context = vc["@context"][2]
    context[a], context[b] = context[b], context[a]
    subject = vc["credentialSubject"]
    if a in subject or b in subject:
        subject[a], subject[b] = subject.get(b), subject.get(a)
        for k in (a, b):
            if subject[k] is None:
                del subject[k]
    assert didkit.verify(vc) == []  # the graph is the same: no LD proof can see this
    assert verify(vc).credential == vc
    with pytest.raises(CredentialNotAccepted, match="@context is not the one this reader expects"):
        verify(vc, context=BATTERY)
    assert verify(issued, context=BATTERY)


def test_an_issuer_whose_did_key_is_the_identity_point_is_refused():
    """OpenSSL and WebCrypto accept (R=identity, S=0) for any message under the identity key."""
    weak = did_from_public_key(bytes([1] + [0] * 31))
    vc = issue(passport(), MAKER, created=CREATED)
    vc["issuer"] = weak
    vc["proof"]["verificationMethod"] = verification_method(weak)
    vc["proof"]["proofValue"] = "z" + base58.b58encode(bytes([1] + [0] * 63)).decode()
    with pytest.raises(CredentialInvalid, match="small order"):
        verify(vc)
