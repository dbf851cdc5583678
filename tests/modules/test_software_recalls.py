"""Software recalls are closed by the vehicle's own install manifest, never by the maker's word.

A campaign with an over-the-air remedy names its fix (``SoftwareFix``: a hardware id and the lowest
release counter that fixes it). A manifest that installs an image of that hardware at that counter
or higher on a vehicle the campaign covered when it opened remedies it in the same transaction
(``recalls.remedied``, a ``recall_remedied`` history entry with method software, the campaign's
remedied count); an image below the counter, of other hardware, on a vehicle the campaign did not
cover, or for a closed campaign remedies nothing; a vehicle is remedied once. The maker cannot
attest a software remedy (``remedy_needs_manifest``), and the campaign's progress counts the
manifests.

World: ``helpers.software``'s OtaWorld, Bob's car (OTHER_VIN, also oem's, built the same day) fitted
too, and release 2 listing brake v2, v3, v4 (counters 2-4) and gateway v9 (counter 9).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blokauto.modules.recalls import queries as rq
from blokauto.modules.recalls.messages import CloseCampaign, RecordRemedy
from blokauto.modules.recalls.state import BY_HARDWARE, CAMPAIGNS, REMEDIES, DateRange, Scope, SoftwareFix, VinRange
from blokauto.modules.software.messages import EcuSpec, FitEcus
from blokauto.modules.software.metadata import sha256
from blokauto.modules.vehicles.messages import RevokeDeviceKey

from conftest import K, build_tx
from helpers.insurance import ALICE, BOB_DEVICE, DEVICE, OEM, OTHER_VIN, SHOP, VIN, now, ok, send
from helpers.parts import campaign
from helpers.software import BRAKE_HW, GATEWAY_HW, OtaWorld, SqlView, image, ota_world
from helpers.vehicles import WMI, admin, history, register_msg, snapshot, vin_for

REG = admin("reg")
FIX = SoftwareFix(hardware_id=BRAKE_HW, min_release_counter=3)
ALICES = Scope(vin_ranges=[VinRange(first=VIN, last=VIN)])
BOTH = Scope(build_dates=DateRange(first="2027-01-01", last="2027-12-31"))  # every car of the world
BRAKE = {n: (f"brake/brake-{n}.bin", image("brake", n)) for n in (1, 2, 3, 4)}
GW9 = ("gateway/gw-9.bin", image("gw", 9))


def recall_world(tmp: Path) -> OtaWorld:
    w = ota_world(tmp)
    w.fit(vin=OTHER_VIN, factory={"brake-1": sha256(BRAKE[1][1]), "gw-1": sha256(image("gw", 1))})
    w.release(*[(*BRAKE[n], BRAKE_HW, n, "") for n in (2, 3, 4)], (*GW9, GATEWAY_HW, 9, ""))
    return w


def opened(w: OtaWorld, scope: Scope = ALICES, number: str = "R-1", fix: SoftwareFix | None = FIX,
           by: Any = OEM) -> int:
    r = ok(w.chain, by, campaign(number, scope, ota_remedy=True, software_fix=fix))
    return next(e["campaign"] for e in r.events if e["type"] == "recalls.campaign_opened")


def install(w: OtaWorld, n: int, vin: str = VIN, key: Any = DEVICE, ecu: str = "brake-1") -> Any:
    r = w.report((ecu, *BRAKE[n]), vin=vin, key=key)
    assert r.ok, r
    return r


def remedied(r: Any) -> list[dict[str, Any]]:
    return [e for e in r.events if e["type"] == "recalls.remedied"]


def count(w: OtaWorld, cid: int) -> int:
    return CAMPAIGNS.get(w.chain.ledger, cid).remedied


# ---------------------------------------------------------------- opening


@pytest.mark.parametrize("by", [OEM, REG], ids=["maker", "regulator"])
def test_an_over_the_air_remedy_names_its_fix(tmp_path: Path, by: Any) -> None:
    w = recall_world(tmp_path)
    before = snapshot(w.chain)
    at = now(w.chain) + 1
    raw = build_tx(by, campaign("R-1", ALICES, ota_remedy=True), expires=at + 600_000,
                   nonce=f"{next(w.chain.nonces):032x}")
    receipt = w.chain.block(raw, time=at).receipts[0]
    assert (receipt.ok, receipt.code, receipt.events) == (False, "software_fix_required", [])
    assert snapshot(w.chain) == before
    assert w.chain.block(raw, time=at).receipts[0].code == "replayed_tx"


def test_a_software_fix_makes_the_remedy_over_the_air_and_is_indexed_by_hardware(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    r = ok(w.chain, OEM, campaign("R-1", ALICES, software_fix=FIX))  # ota_remedy left False
    cid = r.events[-1]["campaign"]
    c = CAMPAIGNS.get(w.chain.ledger, cid)
    assert (c.ota_remedy, c.software_fix) == (True, FIX)
    assert BY_HARDWARE.get(w.chain.ledger, BRAKE_HW) == [cid]
    # a campaign without a fix keeps its record as before (no software_fix stored, no hardware index)
    ok(w.chain, OEM, campaign("R-2", ALICES))
    assert BY_HARDWARE.get(w.chain.ledger, BRAKE_HW) == [cid]


# ---------------------------------------------------------------- the manifest remedies


def test_the_manifest_installing_the_fix_remedies_the_vehicle_in_the_same_transaction(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    cid = opened(w)
    r = install(w, 3)
    assert remedied(r) == [{"type": "recalls.remedied", "campaign": cid, "vin": VIN}]
    assert [e["type"] for e in r.events] == ["vehicles.history_appended", "vehicles.history_appended",
                                             "recalls.remedied", "software.installed"]
    rem = REMEDIES.get(w.chain.ledger, cid, VIN)
    assert (rem.by, rem.method, rem.height) == (DEVICE.did, "software", w.chain.ledger.head.height)
    assert sha256(BRAKE[3][1]) in rem.notes and "release counter 3" in rem.notes
    assert count(w, cid) == 1
    installed, remedy = history(w.chain, VIN)[-2:]
    assert installed["type"] == "software_installed"
    assert (remedy["type"], remedy["by"], remedy["data"]) == (
        "recall_remedied", DEVICE.did, {"campaign": cid, "number": "R-1", "method": "software"})
    assert remedy["height"] == installed["height"] == w.chain.ledger.head.height
    [row] = [x for x in w.chain.ledger.index["ix_recalls_remedied"].values() if x["campaign"] == cid]
    assert (row["vin"], row["height"]) == (VIN, w.chain.ledger.head.height)


@pytest.mark.parametrize("n,fixed", [(2, False), (3, True), (4, True)])
def test_the_fix_is_its_release_counter_or_higher(tmp_path: Path, n: int, fixed: bool) -> None:
    w = recall_world(tmp_path)
    cid = opened(w)
    r = install(w, n)
    assert bool(remedied(r)) is fixed
    assert REMEDIES.has(w.chain.ledger, cid, VIN) is fixed
    assert count(w, cid) == int(fixed)


def test_an_image_of_other_hardware_remedies_nothing(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    cid = opened(w)
    r = w.report(("gw-1", *GW9))  # counter 9, but for the gateway
    assert r.ok and remedied(r) == []
    assert count(w, cid) == 0


def test_a_vehicle_the_campaign_did_not_cover_is_not_remedied(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    cid = opened(w, ALICES)
    r = install(w, 3, vin=OTHER_VIN, key=BOB_DEVICE)
    assert remedied(r) == []
    assert not REMEDIES.has(w.chain.ledger, cid, OTHER_VIN)
    assert count(w, cid) == 0


def test_a_vehicle_registered_after_the_campaign_opened_is_not_remedied(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    cid = opened(w, BOTH)
    late, key = vin_for(WMI["oem"], 3), K("tel-dev-late")
    ok(w.chain, OEM, register_msg(late, device_keys=[key.did]))
    ok(w.chain, OEM, FitEcus(vin=late, ecus=[EcuSpec(ecu="brake-1", hardware_id=BRAKE_HW)]))
    r = install(w, 3, vin=late, key=key)
    assert remedied(r) == [] and count(w, cid) == 0


def test_a_closed_campaign_is_not_remedied(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    cid = opened(w)
    ok(w.chain, OEM, CloseCampaign(campaign=cid, reason="superseded"))
    assert BY_HARDWARE.get(w.chain.ledger, BRAKE_HW) is None
    r = install(w, 3)
    assert remedied(r) == [] and not REMEDIES.has(w.chain.ledger, cid, VIN)
    c = CAMPAIGNS.get(w.chain.ledger, cid)
    assert (c.status, c.remedied) == ("closed", 0)


def test_closing_one_campaign_leaves_the_other_on_the_same_hardware(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    first, second = opened(w, number="R-1"), opened(w, number="R-2")
    ok(w.chain, OEM, CloseCampaign(campaign=first))
    assert BY_HARDWARE.get(w.chain.ledger, BRAKE_HW) == [second]
    assert [e["campaign"] for e in remedied(install(w, 3))] == [second]


def test_a_vehicle_is_remedied_once(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    cid = opened(w)
    first = install(w, 3)
    height = REMEDIES.get(w.chain.ledger, cid, VIN).height
    again = install(w, 4)  # a later fix
    assert len(remedied(first)) == 1 and remedied(again) == []
    assert count(w, cid) == 1
    assert REMEDIES.get(w.chain.ledger, cid, VIN).height == height
    assert [e["type"] for e in history(w.chain, VIN)].count("recall_remedied") == 1


def test_two_ecus_of_the_hardware_in_one_manifest_remedy_once(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    ok(w.chain, OEM, FitEcus(vin=VIN, ecus=[EcuSpec(ecu="brake-2", hardware_id=BRAKE_HW)]))
    cid = opened(w)
    r = w.report(("brake-1", *BRAKE[3]), ("brake-2", *BRAKE[4]))
    assert r.ok, r
    assert len(remedied(r)) == 1 and count(w, cid) == 1


def test_one_manifest_remedies_every_campaign_it_fixes(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    low = opened(w, number="R-LOW", fix=SoftwareFix(hardware_id=BRAKE_HW, min_release_counter=3))
    high = opened(w, number="R-HIGH", fix=SoftwareFix(hardware_id=BRAKE_HW, min_release_counter=4))
    gw = opened(w, number="R-GW", fix=SoftwareFix(hardware_id=GATEWAY_HW, min_release_counter=2))
    assert [e["campaign"] for e in remedied(install(w, 3))] == [low]
    assert [e["campaign"] for e in remedied(install(w, 4))] == [high]
    assert (count(w, low), count(w, high), count(w, gw)) == (1, 1, 0)


def test_a_workshop_remedy_first_is_not_counted_again(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    cid = opened(w)
    ok(w.chain, SHOP, RecordRemedy(campaign=cid, vin=VIN, notes="reflashed at the workshop"))
    r = install(w, 3)
    assert remedied(r) == []
    assert count(w, cid) == 1
    assert REMEDIES.get(w.chain.ledger, cid, VIN).method == "workshop"


def test_a_regulators_campaign_is_remedied_by_the_manifest_too(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    cid = opened(w, by=REG)
    assert CAMPAIGNS.get(w.chain.ledger, cid).manufacturer == ""
    assert [e["campaign"] for e in remedied(install(w, 3))] == [cid]


def test_a_refused_manifest_remedies_nothing(tmp_path: Path) -> None:
    """The fix named with an unknown ECU: the whole manifest fails, and no remedy is left behind."""
    w = recall_world(tmp_path)
    cid = opened(w)
    before = snapshot(w.chain)
    r = w.report(("brake-1", *BRAKE[3]), ("adas-1", *BRAKE[4]))
    assert (r.ok, r.code, r.events) == (False, "unknown_ecu", [])
    assert snapshot(w.chain) == before and count(w, cid) == 0


def test_a_manifest_signed_by_a_revoked_device_key_remedies_nothing(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    cid = opened(w)
    ok(w.chain, ALICE, RevokeDeviceKey(vin=VIN, key=DEVICE.did, reason="compromised"))
    r = w.report(("brake-1", *BRAKE[3]))
    assert r.code == "device_key_revoked" and count(w, cid) == 0


# ---------------------------------------------------------------- nobody attests it


@pytest.mark.parametrize("by", [OEM, SHOP, admin("dealer")], ids=["maker", "workshop", "dealer"])
def test_a_software_remedy_is_not_attested(tmp_path: Path, by: Any) -> None:
    w = recall_world(tmp_path)
    cid = opened(w)
    before = snapshot(w.chain)
    r = send(w.chain, by, RecordRemedy(campaign=cid, vin=VIN, method="software"))
    assert (r.ok, r.code, r.detail) == (False, "remedy_needs_manifest", {
        "campaign": cid, "hardware_id": BRAKE_HW, "min_release_counter": 3})
    assert snapshot(w.chain) == before
    # nor after the vehicle's manifest remedied it (the rule, not the remedy, answers)
    install(w, 3)
    assert send(w.chain, by, RecordRemedy(campaign=cid, vin=VIN, method="software")).code == "remedy_needs_manifest"


# ---------------------------------------------------------------- progress


def test_progress_counts_the_manifests(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    cid = opened(w, BOTH)

    def progress() -> dict[str, int]:
        return rq.campaign(SqlView(w.chain), rq.CampaignQuery(id=cid))["progress"]

    def flags() -> list[bool]:
        res = rq.affected_vehicles(SqlView(w.chain), rq.AffectedQuery(campaign=cid))
        return [v["remedied"] for v in res["vehicles"]]

    assert progress() == {"affected": 2, "remedied": 0, "outstanding": 2}
    install(w, 2)  # below the fix
    assert progress() == {"affected": 2, "remedied": 0, "outstanding": 2}
    install(w, 3)
    assert progress() == {"affected": 2, "remedied": 1, "outstanding": 1}
    assert flags() == [True, False]  # VIN < OTHER_VIN
    install(w, 4, vin=OTHER_VIN, key=BOB_DEVICE)
    assert progress() == {"affected": 2, "remedied": 2, "outstanding": 0}
    assert flags() == [True, True]
    of_vehicle = rq.of_vehicle(SqlView(w.chain), rq.VinQuery(vin=VIN))
    assert [(x["campaign"], x["remedied"]) for x in of_vehicle] == [(cid, True)]


def test_progress_of_a_vin_range_campaign_counts_its_manifest(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    cid = opened(w, ALICES)

    def progress() -> dict[str, int]:
        return rq.campaign(SqlView(w.chain), rq.CampaignQuery(id=cid))["progress"]

    assert progress() == {"affected": 1, "remedied": 0, "outstanding": 1}
    install(w, 3, vin=OTHER_VIN, key=BOB_DEVICE)  # not in the range
    assert progress() == {"affected": 1, "remedied": 0, "outstanding": 1}
    install(w, 3)
    assert progress() == {"affected": 1, "remedied": 1, "outstanding": 0}
