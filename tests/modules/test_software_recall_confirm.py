"""A vehicle that already ran a campaign's software fix before the campaign opened is remedied on
the proof the ledger holds (its inventory, built from its own signed manifests), by anyone's
``recalls.confirm_software_remedy``; every other case is refused with a stable code and changes
nothing. World: ``test_software_recalls``'s (Alice's and Bob's cars, brake v1-v4, gateway v9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from blokauto.modules.recalls.messages import CloseCampaign, ConfirmSoftwareRemedy
from blokauto.modules.recalls.state import REMEDIES, SoftwareFix

from helpers.insurance import ALICE, BOB_DEVICE, OEM, OTHER_VIN, VIN, ok, send
from helpers.vehicles import history, snapshot
from test_software_recalls import BOTH, FIX, count, install, opened, recall_world


def test_a_car_that_installed_the_fix_before_the_campaign_opened_is_remedied_on_its_inventory(tmp_path: Path) -> None:
    w = recall_world(tmp_path)
    install(w, 3)  # Alice's car runs brake v3 (the fix) before any campaign
    cid = opened(w, BOTH)
    assert count(w, cid) == 0  # opening remedies nobody: nothing was installed in its transaction
    r = ok(w.chain, ALICE, ConfirmSoftwareRemedy(campaign=cid, vin=VIN))  # anyone may point it out
    assert {"type": "recalls.remedied", "campaign": cid, "vin": VIN} in r.events
    assert count(w, cid) == 1
    rem = REMEDIES.get(w.chain.ledger, cid, VIN)
    assert (rem.method, rem.by) == ("software", ALICE.did) and "release counter 3" in rem.notes
    assert history(w.chain, VIN)[-1]["data"] == {"campaign": cid, "number": "R-1", "method": "software"}


def _closed(w: Any, cid: int) -> None:
    ok(w.chain, OEM, CloseCampaign(campaign=cid))


def _confirmed(w: Any, cid: int) -> None:
    ok(w.chain, ALICE, ConfirmSoftwareRemedy(campaign=cid, vin=VIN))


REFUSED: list[Any] = [
    # (id, what Alice's car runs before, setup after opening, the VIN asked about, the campaign's fix, code)
    pytest.param(2, None, VIN, FIX, "fix_not_installed", id="below_the_fix_counter"),
    pytest.param(None, None, VIN, FIX, "fix_not_installed", id="factory_image_only"),
    pytest.param(4, None, VIN, SoftwareFix(hardware_id="gateway-v1", min_release_counter=10), "fix_not_installed",
                 id="the_fix_is_for_other_hardware"),
    pytest.param(3, _confirmed, VIN, FIX, "already_remedied", id="confirmed_twice"),
    pytest.param(3, _closed, VIN, FIX, "campaign_closed", id="campaign_closed"),
    pytest.param(3, None, "WZZ0000000000000X", FIX, "not_affected", id="vehicle_not_covered"),
    pytest.param(3, None, "WVW/1", FIX, "not_affected", id="vin_with_a_slash"),
]


@pytest.mark.parametrize("runs,after,vin,fix,code", REFUSED)
def test_a_confirmation_without_proof_is_refused_and_changes_nothing(tmp_path: Path, runs: int | None,
                                                                     after: Callable[[Any, int], None] | None,
                                                                     vin: str, fix: SoftwareFix, code: str) -> None:
    w = recall_world(tmp_path)
    if runs is not None:
        install(w, runs)
    cid = opened(w, BOTH, fix=fix)
    if after is not None:
        after(w, cid)
    before = snapshot(w.chain)
    r = send(w.chain, ALICE, ConfirmSoftwareRemedy(campaign=cid, vin=vin))
    assert (r.ok, r.code) == (False, code), r
    assert snapshot(w.chain) == before


def test_a_campaign_without_a_software_fix_takes_no_confirmation(tmp_path: Path) -> None:
    from helpers.parts import campaign

    w = recall_world(tmp_path)
    install(w, 3)
    r = ok(w.chain, OEM, campaign("R-9", BOTH))
    cid = next(e["campaign"] for e in r.events if e["type"] == "recalls.campaign_opened")
    before = snapshot(w.chain)
    r = send(w.chain, BOB_DEVICE, ConfirmSoftwareRemedy(campaign=cid, vin=VIN))
    assert (r.ok, r.code) == (False, "not_your_campaign") and snapshot(w.chain) == before
    assert send(w.chain, ALICE, ConfirmSoftwareRemedy(campaign=99, vin=OTHER_VIN)).code == "unknown_campaign"
