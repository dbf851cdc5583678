"""A battery passport exported as a W3C Verifiable Credential: verified offline against the ledger
by blokauto and, as a credential, by DIDKit (an independent implementation); every forgery refused."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import msgspec
import pytest

from blokauto.client import Client
from blokauto.client.sourcing import Sourcing
from blokauto.credentials import CredentialInvalid, CredentialNotAccepted, issue
from blokauto.verify import TrustAnchor, VerificationError
from blokauto.verify.passport import verify_passport_credential

from conftest import consortium
from didkit_peer import DidkitPeer, didkit  # noqa: F401  (the fixture)
from helpers.cobalt import cobalt_world
from helpers.parts import SUP, SUP2

#: When the tests sign: a minute ago (DIDKit refuses a proof created in the future).
CREATED = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    node = cobalt_world(tmp_path_factory.mktemp("passport-vc"))
    try:
        with Client(node.url, key=SUP, trust=node.genesis) as c:
            vc = Sourcing(c).export_passport("PACK:P1", SUP, created=CREATED)
        yield {"vc": vc, "anchor": TrustAnchor.from_genesis(node.genesis), "genesis": node.genesis}
    finally:
        node.close()


def test_the_passport_credential_verifies_offline_against_the_ledger(exported: dict[str, Any]) -> None:
    p = verify_passport_credential(exported["vc"], exported["anchor"])
    assert (p["id"], p["manufacturer"], p["issuer"], p["chemistry"]) == ("PACK:P1", "sup", SUP.did, "NMC811")
    assert {m["mine"]: m["ppm"] for m in p["materials"]} == {"Kamoto": 250_000, "Murrin Murrin": 750_000}
    assert p["proven_at"] >= p["height"]


def test_didkit_verifies_the_passport_credential(exported: dict[str, Any], didkit: DidkitPeer) -> None:  # noqa: F811
    assert didkit.verify(exported["vc"]) == []


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(vc: dict[str, Any]) -> None:
        target = vc
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    return change


def _raw_passport(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """Change the proven raw value inside the evidence (the proof then fails)."""
    def apply(vc: dict[str, Any]) -> None:
        ev = vc["credentialSubject"]["ledgerEvidence"]["state"]
        p = msgspec.json.decode(ev["raw"])
        change(p)
        ev["raw"] = msgspec.json.encode(p).decode()
    return apply


SUBJECT = ("credentialSubject",)
FORGERIES = [
    pytest.param(_set(SUBJECT + ("chemistry",), "LFP"), id="headline_term_changed"),
    pytest.param(_set(SUBJECT + ("passport", "materials", 0, "ppm"), 900_000), id="an_origin_share_changed"),
    pytest.param(_set(SUBJECT + ("passport", "recycled", 0, "ppm"), 500_000), id="recycled_content_inflated"),
    pytest.param(_set(SUBJECT + ("ledgerEvidence", "state", "checkpoint", "header", "height"), 1), id="evidence_height_changed"),
    pytest.param(_set(("issuer",), SUP2.did), id="issuer_swapped"),
]


@pytest.mark.parametrize("forge", FORGERIES)
def test_a_changed_signed_credential_is_refused_by_both(exported: dict[str, Any], didkit: DidkitPeer,  # noqa: F811
                                                       forge: Callable[[dict[str, Any]], None]) -> None:
    vc = copy.deepcopy(exported["vc"])
    forge(vc)
    with pytest.raises((CredentialInvalid, CredentialNotAccepted, VerificationError)):
        verify_passport_credential(vc, exported["anchor"])
    assert didkit.verify(vc) != []


def _resigned(vc: dict[str, Any], key: Any = SUP) -> dict[str, Any]:
    body = {k: v for k, v in vc.items() if k != "proof"}
    return issue(body, key, created=CREATED)


# A forger holding the maker's key re-signs a changed credential: the proof holds (DIDKit accepts it
# as a credential), so only the ledger evidence can refuse it.
RESIGNED = [
    pytest.param(lambda vc: _set(SUBJECT + ("capacityWh",), 95_000)(vc), "capacityWh", id="capacity_inflated"),
    pytest.param(lambda vc: _set(SUBJECT + ("passport", "materials", 1, "mine"), "Fair Mine")(vc),
                 "differs from the one the ledger holds", id="a_mine_renamed"),
    pytest.param(lambda vc: _raw_passport(lambda p: p.update(chemistry="LFP"))(vc), "not proven",
                 id="the_proven_value_itself_changed"),
    pytest.param(lambda vc: _set(SUBJECT + ("id",), "urn:blokauto:other:battery:PACK:P1")(vc), "is about",
                 id="subject_of_another_chain"),
    pytest.param(lambda vc: _set(SUBJECT + ("ledgerEvidence", "state", "key"), "parts/passport/PACK:P2")(vc),
                 "not proven|not the passport", id="evidence_for_another_key"),
]


@pytest.mark.parametrize(("forge", "reason"), RESIGNED)
def test_a_resigned_forgery_passes_as_a_credential_but_not_against_the_ledger(
        exported: dict[str, Any], didkit: DidkitPeer, forge: Callable[[dict[str, Any]], None], reason: str) -> None:  # noqa: F811
    vc = copy.deepcopy(exported["vc"])
    forge(vc)
    vc = _resigned(vc)
    assert didkit.verify(vc) == []  # a genuine signature over a false claim
    with pytest.raises(VerificationError, match=reason):
        verify_passport_credential(vc, exported["anchor"])


def test_a_credential_signed_by_another_key_than_the_passports_issuer_is_refused(exported: dict[str, Any]) -> None:
    vc = copy.deepcopy(exported["vc"])
    vc["issuer"] = SUP2.did
    with pytest.raises(VerificationError, match="issued on the ledger by"):
        verify_passport_credential(_resigned(vc, SUP2), exported["anchor"])


def test_another_consortiums_trust_anchor_refuses_the_evidence(exported: dict[str, Any]) -> None:
    other = TrustAnchor.from_genesis(consortium(time=exported["genesis"].time, chain="other-net"))
    with pytest.raises(VerificationError):
        verify_passport_credential(exported["vc"], other)
