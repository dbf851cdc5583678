"""What a caller checks besides the proof (issuer, type, context, validity period, subject shape),
and what ``issue`` fills in or refuses. One row per rule."""

from __future__ import annotations

import copy

import msgspec
import pytest

from blokauto.credentials import (CREDENTIALS_V1, ED25519_2020_V1, CredentialInvalid, CredentialNotAccepted,
                                  issue, verify)

from vc_world import BATTERY, CREATED, MAKER, OTHER, passport


class Cell(msgspec.Struct):
    serial: str
    voltageMv: int


class BatteryPassport(msgspec.Struct):
    id: str
    chemistry: str
    capacityWh: int
    cells: list[Cell]


@pytest.fixture(scope="module")
def issued() -> dict:
    return issue({**passport(), "expirationDate": "2036-03-01T12:00:00Z"}, MAKER, created=CREATED)


ACCEPTED = {
    "everything_as_expected": dict(context=BATTERY, issuers={MAKER.did}, type="BatteryPassportCredential",
                                   at="2026-06-01T00:00:00Z"),
    "at_the_issuance_instant": dict(at=CREATED),
    "at_in_another_zone": dict(at="2026-03-01T13:00:00+01:00"),
    "one_second_before_expiry": dict(at="2036-03-01T11:59:59Z"),
    "nothing_expected": dict(),
}

NOT_ACCEPTED = {
    "issuer_not_trusted": (dict(issuers={OTHER.did}), "not one this reader trusts"),
    "no_issuer_trusted": (dict(issuers=set()), "not one this reader trusts"),
    "wrong_type": (dict(type="VehicleHistoryReportCredential"), "is not a VehicleHistoryReportCredential"),
    "other_domain_context": (dict(context={**BATTERY, "extra": {"@id": "https://blokauto.dev/x#extra"}}),
                             "@context is not the one"),
    "before_issuance": (dict(at="2026-03-01T11:59:59Z"), "becomes valid at"),
    "at_expiry": (dict(at="2036-03-01T12:00:00Z"), "expired at"),
    "after_expiry": (dict(at="2040-01-01T00:00:00Z"), "expired at"),
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_credential_is_accepted(issued, case):
    verified = verify(issued, **ACCEPTED[case])
    assert verified.issuer == MAKER.did
    assert verified.types == ("VerifiableCredential", "BatteryPassportCredential")
    assert verified.subject == issued["credentialSubject"]
    assert (verified.issued, verified.expires, verified.created) == (CREATED, "2036-03-01T12:00:00Z", CREATED)


@pytest.mark.parametrize("case", NOT_ACCEPTED)
def test_genuine_credential_is_not_accepted(issued, case):
    expected, reason = NOT_ACCEPTED[case]
    with pytest.raises(CredentialNotAccepted) as refused:
        verify(issued, **expected)
    assert refused.value.code == "credential_not_accepted"
    assert reason in refused.value.message, refused.value.message


def test_a_json_text_credential_verifies_like_the_dict(issued):
    import json
    assert verify(json.dumps(issued)).subject == verify(json.dumps(issued).encode()).subject


def test_subject_reads_through_a_model(issued):
    passport_ = verify(issued).subject_as(BatteryPassport)
    assert passport_.cells[0] == Cell(serial="C-0001", voltageMv=3_700)


def test_a_value_wrapped_in_an_array_keeps_the_proof_but_fails_the_model(issued):
    """``"x"`` and ``["x"]`` are the same RDF statement: the proof cannot see the change, the model can."""
    vc = copy.deepcopy(issued)
    vc["credentialSubject"]["chemistry"] = ["NMC811"]
    verified = verify(vc, context=BATTERY)
    with pytest.raises(CredentialNotAccepted, match="subject is not a BatteryPassport"):
        verified.subject_as(BatteryPassport)


def test_a_reordered_set_keeps_the_proof(issued):
    """An array of a plain term is a set; order that matters goes in a json term (see the tampering table)."""
    vc = copy.deepcopy(issued)
    vc["credentialSubject"]["cells"].reverse()
    assert verify(vc).subject_as(BatteryPassport).cells[0].serial == "C-0002"


# ---------------------------------------------------------------- issuing


def test_issue_fills_in_issuer_date_and_proof_context_and_leaves_its_argument_alone():
    unsigned = passport()
    before = copy.deepcopy(unsigned)
    vc = issue(unsigned, MAKER, created=CREATED)
    assert unsigned == before
    assert vc["@context"] == [CREDENTIALS_V1, ED25519_2020_V1, BATTERY]
    assert (vc["issuer"], vc["issuanceDate"]) == (MAKER.did, CREATED)
    assert vc["proof"]["verificationMethod"] == f"{MAKER.did}#{MAKER.did.removeprefix('did:key:')}"


def test_issue_is_deterministic():
    assert issue(passport(), MAKER, created=CREATED) == issue(passport(), MAKER, created=CREATED)


ISSUE_REFUSALS = {
    "created_without_zone": (passport(), dict(created="2026-03-01T12:00:00"), "not an ISO-8601 UTC time"),
    "created_not_utc": (passport(), dict(created="2026-03-01T12:00:00+01:00"), "not an ISO-8601 UTC time"),
    "created_not_a_date": (passport(), dict(created="2026-02-30T12:00:00Z"), "not an ISO-8601 UTC time"),
    "issuer_is_someone_else": ({**passport(), "issuer": OTHER.did}, {}, "signed by"),
    "already_signed": ({**passport(), "proof": {"type": "Ed25519Signature2020"}}, {}, "already carries a proof"),
    "context_without_vc_v1": ({**passport(), "@context": [BATTERY]}, {},
                              "starting with https://www.w3.org/2018/credentials/v1"),
    "no_subject": ({**passport(), "credentialSubject": {}}, {}, "credentialSubject"),
}


@pytest.mark.parametrize("case", ISSUE_REFUSALS)
def test_issue_refuses(case):
    credential, options, reason = ISSUE_REFUSALS[case]
    with pytest.raises(CredentialInvalid) as refused:
        issue(credential, MAKER, **{"created": CREATED, **options})
    assert reason in refused.value.message, refused.value.message
