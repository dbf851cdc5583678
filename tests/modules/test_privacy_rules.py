"""The privacy module's rules, one row per rule, on a MemoryLedger.

An organisation's member records a salted commitment to a value its vault holds about an opaque
subject, replaces it with a new one, and erases the subject (a tombstone that voids its
commitments and refuses later ones). Refusals are one table (``REFUSALS``): each names the stable
code and checks that the failed transaction changed nothing and cannot be replayed. No personal
data reaches the ledger: the stored bytes (state, index rows, blocks) are searched for the value
and its salt. Who may read the queries and events is checked against the declared policies. A
property test: the commitment is deterministic and changes with every one of its inputs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blokauto.core.access import Caller, ReadRefused
from blokauto.core.crypto import KeyPair
from blokauto.modules.privacy import PrivacyDoor, queries
from blokauto.modules.privacy.commitment import TAG_COMMITMENT, commitment, opens
from blokauto.modules.privacy.handlers import MAX_FIELDS
from blokauto.modules.privacy.messages import CommitPersonalData, EraseSubject
from blokauto.modules.privacy.state import COMMITS, FIELDS, LATEST, TOMBSTONES
from blokauto.modules.vehicles.messages import AssignWmi
from blokauto.vault import Vault

from conftest import Chain, K, build_tx
from helpers.vehicles import WMI, MemoryView, admin, event_types, register_msg, snapshot, vehicles_genesis, vin_for

VIN = vin_for(WMI["oem"], 1)
INS, BANK, REG = admin("ins"), admin("bank"), admin("reg")
ALICE = K("alice")  # a person's key, not a member of any organisation
S1 = "subj-" + "a" * 26
S2 = "subj-" + "b" * 26
C1, C2, C3 = "11" * 32, "22" * 32, "33" * 32


class View(MemoryView):
    """A QueryView over a MemoryLedger that also reaches the other modules' doors."""

    def __init__(self, chain: Chain) -> None:
        super().__init__(chain)
        self.need = chain.registry.provider
        self.time = chain.ledger.head.time


def now(chain: Chain) -> int:
    return chain.ledger.head.time


def tx(chain: Chain, sender: KeyPair, msg: Any, at: int) -> bytes:
    return build_tx(sender, msg, expires=at + 600_000, nonce=f"{next(chain.nonces):032x}")


def send(chain: Chain, sender: KeyPair, msg: Any) -> Any:
    t = now(chain) + 1
    return chain.block(tx(chain, sender, msg, t), time=t).receipts[0]


def ledger() -> Chain:
    """A consortium with every role (ins: insurer, bank: lender, reg: regulator and police) and VIN."""
    chain = Chain(vehicles_genesis())
    chain.nonces = itertools.count(1)
    assert send(chain, REG, AssignWmi(wmi=WMI["oem"], org="oem")).ok
    assert send(chain, admin("oem"), register_msg(VIN)).ok
    return chain


def commit_msg(subject: str = S1, field: str = "name", digest: str = C1, vin: str | None = None) -> CommitPersonalData:
    return CommitPersonalData(subject=subject, field=field, commitment=digest, vin=vin)


def committed(chain: Chain, sender: KeyPair = INS, **kw: Any) -> Any:
    r = send(chain, sender, commit_msg(**kw))
    assert r.ok, r
    return r


def door(chain: Chain) -> PrivacyDoor:
    return chain.registry.provider(PrivacyDoor)


# ---------------------------------------------------------------- commit, replace, erase


def test_a_member_commits_for_its_organisation() -> None:
    chain = ledger()
    r = committed(chain, vin=VIN)
    assert event_types(r) == ["privacy.committed"]
    assert r.events[0] == {"type": "privacy.committed", "subject": S1, "org": "ins", "field": "name", "version": 1,
                           "commitment": C1, "vin": VIN}
    c = COMMITS.get(chain.ledger, S1, "ins", "name", 1)
    assert c is not None
    assert (c.org, c.commitment, c.vin, c.by, c.version, c.replaced) == ("ins", C1, VIN, INS.did, 1, 0)
    assert LATEST.get(chain.ledger, S1, "ins", "name") == 1
    assert FIELDS.get(chain.ledger, S1, "ins") == ["name"]
    assert door(chain).commitment_of(chain.ledger, S1, "ins", "name") == C1
    assert door(chain).commitment_of(chain.ledger, S1, "bank", "name") is None


def test_a_new_commitment_replaces_the_one_in_force_and_the_old_stays_on_record() -> None:
    chain = ledger()
    committed(chain)
    first_height = chain.ledger.head.height
    r = committed(chain, digest=C2)
    assert r.events[0]["version"] == 2
    old, new = COMMITS.get(chain.ledger, S1, "ins", "name", 1), COMMITS.get(chain.ledger, S1, "ins", "name", 2)
    assert old.height == first_height and old.replaced == chain.ledger.head.height
    assert (new.commitment, new.replaced) == (C2, 0)
    assert FIELDS.get(chain.ledger, S1, "ins") == ["name"]  # still one field
    assert door(chain).commitment_of(chain.ledger, S1, "ins", "name") == C2
    got = queries.commitments(View(chain), queries.SubjectQuery(subject=S1))
    assert [(c["version"], c["commitment"], c["status"]) for c in got["commitments"]] == [
        (1, C1, "replaced"), (2, C2, "live")]
    assert committed(chain, digest=C1).events[0]["version"] == 3  # an old value may come back, as a new version


def test_erasure_voids_the_organisations_commitments_and_only_its_own() -> None:
    chain = ledger()
    committed(chain, field="name")
    committed(chain, field="postal_address", digest=C2)
    committed(chain, BANK, field="name", digest=C3)  # the bank holds data about the same subject id
    r = send(chain, INS, EraseSubject(subject=S1))
    assert r.ok, r
    assert r.events == [{"type": "privacy.erased", "subject": S1, "org": "ins", "voided": 2}]
    t = TOMBSTONES.get(chain.ledger, S1, "ins")
    assert (t.org, t.by, t.voided, t.height) == ("ins", INS.did, 2, chain.ledger.head.height)
    assert FIELDS.get(chain.ledger, S1, "ins") is None
    assert door(chain).erased_at(chain.ledger, S1, "ins") == chain.ledger.head.height
    assert door(chain).erased_at(chain.ledger, S1, "bank") is None
    assert door(chain).commitment_of(chain.ledger, S1, "ins", "name") is None
    assert door(chain).commitment_of(chain.ledger, S1, "bank", "name") == C3
    got = queries.commitments(View(chain), queries.SubjectQuery(subject=S1))
    assert [(c["org"], c["field"], c["status"]) for c in got["commitments"]] == [
        ("bank", "name", "live"), ("ins", "name", "erased"), ("ins", "postal_address", "erased")]
    assert [(t["org"], t["voided"]) for t in got["tombstones"]] == [("ins", 2)]
    assert committed(chain, BANK, field="postal_address", digest=C1).ok  # the bank's own records go on


def test_erasing_a_subject_the_organisation_never_committed_for_voids_nothing() -> None:
    chain = ledger()
    r = send(chain, INS, EraseSubject(subject=S2))
    assert r.ok and r.events[0]["voided"] == 0


def test_the_same_commitment_under_another_subject_or_organisation_is_separate() -> None:
    chain = ledger()
    committed(chain)
    assert committed(chain, subject=S2).events[0]["version"] == 1
    assert committed(chain, BANK).events[0]["version"] == 1


# ---------------------------------------------------------------- refusals: one row per rule


@dataclass(frozen=True)
class Refusal:
    name: str
    sender: KeyPair
    msg: Any
    code: str
    setup: Callable[[Chain], Any] | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def r(name: str, who: KeyPair, msg: Any, code: str, setup: Any = None, **detail: Any) -> Any:
    return pytest.param(Refusal(name, who, msg, code, setup, detail), id=name)


def erased(chain: Chain) -> None:
    committed(chain)
    assert send(chain, INS, EraseSubject(subject=S1)).ok


def all_fields(chain: Chain) -> None:
    t = now(chain) + 1
    raws = [tx(chain, INS, commit_msg(field=f"f{i}"), t) for i in range(MAX_FIELDS)]
    assert all(rec.ok for rec in chain.block(*raws, time=t).receipts)


REFUSALS = [
    r("commit_after_the_organisations_tombstone", INS, commit_msg(digest=C2), "subject_tombstoned", setup=erased,
      org="ins", subject=S1),
    r("commit_a_new_field_after_the_tombstone", INS, commit_msg(field="email"), "subject_tombstoned", setup=erased),
    r("the_same_commitment_again", INS, commit_msg(), "commitment_unchanged", setup=lambda c: committed(c),
      version=1),
    r("commit_for_an_unregistered_vin", INS, commit_msg(vin=vin_for(WMI["oem"], 99)), "unknown_vehicle"),
    r("commit_beyond_the_most_fields", INS, commit_msg(field="one_more"), "privacy_too_many_fields",
      setup=all_fields, count=MAX_FIELDS),
    r("erase_twice", INS, EraseSubject(subject=S1), "subject_already_erased", setup=erased, org="ins"),
    r("a_person_who_is_no_member_commits", ALICE, commit_msg(), "unknown_signer"),
    r("a_person_who_is_no_member_erases", ALICE, EraseSubject(subject=S1), "unknown_signer"),
]


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_and_changes_nothing_and_cannot_be_replayed(case: Refusal) -> None:
    chain = ledger()
    if case.setup is not None:
        case.setup(chain)
    at = now(chain) + 1
    before = snapshot(chain)
    raw = tx(chain, case.sender, case.msg, at)
    receipt = chain.block(raw, time=at).receipts[0]
    assert (receipt.ok, receipt.code) == (False, case.code), receipt
    assert receipt.events == []
    for k, v in case.detail.items():
        assert receipt.detail[k] == v, receipt.detail
    assert snapshot(chain) == before, "a failed transaction changed the ledger"
    again = chain.block(raw, time=at).receipts[0]
    assert (again.ok, again.code) == (False, "replayed_tx")


@pytest.mark.parametrize("fields", [
    {"subject": "Erika Mustermann"},  # a name where an opaque id belongs
    {"subject": "erika@example.org"},
    {"subject": "subj-" + "A" * 26},  # upper case: not what a vault assigns
    {"subject": "subj-" + "a" * 25},
    {"field": "Erika Mustermann"},
    {"field": "x" * 33},
    {"commitment": "Erika Mustermann"},
    {"commitment": "AB" * 32},
    {"vin": ""},
], ids=["name_as_subject", "email_as_subject", "upper_case_subject", "short_subject", "name_as_field",
        "long_field", "text_as_commitment", "upper_case_commitment", "empty_vin"])
def test_a_message_that_could_carry_personal_data_does_not_decode(fields: dict[str, Any]) -> None:
    """Only opaque ids, short field names and 64-hex commitments pass: anything else does not decode
    (a transaction carrying it is malformed, refused before it reaches a block)."""
    body = {"type": "privacy.commit", "subject": S1, "field": "name", "commitment": C1, **fields}
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(msgspec.json.encode(body), type=CommitPersonalData)
    ok = {"type": "privacy.commit", "subject": S1, "field": "name", "commitment": C1, "vin": VIN}
    assert msgspec.json.decode(msgspec.json.encode(ok), type=CommitPersonalData).vin == VIN


# ---------------------------------------------------------------- no personal data on the ledger


def stored_bytes(chain: Chain) -> bytes:
    """Every byte the ledger keeps in state: keys and values, index rows, headers."""
    out = [k + b"=" + v for k, v in chain.ledger.state.items()]
    out += [msgspec.json.encode([[list(k), row] for k, row in rows.items()]) for rows in chain.ledger.index.values()]
    out += [msgspec.json.encode(h) for h in chain.ledger.headers]
    return b"\n".join(out)


def test_no_personal_data_reaches_the_stored_bytes(tmp_path: Path) -> None:
    """The state, the index rows, the headers, the transactions and their receipts (events) hold the
    subject id and the commitments, and never a value or a salt."""
    chain = ledger()
    name, address = "Erika Mustermann", "Heidestrasse 17, 51147 Koeln"
    with Vault(tmp_path / "vault") as vault:
        subject = vault.new_subject()
        d1 = vault.put(subject, "name", name, vin=VIN)
        d2 = vault.put(subject, "postal_address", address)
    kept = []
    for msg in (commit_msg(subject=subject, field=d1.field, digest=d1.commitment, vin=VIN),
                commit_msg(subject=subject, field=d2.field, digest=d2.commitment), EraseSubject(subject=subject)):
        raw = tx(chain, INS, msg, now(chain) + 1)
        receipt = chain.block(raw, time=now(chain) + 1).receipts[0]
        assert receipt.ok, receipt
        kept += [raw, msgspec.json.encode(receipt)]
    everything = stored_bytes(chain) + b"".join(kept)
    for held in (subject, d1.commitment, d2.commitment, VIN):  # what the ledger does hold
        assert held.encode() in everything
    for secret in (name, address, "Erika", "Koeln", d1.salt, d2.salt):
        assert secret.encode() not in everything, f"{secret!r} is on the ledger"


# ---------------------------------------------------------------- queries and who reads them


def test_commitment_answers_for_the_one_commitment_it_is_asked_about() -> None:
    chain = ledger()
    committed(chain)
    view = View(chain)
    got = queries.commitment(view, queries.CommitmentQuery(subject=S1, field="name", commitment=C1))
    assert (got["recorded"], got["status"], got["record"]["org"], got["tombstone"]) == (True, "live", "ins", None)
    for q in (queries.CommitmentQuery(subject=S1, field="name", commitment=C2),
              queries.CommitmentQuery(subject=S2, field="name", commitment=C1),
              queries.CommitmentQuery(subject=S1, field="postal_address", commitment=C1)):
        assert queries.commitment(view, q)["recorded"] is False, q
    committed(chain, digest=C2)
    assert queries.commitment(View(chain), queries.CommitmentQuery(subject=S1, field="name",
                                                                   commitment=C1))["status"] == "replaced"
    assert send(chain, INS, EraseSubject(subject=S1)).ok
    got = queries.commitment(View(chain), queries.CommitmentQuery(subject=S1, field="name", commitment=C2))
    assert (got["status"], got["tombstone"]["org"]) == ("erased", "ins")


def test_commitments_pages() -> None:
    chain = ledger()
    for i in range(5):
        committed(chain, field=f"f{i}")
    page = queries.commitments(View(chain), queries.SubjectQuery(subject=S1, limit=2, offset=2))
    assert page["total"] == 5 and [c["field"] for c in page["commitments"]] == ["f2", "f3"]


def member(org: str, *roles: str) -> Caller:
    return Caller(did=admin(org).did, org=org, roles=frozenset(roles))


@pytest.mark.parametrize("caller,allowed", [
    (member("ins", "insurer"), True),  # made a commitment about the subject
    (member("bank", "lender"), False),  # holds nothing about it
    (member("reg", "regulator", "police", "inspector"), True),
    (Caller(did=ALICE.did), False),
], ids=["holding_org", "other_org", "regulator", "a_person"])
def test_who_reads_a_subjects_commitments(caller: Caller, allowed: bool) -> None:
    chain = ledger()
    committed(chain)
    policy = chain.registry.modules["privacy"].queries["commitments"].read
    for q in (queries.SubjectQuery(subject=S1),):
        if allowed:
            policy.check(View(chain), caller, q, "privacy/commitments")
        else:
            with pytest.raises(ReadRefused):
                policy.check(View(chain), caller, q, "privacy/commitments")
    # a subject nobody recorded anything about is read by regulators only
    if not caller.reads_all:
        with pytest.raises(ReadRefused):
            policy.check(View(chain), caller, queries.SubjectQuery(subject=S2), "privacy/commitments")


def test_the_check_of_one_commitment_is_for_any_known_key_and_events_for_their_organisation() -> None:
    chain = ledger()
    r = committed(chain)
    check = chain.registry.modules["privacy"].queries["commitment"].read
    check.check(View(chain), member("bank", "lender"), None, "privacy/commitment")
    with pytest.raises(ReadRefused):
        check.check(View(chain), Caller(did=ALICE.did, known=False), None, "privacy/commitment")
    for t in ("privacy.committed", "privacy.erased"):
        policy = chain.registry.event_reads[t]
        policy.check(View(chain), member("ins", "insurer"), r.events[0], t)
        policy.check(View(chain), member("reg", "regulator"), r.events[0], t)
        with pytest.raises(ReadRefused):
            policy.check(View(chain), member("bank", "lender"), r.events[0], t)


# ---------------------------------------------------------------- the commitment itself

HEX = "0123456789abcdef"
text = st.text(max_size=40)
salts = st.binary(min_size=32, max_size=32)


@settings(max_examples=200, deadline=None)
@given(text, text, text, salts, st.sampled_from(["subject", "field", "value", "salt"]), text, salts)
def test_the_commitment_is_deterministic_and_binds_every_input(subject: str, field_: str, value: str, salt: bytes,
                                                               which: str, other: str, other_salt: bytes) -> None:
    c = commitment(subject, field_, value, salt)
    assert c == commitment(subject, field_, value, salt.hex()) and len(c) == 64 and set(c) <= set(HEX)
    assert opens(c, subject, field_, value, salt)
    args = {"subject": subject, "field": field_, "value": value, "salt": salt}
    changed = dict(args, **{which: other_salt if which == "salt" else other})
    if changed == args:
        return
    assert commitment(**changed) != c
    assert not opens(c, **changed)


def test_the_commitment_is_the_tagged_hash_of_the_canonical_json() -> None:
    import hashlib

    body = b'{"field":"name","salt":"' + b"00" * 32 + b'","subject":"' + S1.encode() + b'","value":"Erika"}'
    assert commitment(S1, "name", "Erika", bytes(32)) == hashlib.sha256(TAG_COMMITMENT + body).hexdigest()
    assert TAG_COMMITMENT == b"blokauto/privacy/commitment/v1\x00"


@pytest.mark.parametrize("salt", [b"short", "zz" * 32, "AB" * 32, "00" * 31], ids=["short_bytes", "not_hex",
                                                                                  "upper_hex", "short_hex"])
def test_a_salt_that_is_not_32_bytes_is_refused(salt: Any) -> None:
    with pytest.raises(ValueError):
        commitment(S1, "name", "Erika", salt)
    assert not opens("00" * 32, S1, "name", "Erika", salt)
