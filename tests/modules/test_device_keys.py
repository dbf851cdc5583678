"""A vehicle's device keys have a life: added (holder or maker, the new key co-signing as proof of
possession), rotated (old key, new key and holder or maker), revoked (holder or maker, at once).

Rules, one row each: a key added or rotated in is fresh (never a key of the vehicle, current or
retired), a vehicle has at most ``MAX_DEVICE_KEYS``, only a current key is rotated out or revoked,
and a retired key never comes back. From its retirement on nothing a key signs counts: odometer
readings, telemetry (``test_telemetry_rules``) and payments. Every change appends a history entry
that the record's running hash covers. Refusals are one table (``REFUSALS``): each checks the
stable code and that the failed transaction changed nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from blokauto.core.crypto import KeyPair
from blokauto.modules.payments.messages import SetLimit, VehiclePay
from blokauto.modules.vehicles.handlers import history_head
from blokauto.modules.vehicles.messages import (AddDeviceKey, Deregister, RecordOdometer, RevokeDeviceKey,
                                                RotateDeviceKey, TransferTitle)
from blokauto.modules.vehicles.state import VEHICLES, RevokedKey

from conftest import K
from helpers.insurance import (ALICE, BOB, BOB_DEVICE, DEVICE, DEVICE2, NEW_DEVICE, OEM, OTHER_VIN, VIN, balance,
                               batch_msg, now, ok, send, trip, world)
from helpers.vehicles import WMI, admin, history, history_rows, snapshot, vin_for

SCRAP, FLEET, OEM2 = admin("scrap"), admin("fleet"), admin("oem2")
MAX_DEVICE_KEYS = 8  # as at registration (RegisterVehicle.device_keys): a literal, the rule's number
EXTRA = [K(f"dk-extra-{i}") for i in range(MAX_DEVICE_KEYS + 1)]


def keys_world() -> Any:
    return world(policy=False, consent=False)


def current(chain: Any, vin: str = VIN) -> list[str]:
    return list(VEHICLES.get(chain.ledger, vin).device_keys)


def retired(chain: Any, vin: str = VIN) -> list[RevokedKey]:
    v = VEHICLES.get(chain.ledger, vin)
    return [] if not isinstance(v.retired_keys, list) else list(v.retired_keys)


def add(key: KeyPair, by: KeyPair = ALICE) -> Callable[[Any], Any]:
    return lambda chain: ok(chain, by, AddDeviceKey(vin=VIN, key=key.did), key)


def fill(chain: Any) -> None:
    """Add keys until the vehicle has ``MAX_DEVICE_KEYS``."""
    for k in EXTRA[:MAX_DEVICE_KEYS - len(current(chain))]:
        add(k)(chain)
    assert len(current(chain)) == MAX_DEVICE_KEYS


def revoke(key: KeyPair, reason: str = "lost", by: KeyPair = ALICE) -> Callable[[Any], Any]:
    return lambda chain: ok(chain, by, RevokeDeviceKey(vin=VIN, key=key.did, reason=reason))


def rotate(chain: Any, old: KeyPair = DEVICE, new: KeyPair = NEW_DEVICE, by: KeyPair = ALICE) -> Any:
    return ok(chain, by, RotateDeviceKey(vin=VIN, old=old.did, new=new.did), old, new)


def scrapped(chain: Any) -> None:
    ok(chain, SCRAP, Deregister(vin=VIN, certificate="COD-1"), ALICE)


def wallet(chain: Any) -> None:
    """Alice lets her car's devices pay the insurer (category insurance) up to 5,000 a payment."""
    ok(chain, ALICE, SetLimit(vin=VIN, currency="EUR", per_payment=5_000, per_day=10_000, categories=["insurance"]))


def pay(amount: int = 100) -> VehiclePay:
    return VehiclePay(vin=VIN, merchant="ins", category="insurance", currency="EUR", amount=amount)


def device_events(receipt: Any) -> list[dict[str, Any]]:
    return [e for e in receipt.events if e["type"] == "vehicles.device_key_changed"]


def assert_history_verifies(chain: Any, vin: str = VIN) -> None:
    v = VEHICLES.get(chain.ledger, vin)
    assert history_head(bytes(r["entry"]) for r in history_rows(chain, vin)) == (v.history.count, v.history.head)


# ---------------------------------------------------------------- add


@pytest.mark.parametrize("by", [ALICE, OEM], ids=["holder", "maker"])
def test_the_holder_admits_a_key_the_new_key_cosigning_whoever_sends_it(by: KeyPair) -> None:
    chain = keys_world()
    count = VEHICLES.get(chain.ledger, VIN).history.count
    r = ok(chain, by, AddDeviceKey(vin=VIN, key=NEW_DEVICE.did), *[k for k in (ALICE, NEW_DEVICE) if k is not by])
    assert device_events(r) == [{"type": "vehicles.device_key_changed", "vin": VIN, "change": "added",
                                 "key": NEW_DEVICE.did, "new": ""}]
    assert current(chain) == [DEVICE.did, DEVICE2.did, NEW_DEVICE.did]
    entry = history(chain, VIN)[-1]
    assert (entry["seq"], entry["type"], entry["by"], entry["data"]) == (
        count + 1, "device_key_added", by.did, {"key": NEW_DEVICE.did})
    assert_history_verifies(chain)
    # the new key counts at once
    ok(chain, NEW_DEVICE, RecordOdometer(vin=VIN, value=1_000))


def test_a_vehicle_has_at_most_max_device_keys() -> None:
    chain = keys_world()
    fill(chain)  # the last one added takes it exactly to the most
    r = send(chain, ALICE, AddDeviceKey(vin=VIN, key=EXTRA[-1].did), EXTRA[-1])
    assert (r.code, r.detail["count"], r.detail["limit"]) == ("too_many_device_keys", MAX_DEVICE_KEYS,
                                                              MAX_DEVICE_KEYS)
    revoke(DEVICE2)(chain)
    add(EXTRA[-1])(chain)
    assert len(current(chain)) == MAX_DEVICE_KEYS


def test_a_key_of_another_vehicle_may_be_added() -> None:
    """Freshness is per vehicle: the rule is that a vehicle's retired key never returns to it."""
    chain = keys_world()
    add(BOB_DEVICE)(chain)
    assert BOB_DEVICE.did in current(chain) and BOB_DEVICE.did in current(chain, OTHER_VIN)


# ---------------------------------------------------------------- rotate


@pytest.mark.parametrize("by", [ALICE, OEM], ids=["holder", "maker"])
def test_a_rotation_retires_the_old_key_in_place_of_the_new(by: KeyPair) -> None:
    chain = keys_world()
    r = rotate(chain, by=by)
    height = chain.ledger.head.height
    assert device_events(r) == [{"type": "vehicles.device_key_changed", "vin": VIN, "change": "rotated",
                                 "key": DEVICE.did, "new": NEW_DEVICE.did}]
    assert current(chain) == [NEW_DEVICE.did, DEVICE2.did]  # in the old key's place
    assert retired(chain) == [RevokedKey(DEVICE.did, height, "rotated")]
    entry = history(chain, VIN)[-1]
    assert (entry["type"], entry["data"]) == ("device_key_rotated", {"old": DEVICE.did, "new": NEW_DEVICE.did})
    assert_history_verifies(chain)
    r = send(chain, DEVICE, RecordOdometer(vin=VIN, value=1_000))
    assert (r.code, r.detail) == ("device_key_revoked", {"signer": DEVICE.did, "vin": VIN, "height": height,
                                                         "reason": "rotated"})
    ok(chain, NEW_DEVICE, RecordOdometer(vin=VIN, value=1_000))


def test_retirements_accumulate() -> None:
    chain = keys_world()
    rotate(chain)
    h1 = chain.ledger.head.height
    revoke(DEVICE2, "compromised")(chain)
    h2 = chain.ledger.head.height
    rotate(chain, old=NEW_DEVICE, new=EXTRA[0])
    h3 = chain.ledger.head.height
    assert retired(chain) == [RevokedKey(DEVICE.did, h1, "rotated"), RevokedKey(DEVICE2.did, h2, "compromised"),
                              RevokedKey(NEW_DEVICE.did, h3, "rotated")]
    assert current(chain) == [EXTRA[0].did]
    assert [e["type"] for e in history(chain, VIN)[-3:]] == ["device_key_rotated", "device_key_revoked",
                                                            "device_key_rotated"]
    assert_history_verifies(chain)


# ---------------------------------------------------------------- revoke


@pytest.mark.parametrize("by", [ALICE, OEM], ids=["holder", "maker"])
def test_the_holder_or_the_maker_revokes_a_key_at_once(by: KeyPair) -> None:
    chain = keys_world()
    r = revoke(DEVICE, "compromised", by=by)(chain)
    height = chain.ledger.head.height
    assert device_events(r) == [{"type": "vehicles.device_key_changed", "vin": VIN, "change": "revoked",
                                 "key": DEVICE.did, "new": ""}]
    assert current(chain) == [DEVICE2.did]
    assert retired(chain) == [RevokedKey(DEVICE.did, height, "compromised")]
    entry = history(chain, VIN)[-1]
    assert (entry["type"], entry["by"], entry["data"]) == ("device_key_revoked", by.did,
                                                           {"key": DEVICE.did, "reason": "compromised"})
    assert_history_verifies(chain)


def test_any_key_of_a_holding_organisation_revokes() -> None:
    chain = keys_world()
    ok(chain, BOB, TransferTitle(vin=OTHER_VIN, to="org:fleet"), FLEET)
    ok(chain, FLEET, RevokeDeviceKey(vin=OTHER_VIN, key=BOB_DEVICE.did, reason="ecu_replaced"))
    assert current(chain, OTHER_VIN) == []
    assert send(chain, BOB_DEVICE, RecordOdometer(vin=OTHER_VIN, value=5)).code == "device_key_revoked"


def test_a_former_holder_no_longer_revokes() -> None:
    chain = keys_world()
    ok(chain, ALICE, TransferTitle(vin=VIN, to=BOB.did), BOB)
    assert send(chain, ALICE, RevokeDeviceKey(vin=VIN, key=DEVICE.did, reason="lost")).code == "not_holder_or_maker"
    ok(chain, BOB, RevokeDeviceKey(vin=VIN, key=DEVICE.did, reason="lost"))


def test_a_key_of_a_scrapped_vehicle_is_revoked_still() -> None:
    """A harvested ECU must not sign for the vehicle it came from."""
    chain = keys_world()
    scrapped(chain)
    revoke(DEVICE, "ecu_replaced", by=OEM)(chain)
    assert retired(chain)[0].did == DEVICE.did
    assert_history_verifies(chain)


# ---------------------------------------------------------------- what a retired key signs counts for nothing


def test_a_revoked_key_is_refused_for_odometer_readings() -> None:
    chain = keys_world()
    ok(chain, DEVICE, RecordOdometer(vin=VIN, value=1_000))
    assert history(chain, VIN)[-1]["data"] == {"value": 1_000, "unit": "km", "km": 1_000, "source": "device"}
    ok(chain, DEVICE2, RecordOdometer(vin=VIN, value=900))  # kept, flagged
    assert history(chain, VIN)[-1]["data"] == {"value": 900, "unit": "km", "km": 900, "source": "device",
                                               "flag": "suspected_rollback"}
    revoke(DEVICE)(chain)
    before = snapshot(chain)
    r = send(chain, DEVICE, RecordOdometer(vin=VIN, value=2_000))
    assert (r.ok, r.code, r.detail["reason"]) == (False, "device_key_revoked", "lost")
    assert snapshot(chain)[:2] == before[:2]
    ok(chain, DEVICE2, RecordOdometer(vin=VIN, value=2_000))


def test_a_revoked_key_is_refused_for_payments() -> None:
    chain = keys_world()
    wallet(chain)
    ok(chain, DEVICE, pay(100))
    assert (balance(chain, ALICE), balance(chain, "org:ins")) == (99_900, 1_000_100)
    revoke(DEVICE)(chain)
    before = snapshot(chain)
    r = send(chain, DEVICE, pay(100))
    assert (r.ok, r.code) == (False, "device_key_revoked"), r
    assert snapshot(chain)[:2] == before[:2]
    assert (balance(chain, ALICE), balance(chain, "org:ins")) == (99_900, 1_000_100)
    ok(chain, DEVICE2, pay(100))


def test_a_revoked_key_is_refused_for_payments_naming_its_revocation() -> None:
    chain = keys_world()
    wallet(chain)
    revoke(DEVICE)(chain)
    r = send(chain, DEVICE, pay(100))
    assert (r.code, r.detail.get("reason")) == ("device_key_revoked", "lost"), r


def test_a_rotated_out_key_is_refused_for_payments() -> None:
    chain = keys_world()
    wallet(chain)
    rotate(chain)
    assert not send(chain, DEVICE, pay(100)).ok
    ok(chain, NEW_DEVICE, pay(100))


def test_a_revoked_key_is_refused_for_telemetry_batches() -> None:
    chain = keys_world()
    ok(chain, DEVICE, batch_msg(VIN, trip(now(chain) - 20_000, 5)))
    revoke(DEVICE)(chain)
    assert send(chain, DEVICE, batch_msg(VIN, trip(now(chain) - 2_000, 2))).code == "device_key_revoked"


# ---------------------------------------------------------------- refusals: one row per rule


@dataclass(frozen=True)
class Refusal:
    name: str
    sender: KeyPair
    msg: Any
    code: str
    setup: Callable[[Any], Any] | None = None
    cosigners: tuple[KeyPair, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


def r(name: str, who: KeyPair, msg: Any, code: str, setup: Any = None, cosigners: tuple = (), **detail: Any) -> Any:
    return pytest.param(Refusal(name, who, msg, code, setup, cosigners, detail), id=name)


def both(*steps: Callable[[Any], Any]) -> Callable[[Any], None]:
    def setup(chain: Any) -> None:
        for step in steps:
            step(chain)
    return setup


UNKNOWN_VIN = vin_for(WMI["oem"], 77)
A = AddDeviceKey
ROT = RotateDeviceKey
REV = RevokeDeviceKey

REFUSALS = [
    # add: fresh keys only, at most MAX_DEVICE_KEYS, holder or maker, the new key signs
    r("add_a_current_key", ALICE, A(vin=VIN, key=DEVICE2.did), "device_key_in_use", cosigners=(DEVICE2,),
      key=DEVICE2.did),
    r("add_back_a_revoked_key", ALICE, A(vin=VIN, key=DEVICE.did), "device_key_in_use", revoke(DEVICE),
      cosigners=(DEVICE,)),
    r("add_back_a_rotated_out_key", ALICE, A(vin=VIN, key=DEVICE.did), "device_key_in_use", rotate,
      cosigners=(DEVICE,)),
    r("add_beyond_the_most", ALICE, A(vin=VIN, key=EXTRA[-1].did), "too_many_device_keys", fill,
      cosigners=(EXTRA[-1],), count=MAX_DEVICE_KEYS, limit=MAX_DEVICE_KEYS),
    r("add_a_current_key_when_full", ALICE, A(vin=VIN, key=DEVICE.did), "device_key_in_use", fill,
      cosigners=(DEVICE,)),
    r("add_without_the_new_keys_signature", ALICE, A(vin=VIN, key=NEW_DEVICE.did), "missing_cosigner"),
    r("add_by_a_stranger", BOB, A(vin=VIN, key=NEW_DEVICE.did), "missing_cosigner", cosigners=(NEW_DEVICE,)),
    # found by the outside attack: the maker alone fitted a key to a sold car, then wrote its driving data
    r("add_by_the_maker_without_the_holder", OEM, A(vin=VIN, key=NEW_DEVICE.did), "missing_cosigner",
      cosigners=(NEW_DEVICE,)),
    r("add_by_another_maker", OEM2, A(vin=VIN, key=NEW_DEVICE.did), "missing_cosigner", cosigners=(NEW_DEVICE,)),
    r("add_by_a_device_key", DEVICE, A(vin=VIN, key=NEW_DEVICE.did), "missing_cosigner", cosigners=(NEW_DEVICE,)),
    r("add_to_a_scrapped_vehicle", ALICE, A(vin=VIN, key=NEW_DEVICE.did), "vehicle_scrapped", scrapped,
      cosigners=(NEW_DEVICE,)),
    r("add_to_an_unknown_vehicle", ALICE, A(vin=UNKNOWN_VIN, key=NEW_DEVICE.did), "unknown_vehicle",
      cosigners=(NEW_DEVICE,)),
    # rotate: a current key out, a fresh key in, old + new + holder or maker sign
    r("rotate_out_a_key_never_of_the_vehicle", ALICE, ROT(vin=VIN, old=BOB_DEVICE.did, new=NEW_DEVICE.did),
      "not_current_device_key", cosigners=(BOB_DEVICE, NEW_DEVICE), key=BOB_DEVICE.did),
    r("rotate_out_a_revoked_key", ALICE, ROT(vin=VIN, old=DEVICE.did, new=NEW_DEVICE.did), "device_key_revoked",
      revoke(DEVICE), cosigners=(DEVICE, NEW_DEVICE), reason="lost"),
    r("rotate_out_a_rotated_out_key", ALICE, ROT(vin=VIN, old=DEVICE.did, new=EXTRA[0].did), "device_key_revoked",
      rotate, cosigners=(DEVICE, EXTRA[0]), reason="rotated"),
    r("rotate_in_a_current_key", ALICE, ROT(vin=VIN, old=DEVICE.did, new=DEVICE2.did), "device_key_in_use",
      cosigners=(DEVICE, DEVICE2)),
    r("rotate_in_a_revoked_key", ALICE, ROT(vin=VIN, old=DEVICE2.did, new=DEVICE.did), "device_key_in_use",
      both(revoke(DEVICE)), cosigners=(DEVICE2, DEVICE)),
    r("rotate_a_key_into_itself", ALICE, ROT(vin=VIN, old=DEVICE.did, new=DEVICE.did), "device_key_in_use",
      cosigners=(DEVICE,)),
    r("rotate_without_the_old_key", ALICE, ROT(vin=VIN, old=DEVICE.did, new=NEW_DEVICE.did), "missing_cosigner",
      cosigners=(NEW_DEVICE,)),
    r("rotate_without_the_new_key", ALICE, ROT(vin=VIN, old=DEVICE.did, new=NEW_DEVICE.did), "missing_cosigner",
      cosigners=(DEVICE,)),
    r("rotate_without_holder_or_maker", DEVICE, ROT(vin=VIN, old=DEVICE.did, new=NEW_DEVICE.did),
      "missing_cosigner", cosigners=(NEW_DEVICE,)),
    r("rotate_on_a_scrapped_vehicle", ALICE, ROT(vin=VIN, old=DEVICE.did, new=NEW_DEVICE.did), "vehicle_scrapped",
      scrapped, cosigners=(DEVICE, NEW_DEVICE)),
    # revoke: the holder or the maker, a current key
    r("revoke_by_a_stranger", BOB, REV(vin=VIN, key=DEVICE.did, reason="lost"), "not_holder_or_maker"),
    r("revoke_by_the_device_itself", DEVICE, REV(vin=VIN, key=DEVICE.did, reason="lost"), "not_holder_or_maker"),
    r("revoke_by_another_maker", OEM2, REV(vin=VIN, key=DEVICE.did, reason="lost"), "not_holder_or_maker",
      maker="oem"),
    r("revoke_by_an_insurer", admin("ins"), REV(vin=VIN, key=DEVICE.did, reason="lost"), "not_holder_or_maker"),
    r("revoke_a_key_never_of_the_vehicle", ALICE, REV(vin=VIN, key=BOB_DEVICE.did, reason="lost"),
      "not_current_device_key"),
    r("revoke_twice", ALICE, REV(vin=VIN, key=DEVICE.did, reason="compromised"), "device_key_revoked",
      revoke(DEVICE), reason="lost"),
    r("revoke_a_rotated_out_key", ALICE, REV(vin=VIN, key=DEVICE.did, reason="lost"), "device_key_revoked", rotate,
      reason="rotated"),
    r("revoke_on_an_unknown_vehicle", ALICE, REV(vin=UNKNOWN_VIN, key=DEVICE.did, reason="lost"), "unknown_vehicle"),
    # what a retired key signs
    r("reading_by_a_revoked_key", DEVICE, RecordOdometer(vin=VIN, value=100), "device_key_revoked", revoke(DEVICE)),
    r("reading_by_a_rotated_out_key", DEVICE, RecordOdometer(vin=VIN, value=100), "device_key_revoked", rotate),
    r("reading_by_another_vehicles_device", BOB_DEVICE, RecordOdometer(vin=VIN, value=100), "not_vehicle_device"),
    r("payment_by_a_revoked_key", DEVICE, pay(), "device_key_revoked", both(wallet, revoke(DEVICE))),
    r("payment_by_a_rotated_out_key", DEVICE, pay(), "device_key_revoked", both(wallet, rotate)),
    r("payment_by_another_vehicles_device", BOB_DEVICE, pay(), "not_a_device_of_vehicle", wallet),
]


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_and_changes_nothing(case: Refusal) -> None:
    chain = keys_world()
    if case.setup is not None:
        case.setup(chain)
    before = snapshot(chain)
    receipt = send(chain, case.sender, case.msg, *case.cosigners)
    assert (receipt.ok, receipt.code) == (False, case.code), receipt
    assert receipt.events == []
    for k, v in case.detail.items():
        assert receipt.detail[k] == v, receipt.detail
    assert snapshot(chain)[:2] == before[:2], "a failed transaction changed the ledger"
