"""An odometer jump the time elapsed cannot explain is flagged ``implausible_jump`` and not trusted,
so the honest readings after it are not branded rollbacks; a chain that never turned the rule on
keeps its old behaviour and its exact record bytes. (The ratchet, fresh-vehicle and unit-rounding
attacks on this rule: test_odometer_plausibility_attacks.py.)"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from blokauto.core.block import Genesis
from blokauto.modules.vehicles.messages import RecordOdometer, ReplaceCluster
from blokauto.modules.vehicles.state import VEHICLES
from blokauto.verify.report import summarize

from conftest import Chain, build_tx
from helpers.vehicles import CHAIN, WMI, admin, assign_wmi, history, register, vehicle, vehicles_genesis, vin_for

HOUR = 3_600_000
SHOP, INS = admin("shop"), admin("ins")
VIN = vin_for(WMI["oem"])


USED = "2019-05-20"  # a build date years before the test chain's genesis: a used car entering the ledger


def chain_with(build_date: str = USED, **params: int) -> Chain:
    g = vehicles_genesis()
    chain = Chain(Genesis(chain=g.chain, time=g.time, organisations=g.organisations, quorum=1, params=params))
    for org, wmi in WMI.items():
        assign_wmi(chain, wmi, org)
    register(chain, VIN, build_date=build_date)
    return chain


def read(chain: Chain, sender: Any, value: int, at: int, msg: Any = None) -> Any:
    """A reading recorded in a block at time ``at`` (ms after genesis)."""
    m = msg or RecordOdometer(vin=VIN, value=value)
    t = chain.genesis.time + at
    receipt = chain.block(build_tx(sender, m, chain=CHAIN, expires=t + HOUR), time=t).receipts[0]
    assert receipt.ok, receipt
    return receipt


def flag_of(receipt: Any) -> str:
    return next((e["flag"] for e in receipt.events if e["type"] == "vehicles.odometer_flagged"), "")


RULE = {"odometer_max_kmh": 300}  # what `blokauto init` sets; slack: the default 2,000 km


@pytest.mark.parametrize("first,later,after_ms,flag", [
    (30_000, 965_000, 5 * 60_000, "implausible_jump"),        # the outsider's report: 935,000 km in 5 minutes
    (30_000, 32_000, 60_000, ""),                              # within the slack whatever the time
    (30_000, 32_001, 0, "implausible_jump"),                   # one km beyond the slack, no time passed
    (30_000, 32_000 + 300, HOUR, ""),                          # slack + one hour at 300 km/h: the boundary
    (30_000, 32_000 + 301, HOUR, "implausible_jump"),          # one km past it
    (30_000, 60_000, 5 * 24 * HOUR, ""),                       # 30,000 km in five days: possible
    (30_000, 29_999, HOUR, "suspected_rollback"),              # lower is still a rollback
], ids=["huge-jump-minutes-later", "within-slack", "slack-plus-one", "boundary", "boundary-plus-one",
        "long-drive-days-later", "rollback"])
def test_a_reading_is_judged_against_the_time_since_the_highest_trusted_one(first, later, after_ms, flag):
    chain = chain_with(**RULE)
    read(chain, SHOP, first, HOUR)
    receipt = read(chain, INS, later, HOUR + after_ms)
    assert flag_of(receipt) == flag
    o = vehicle(chain, VIN).odometer
    trusted = flag == ""
    assert o.max_km == (later if trusted else first)
    assert o.km == later and o.readings == 2
    assert o.status == ("not_actual" if flag == "suspected_rollback" else "actual")
    assert history(chain, VIN)[-1]["data"].get("flag") == (flag or None)


def test_the_honest_reading_after_an_implausible_one_is_not_a_rollback():
    """The issue's case: an unrelated organisation records 965,000 km minutes after 30,000 km; the
    owner's workshop then records an honest 31,000 km."""
    chain = chain_with(**RULE)
    read(chain, SHOP, 30_000, HOUR)
    assert flag_of(read(chain, INS, 965_000, HOUR + 5 * 60_000)) == "implausible_jump"
    honest = read(chain, SHOP, 31_000, 2 * HOUR)
    assert flag_of(honest) == ""
    o = vehicle(chain, VIN).odometer
    assert (o.status, o.rollbacks, o.max_km, o.implausible) == ("actual", 0, 31_000, 1)
    record = msgspec.json.decode(chain.ledger.get(VEHICLES.key(VIN)))
    summary = summarize(record, history(chain, VIN))
    assert summary["warnings"] == ["odometer_implausible_jump"]
    assert [(j["km"], j["by"]) for j in summary["odometer"]["implausible_jumps"]] == [(965_000, INS.did)]
    assert summary["odometer"]["suspected_rollbacks"] == []


def test_a_lower_reading_after_an_implausible_jump_is_still_a_rollback():
    chain = chain_with(**RULE)
    read(chain, SHOP, 30_000, HOUR)
    read(chain, INS, 965_000, HOUR + 60_000)
    assert flag_of(read(chain, SHOP, 29_000, 2 * HOUR)) == "suspected_rollback"
    assert vehicle(chain, VIN).odometer.status == "not_actual"


def test_the_first_reading_of_a_used_vehicle_is_judged_against_its_build_date():
    """A used car entering the ledger, built years ago: its birth (0 km then) explains a high first
    reading. (A vehicle built just now cannot: see test_odometer_plausibility_attacks.py.)"""
    chain = chain_with(**RULE)
    assert flag_of(read(chain, SHOP, 180_000, 60_000)) == ""
    assert vehicle(chain, VIN).odometer.max_km == 180_000


def test_an_implausible_old_value_does_not_inflate_a_cluster_replacement():
    chain = chain_with(**RULE)
    read(chain, SHOP, 30_000, HOUR)
    receipt = read(chain, SHOP, 0, HOUR + 60_000, ReplaceCluster(vin=VIN, old_value=900_000, new_value=0))
    assert flag_of(receipt) == "implausible_jump"
    o = vehicle(chain, VIN).odometer
    assert o.offset_km == 30_000  # from the highest trusted reading, not the implausible old value
    assert flag_of(read(chain, SHOP, 500, 2 * HOUR)) == ""
    assert vehicle(chain, VIN).odometer.max_km == 30_500


def test_a_chain_without_the_rule_keeps_its_old_behaviour_and_record_bytes():
    chain = chain_with()  # odometer_max_kmh defaults to 0: off
    read(chain, SHOP, 30_000, HOUR)
    assert flag_of(read(chain, INS, 965_000, HOUR + 60_000)) == ""
    assert flag_of(read(chain, SHOP, 31_000, 2 * HOUR)) == "suspected_rollback"
    raw = chain.ledger.get(VEHICLES.key(VIN))
    assert b"anchor" not in raw and b"implausible" not in raw


def test_slack_is_a_chain_parameter():
    chain = chain_with(odometer_max_kmh=300, odometer_jump_slack_km=50_000)
    read(chain, SHOP, 30_000, HOUR)
    assert flag_of(read(chain, INS, 79_000, HOUR)) == ""
